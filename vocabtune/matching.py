"""Find likely mis-hearings of vocabulary terms in caption text (pure; used by ``suggest``).

Every run of 1 to a few words of the text (an n-gram) is compared with every term, and
with every alias, in *spoken form* (:mod:`vocabtune.spoken`), by two measures:

* **spelling**: rapidfuzz's normalised Indel similarity of the spoken keys; and
* **sound**: the same similarity of their Metaphone codes (jellyfish), which keep the
  consonant skeleton and drop what Whisper most often gets wrong (vowels, doubled letters,
  ph/f, c/k). "mixed role 8 by 7 B" and "Mixtral 8x7B" share the code MKSTRLTBSFNB.

A mis-hearing *sounds* like the term, so sound is the main evidence; spelling guards
against Metaphone's coarseness ("rope", "ripe" and "rip" share a code). The bars are stated
in edits, not fitted to any data set (see the constants). Ordinary words are protected:
one common English word is never replaced unless an alias names it, and a phrase of common
words only when it says the term almost exactly ("bits and bytes" -> "bitsandbytes"), and
never, when a few lower-case words count something, for a term written with digits ("her
two kids" is not "HER2", nor "a one off" "A1").
Text that already contains a term spelt exactly (:func:`vocabtune.vocab.find_term`) is left
alone, except to restore the vocabulary's capitals ("vllm" -> "vLLM").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

import jellyfish
import numpy as np
from rapidfuzz import fuzz, process

from .common_words import EDGE, is_common_word, is_lone_common_word
from .schema import Term
from .spoken import ONES, TENS, spoken_key, spoken_words
from .vocab import MIN_INFLECTED_CHARS, elision_length, find_term, inflected, spelt_right_at

# fuzz.ratio is 1 - indels / (len a + len b); one substituted character in a key of L
# characters costs 2 indels, so a similarity s allows about (1 - s) * L substitutions.
MIN_SOUND = 0.75            # Metaphone codes: at most 1 sound in 4 differs
MIN_SPELLING = 0.70         # spoken keys: at most ~3 characters in 10 differ ...
MIN_SCORE = 0.80            # ... and on average over both, at most 1 in 5
MIN_SCORE_COMMON = 0.90     # a phrase of common words: at most 1 character in 10 differs
MIN_FUZZY_CHARS = 4         # a key this short on either side (DPO, TRL; "LLM" heard) matches
#                             only exactly: one edit of 3 letters is already another word
#                             ("awk", "dip"; "LLM" is not "vLLM")
EXTRA_WORDS = 2             # an n-gram may have 2 words more than the term says
MAX_WORDS = 10              # ... and never more than 10 words
MAX_COUNTING_WORDS = 3      # everyday words that say a code by chance are few ("her two"
#                             for HER2); a longer run that says one is the code
PLURAL_ENDINGS = ("s", "es")   # English plurals a near miss of a singular term must keep
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_PART = re.compile(r"[^-/–—]+")                    # pieces of a word between hyphens/slashes
_CLAUSE_END = re.compile(r"[.!?;:…][\"'”’)\]]*$")   # an n-gram never runs past these
NUMBER_WORDS = frozenset(ONES) | frozenset(TENS[2:]) | {"hundred", "thousand", "million", "billion",
                                                        "trillion", "point"}
# a last letter standing alone or after a digit: "troponin I", "stage 3b", "Yi-34B", "8x7B"
_FINAL_LETTER = re.compile(r"(?<![^\s\-\d])([^\W\d_])[.,;:!?…\"'”’)\]]*$")
_LAST_WORD = re.compile(r"([^\W\d_]+)[.,;:!?…\"'”’)\]]*$")
# English letter names Whisper writes for a letter said alone ("8 by 7 be" for 8x7B)
LETTER_NAMES = {"ay": "a", "bee": "b", "be": "b", "see": "c", "sea": "c", "cee": "c", "dee": "d",
                "ee": "e", "eff": "f", "gee": "g", "aitch": "h", "jay": "j", "kay": "k", "el": "l",
                "em": "m", "en": "n", "oh": "o", "pee": "p", "cue": "q", "queue": "q", "ar": "r",
                "are": "r", "ess": "s", "tee": "t", "tea": "t", "you": "u", "vee": "v", "ex": "x",
                "why": "y", "zed": "z", "zee": "z"}


@dataclass(frozen=True)
class Suggestion:
    """Replace ``text[start:end]`` (``found``) by ``term``, spelt as in the vocabulary."""

    start: int
    end: int
    found: str
    term: str
    score: float                # 0..1, 1 = says the term exactly
    alias: bool = False         # matched through an alias of the term
    ending: str = ""            # a plural ending the text gave the term ("T cells": "s")

    @property
    def replacement(self) -> str:
        """What ``found`` becomes: the term, with the text's plural ending kept."""
        return self.term + self.ending


