"""Does a dataset's text look English? A warning for the person who forgot ``--language``.

Why: ``train`` defaults to English, and Whisper trained under ``<|en|>`` on German speech
learns to write German after the English token. Nothing fails, the figures just come out
worse, so the one clue is the text itself. Running English text is mostly common words:
the 10,000 most frequent English words (the list ``suggest`` already ships) cover about
nine in ten words of everyday English and three in four of jargon-dense scripts, against a
fifth to a half of German, French, Spanish or Catalan text, whose short function words
("die", "de", "en") are sometimes English too. Half is the line, between the two, and only
over enough words to tell.
"""

from __future__ import annotations

import re
from typing import Iterable

from .common_words import is_common_word

MIN_WORDS = 100             # fewer words say too little
MIN_ENGLISH_SHARE = 0.5     # under half common English words: probably another language
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


def english_share(texts: Iterable[str]) -> tuple[float, int]:
    """(share of words that are common English words, words counted)."""
    words = [w for text in texts for w in _WORD.findall(text)]
    return (sum(is_common_word(w) for w in words) / len(words) if words else 0.0), len(words)


def not_english_warning(texts: Iterable[str], language: str) -> str | None:
    """A warning when ``language`` is English but the text does not look it, else None."""
    from .targets import is_english

    if not is_english(language):
        return None
    share, words = english_share(texts)
    if words < MIN_WORDS or share >= MIN_ENGLISH_SHARE:
        return None
    return (f"the transcripts do not look English (only {share:.0%} of their {words} words are "
            "common English words), yet training is in English: if they are in another "
            "language, stop and pass --language with its code (de, fr, es ...)")
