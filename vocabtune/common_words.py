"""Everyday English words: a term written in other capitals that is one of them ("solar" for
"SOLAR", "go" for "Go") is mostly the word itself. ``suggest`` and ``check`` leave such a word
alone, and the term metrics and counts do not take it for the term. Its own module because
both the matching side (matching, spelling) and the vocabulary side (vocab) need it.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

EDGE = "\"'()[]{}<>“”‘’«»‹›„‚¿¡.,;:!?…"     # punctuation around a word, not part of it


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """The 10,000 most frequent English words (see the header of the asset for the source)."""
    text = resources.files("vocabtune.assets").joinpath("common_words.txt").read_text("utf-8")
    return frozenset(w for w in text.split("\n") if w and not w.startswith("#"))


def is_common_word(word: str) -> bool:
    return word.strip(EDGE).replace("’", "'").lower().removesuffix("'s") in common_words()


def is_lone_common_word(text: str) -> bool:
    """One common word: "solar" written for the term "SOLAR" is mostly the word itself."""
    return len(text.split()) == 1 and is_common_word(text)