@dataclass(frozen=True)
class _Key:
    """One way of saying a term: its own spoken form, a variant, or an alias."""

    term: str
    key: str
    words: int                  # spoken words, which bounds the n-gram length
    alias: bool


@dataclass(frozen=True)
class _Phrase:
    """One n-gram of the text: character span, word count, spoken key."""

    start: int
    end: int
    words: int
    key: str
    common: bool                # every word is a common English word
    counts: bool                # ... a few, in lower case, one a number in words ("her two")


# --- the vocabulary side ---------------------------------------------------------------

def term_keys(terms: Sequence[Term]) -> list[_Key]:
    """Every way of saying every term: its spoken form, the form without "dot"
    ("llama cpp"), each alias, and each partial alias standing in for its part of the term."""
    keys: dict[tuple[str, str], _Key] = {}
    for term in terms:
        own = spoken_words(term.text)
        forms = [(own, False), ([w for w in own if w != "dot"], False)]
        for alias in term.aliases:
            said = spoken_words(alias)
            forms.append((said, True))
            whole = stand_in(own, said)
            forms += [(whole, True)] if whole else []
        for words, alias in forms:
            key = "".join(words)
            known = keys.get((term.text, key))
            # an alias that says the term's own key ("RoPE | rope") still marks it as named
            if key and (known is None or (alias and not known.alias)):
                keys[(term.text, key)] = _Key(term.text, key, len(words), alias)
    return list(keys.values())


def stand_in(whole: list[str], part: list[str]) -> list[str] | None:
    """``whole`` with ``part`` in place of the stretch of it that ``part`` most resembles.

    An alias shorter than its term is a mis-hearing of *part* of it: with the alias "mixed
    role" for "Mixtral 8x7B", the text says "mixed role 8 by 7 B", and replacing only "mixed
    role" would leave "Mixtral 8x7B 8 by 7 B". The stretch must resemble the alias more than
    not (similarity >= 0.5); otherwise the alias stands alone.
    """
    if not part or len(part) >= len(whole):
        return None
    said = "".join(part)
    spans = [(i, j) for i in range(len(whole)) for j in range(i + 1, len(whole) + 1)
             if j - i < len(whole)]
    score, (i, j) = max((fuzz.ratio("".join(whole[i:j]), said), (i, j)) for i, j in spans)
    return whole[:i] + part + whole[j:] if score >= 50 else None


def sound(key: str) -> str:
    """Metaphone code of a spoken key (jellyfish; "" for a key without letters)."""
    return jellyfish.metaphone(key) if key else ""


# --- the text side ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Word:
    start: int                  # span of the word without surrounding punctuation
    end: int
    core: str
    ends_clause: bool           # followed by . ! ? ; : — no n-gram runs past it
    elided: int = 0             # characters of an elided word before it ("l'" of "l'IRM")


def text_words(text: str) -> list[_Word]:
    """Words with their edge punctuation and a possessive trimmed ("(GGF's," -> GGF), and
    split at hyphens and slashes ("GGF-based" -> GGF|based), so a suggestion replaces only
    the mis-heard part and keeps the rest of what was written."""
    words = []
    for m in re.finditer(r"\S+", text):
        raw = m.group()
        lead = len(raw) - len(raw.lstrip(EDGE))
        core = _POSSESSIVE.sub("", raw.strip(EDGE))
        start = m.start() + lead
        parts = list(_PART.finditer(core)) or [None]
        for n, part in enumerate(parts):
            s, e = (part.start(), part.end()) if part else (0, 0)
            last = n == len(parts) - 1
            words.append(_Word(start + s, start + e, core[s:e],
                               last and bool(_CLAUSE_END.search(raw)), elision_length(core[s:e])))
    return words


def phrases(text: str, max_words: int) -> list[_Phrase]:
    """All n-grams of 1..``max_words`` words that stay inside one clause; a word with an
    elided word glued on ("d'insufisance") starts n-grams with and without it."""
    words = text_words(text)
    out = []
    for i, first in enumerate(words):
        if not first.core:
            continue
        for start in dict.fromkeys((first.start, first.start + first.elided)):
            out += _phrases_from(text, words, i, start, max_words)
    return out


def _phrases_from(text: str, words: list[_Word], i: int, start: int, max_words: int) -> list[_Phrase]:
    out = []
    for j in range(i, min(i + max_words, len(words))):
        if not words[j].core:
            break
        key = spoken_key(text[start:words[j].end])
        if key:
            said = words[i:j + 1]
            common = all(is_common_word(w.core) for w in said)
            out.append(_Phrase(start, words[j].end, j - i + 1, key, common, common and counting(said)))
        if words[j].ends_clause:
            break
    return out


def counting(words: Sequence[_Word]) -> bool:
    """A few lower-case words, one of them a number said in words ("her two", "a one"):
    everyday speech counting something. Whisper writes a code with its digits ("HER2",
    "her 2"), so such words are no mis-hearing of one."""
    return (len(words) <= MAX_COUNTING_WORDS and any(w.core in NUMBER_WORDS for w in words)
            and all(w.core.islower() for w in words))


# --- matching --------------------------------------------------------------------------

class Matcher:
    """The vocabulary's spoken keys, computed once; :meth:`suggest` then runs per cue."""

    def __init__(self, terms: Sequence[Term]) -> None:
        self.terms = [t.text for t in terms]
        self.keys = term_keys(terms)
        self._key_text = [k.key for k in self.keys]
        self._key_sound = [sound(k.key) for k in self.keys]
        self._key_words = np.array([k.words for k in self.keys])
        self._fuzzy_ok = np.array([len(k.key) >= MIN_FUZZY_CHARS for k in self.keys])
        self._code = np.array([any(c.isdigit() for c in k.term) for k in self.keys])
        self.max_words = min(MAX_WORDS, int(self._key_words.max(initial=0)) + EXTRA_WORDS)
        self._named = {(k.term, k.key) for k in self.keys if k.alias}

    def suggest(self, text: str) -> list[Suggestion]:
        """Non-overlapping replacements for ``text``, in text order."""
        if not self.keys or not text.strip():
            return []
        protected = [(s, e, t) for t in self.terms for s, e in find_term(t, text)]
        forms = protected + inflected_forms(text, self.terms)
        found = _case_fixes(text, protected, self._named) + [
            c for c in self._candidates(text) if _allowed(c, forms)]
        return _best_non_overlapping(found)

    def _candidates(self, text: str) -> list[Suggestion]:
        grams = phrases(text, self.max_words)
        if not grams:
            return []
        spell, heard = self._similarity(grams)
        score = np.where(spell >= 1.0, 1.0, (spell + heard) / 2)
        ok = self._accept(grams, spell, heard, score)
        found = [Suggestion(grams[i].start, grams[i].end, text[grams[i].start:grams[i].end],
                            self.keys[k].term, float(score[i, k]), self.keys[k].alias)
                 for i, k in zip(*np.nonzero(ok))]
        return [replace(c, ending=plural_ending(c.found, c.term)) for c in found
                if not elides_more(c.found, c.term)
                and ((c.alias and c.score >= 1.0)
                     or same_marks(c.found, c.term) and not says_less(c.found, c.term))]

    def _similarity(self, grams: list[_Phrase]) -> tuple[np.ndarray, np.ndarray]:
        """(spelling, sound) similarity in 0..1 of every n-gram (rows) with every key."""
        spell = process.cdist([g.key for g in grams], self._key_text, scorer=fuzz.ratio)
        heard = process.cdist([sound(g.key) for g in grams], self._key_sound, scorer=fuzz.ratio)
        return spell / 100, heard / 100

    def _accept(self, grams: list[_Phrase], spell: np.ndarray, heard: np.ndarray,
                score: np.ndarray) -> np.ndarray:
        """The bars of the module doc, as a boolean matrix like ``score``."""
        words = np.array([g.words for g in grams])[:, None]
        common = np.array([g.common for g in grams])[:, None]
        alias = np.array([k.alias for k in self.keys])[None, :]
        exact = spell >= 1.0
        long_enough = np.array([len(g.key) >= MIN_FUZZY_CHARS for g in grams])[:, None]
        fuzzy = (self._fuzzy_ok[None, :] & long_enough & (heard >= MIN_SOUND) & (spell >= MIN_SPELLING)
                 & (score >= np.where(common, MIN_SCORE_COMMON, MIN_SCORE)))
        lone_common = common & (words == 1)          # "rope", "queen": only an alias may
        # "her two kids", "a one off", "be twelve": everyday words counting something, not
        # a code written with digits (HER2, A1, B12), which Whisper writes with its digits
        counting = np.array([g.counts for g in grams])[:, None] & self._code[None, :]
        fits = words <= self._key_words[None, :] + EXTRA_WORDS
        return fits & ((exact & alias) | ((exact | fuzzy) & ~lone_common & ~counting))


def same_marks(found: str, term: str) -> bool:
    """Whether ``found`` says the term's numbers and its final letter. These tell a family
    of terms apart ("atorvastatin 20 mg" / "40 mg", "SGLT1" / "SGLT2", "CKD stage 3a" /
    "3b", "troponin T" / "I"), and a sound-alike match would happily swap them, which in
    a dose or a version changes the meaning. So a near miss may respell words but never
    change, add or drop a number, nor the letter a term ends on, and a bare number is no
    near miss at all. An alias said exactly is exempt: the person wrote down that those
    words mean the term (a near miss of an alias is not)."""
    def numbers(words: list[str]) -> list[str]:
        return [w for w in words if w in NUMBER_WORDS]

    def final_letter(text: str, names: bool = False) -> str | None:
        m = _FINAL_LETTER.search(text)
        if m:
            return m.group(1).casefold()
        word = _LAST_WORD.search(text) if names else None
        return LETTER_NAMES.get(word.group(1).casefold()) if word else None

    said, meant = spoken_words(found), spoken_words(term)
    if said and numbers(said) == said and said != meant:
        return False            # a bare number ("5" in "5-ASA") is not a near miss of "5-FU"
    if numbers(said) != numbers(meant):
        return False
    letter = final_letter(term)
    return letter is None or final_letter(found, names=True) == letter


def elides_more(found: str, term: str) -> bool:
    """Whether ``found`` starts with an elided word the term does not start with: "d'"
    in "d'insufisance rénale" belongs to the sentence, and replacing it all by the term
    "insuffisance rénale" deleted it. A term that starts so itself ("L'Oréal") may."""
    return elision_length(found) > 0 and not elision_length(term)


def says_less(found: str, term: str) -> bool:
    """Whether ``found`` names a shorter member of the term's family: it says the term's
    first written words exactly, and then nothing, or words that do not by themselves
    sound like the rest ("iPhone 15" or "iPhone 15 is" for "iPhone 15 Pro", "Claude 3" for
    "Claude 3 Opus", "Wi-Fi" for "Wi-Fi 6E"). Judged whole, the right part carried the
    rest over the bars. Only whole words of the term: Whisper does drop the end of a word
    ("Smol" for "SmolLM", "5F" for "5-FU")."""
    said, meant, words = spoken_words(found), spoken_words(term), term.split()
    heads = (spoken_words(" ".join(words[:k])) for k in range(1, len(words)))
    return any(said[:len(h)] == h == meant[:len(h)]
               and not sounds_like("".join(said[len(h):]), "".join(meant[len(h):])) for h in heads)


def sounds_like(said: str, meant: str) -> bool:
    """Whether spoken key ``said`` sounds like ``meant`` by the matcher's bar for sound
    ("hugging phase" is heard as "Hugging Face"; "is" is no "Pro")."""
    return said == meant or fuzz.ratio(sound(said), sound(meant)) / 100 >= MIN_SOUND


def plural_ending(found: str, term: str) -> str:
    """The plural ending ``found`` puts on the term's last word, to keep in the replacement:
    "t cells" is "T-cells" and "cafe au lait spots" is "café au lait spots" for the terms
    "T-cell" and "café au lait spot", not the singular (which changed what was said).
    Only when the last word is the term's own, spelt right, plus the ending: in "and
    tropics" for "Anthropic" the "s" is part of the mis-hearing. A term ending in a capital
    or digit ("macOS", "Yi-34B") has no plural ending to keep."""
    said, meant = spoken_words(found), spoken_words(term)
    if not said or not meant or not term[-1:].islower():
        return ""
    return next((e for e in PLURAL_ENDINGS if found.endswith(e) and said[-1] == meant[-1] + e), "")


def inflected_forms(text: str, terms: Sequence[str]) -> list[tuple[int, int, str]]:
    """Spans of ``text`` that say a term in another grammatical form (``vocab.inflected``:
    "embeddings", "Wechselwirkungen"). Protected like exact occurrences: no suggestion may
    rewrite them, alone or inside a longer phrase ("embeddings and" -> "embedding")."""
    words = text_words(text)
    found = []
    for term in terms:
        n, head = len(text_words(term)), term[:MIN_INFLECTED_CHARS].lower()
        for i in range(len(words) - n + 1):
            start, end = words[i].start, words[i + n - 1].end
            if text[start:end].lower().startswith(head) and inflected(text[start:end], term):
                found.append((start, end, term))
    return found


def _case_fixes(text: str, protected: list[tuple[int, int, str]],
               named: set[tuple[str, str]]) -> list[Suggestion]:
    """Occurrences written with other capitals (``vocab.spelt_as``): restore the vocabulary
    spelling, unless the text is one common word ("solar" is not always "SOLAR") that no
    alias of the term names (``named``: (term, spoken key) pairs, "RoPE | rope")."""
    fixes = []
    for start, end, term in protected:
        found = text[start:end]
        alias = (term, spoken_key(found)) in named
        if not spelt_right_at(term, text, start, end) and (alias or not is_lone_common_word(found)):
            fixes.append(Suggestion(start, end, found, term, 1.0, alias))
    return fixes


def _allowed(c: Suggestion, protected: list[tuple[int, int, str]]) -> bool:
    """A candidate may not touch text that already holds a term spelt exactly, except to
    grow it into a longer term that contains it ("Q-LoRA" -> "QLoRA" around "LoRA"), and
    then only when the text *says* the longer term exactly: a near miss there is far more
    often the right term and the next word ("GPT-4 and" is not "GPT-4o", "Llama 3 one more
    time" is not "Llama 3.1"), and a fuzzy grow would undo a correct text on every run."""
    for start, end, term in protected:
        if start < c.end and c.start < end:
            grows = (c.start <= start and end <= c.end and c.end - c.start > end - start
                     and c.term != term and term.casefold() in c.term.casefold()
                     and c.score >= 1.0)
            if not grows:
                return False
    return True


def _best_non_overlapping(found: list[Suggestion]) -> list[Suggestion]:
    """Greedy by score; on a tie the longer span wins (it explains more of what was said)."""
    chosen: list[Suggestion] = []
    for c in sorted(found, key=lambda c: (-c.score, -(c.end - c.start), c.start)):
        if all(c.end <= o.start or o.end <= c.start for o in chosen):
            chosen.append(c)
    return sorted(chosen, key=lambda c: c.start)
