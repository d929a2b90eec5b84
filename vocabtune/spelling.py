"""Likely misspelt vocabulary terms in caption text: hints for ``check``, never edits.

A span of text is flagged when it is *close to* a term without matching it exactly
(:func:`vocabtune.vocab.find_exact`: whole words, capitals included, except a capital first
letter at the start of a sentence):

* **written differently** — the same letters and digits with other capitals, separators
  or spacing: "Lora" for "LoRA", "Mixtral 8 x 7B", "Tiny Llama", "llamacpp", "Phi 2" for
  "Phi-2" (symbols said aloud are not separators: "c" is not "C++"). Nor is a lone common
  word flagged ("solar" for "SOLAR", "net" for ".NET"): it is mostly the word itself, as
  ``suggest`` has it;
* **a near miss** — Damerau (OSA) edits, counted by rapidfuzz, of at most a quarter of the
  term's letters and digits (a similarity of 0.75 or more), and never more than 2 (the cap
  Lucene's fuzzy matching uses, as more edits mostly match unrelated words). So 5-7
  characters allow 1 edit, 8 or more allow 2. Terms under 5 characters get none: one edit
  of a 3-4 letter acronym is mostly another word ("RAG" → "rag", "bag"), so they only get
  the first check. Near misses are looked for among spans of as many words as the term,
  and the digits must agree: "Phi-3" is another model, not a typo of "Phi-2".

Neither rule looks at the shared example data; both are stated in terms of the term.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from rapidfuzz.distance import OSA

from .schema import Cue, Problem, Severity
from .common_words import EDGE as _EDGE, is_lone_common_word
from .vocab import elision_length, find_term, inflected, spelt_right_at

MIN_FUZZY_CHARS = 5          # shorter terms: only separator/spacing variants are flagged
CHARS_PER_EDIT = 4           # one edit allowed per 4 letters/digits of the term ...
MAX_EDITS = 2                # ... and never more than 2
MAX_EXTRA_WORDS = 2          # "Mixtral 8 x 7B": a 2-word term written as up to 4 words
_NON_ALNUM = re.compile(r"[\W_]+")
# What "written differently" may differ in: separators, spacing and dots, not the symbols
# that are said aloud. "C++" is not "C" written differently, nor "F#" "f", nor "AT&T" "att";
# check told the person to turn "vitamin c" into "C++".
_SEPARATORS = re.compile(r"[^\w+#&%@]+|_+")
_DIGITS = re.compile(r"\d+")
_PLURAL = ("s", "es", "'s", "’s")


@dataclass(frozen=True)
class Misspelling:
    found: str                  # the text as written
    term: str                   # the vocabulary spelling it is probably meant to be
    start: int                  # character offsets in the text
    end: int
    edits: int                  # 0 = written differently (separators/spacing only)


def near_misses(text: str, terms: Sequence[str]) -> list[Misspelling]:
    """Spans of ``text`` that look like a misspelt term, best first, not overlapping.

    Each window of words is normalised once and each term once (``_prepared``), not once per
    (window, term) pair: ``check`` and ``build`` run this over every cue of every recording."""
    found = [(s, e, term) for term in terms for s, e in find_term(term, text)]
    words = _words(text)
    longest = max((len(t.split()) for t in terms), default=0)
    windows = [_Window(text[s:e], s, e, k) for s, e, k in _windows(text, words, longest)
               if not any(a < e and s < b for a, b, _ in found)]
    hits = [Misspelling(text[s:e], term, s, e, 0) for s, e, term in found
            if not spelt_right_at(term, text, s, e) and not is_lone_common_word(text[s:e])]
    index = _index(tuple(terms))
    pairs = sorted((t, i) for i, w in enumerate(windows) for t in index.candidates(w.keyed))
    for t, i in pairs:          # in (term, window) order, as a loop over every pair would be
        w, term = windows[i], index.terms[t]
        if w.words > term.words + MAX_EXTRA_WORDS:
            continue
        edits = _edits(w, term)
        if edits is not None and not (edits == 0 and is_lone_common_word(w.found)):
            hits.append(Misspelling(w.found, term.text, w.start, w.end, edits))
    return _non_overlapping(hits)


@dataclass(frozen=True)
class _Index:
    """The terms looked up by what ``_edits`` needs first, so a window meets only the terms
    it could be a misspelling of. Why: every (window, term) pair took a Python call, 96,700
    of them for llm-lingo's two recordings, most of the build's own time."""

    terms: tuple["_Term", ...]
    by_bare: dict[str, tuple[int, ...]]             # letters and digits only -> terms
    by_words: dict[int, tuple[int, ...]]            # word count -> fuzzy-matchable terms

    def candidates(self, window: "_Keyed") -> set[int]:
        """Terms with the window's bare letters (separators only), and terms of its word
        count whose length is within their edits of it."""
        near = {t for t in self.by_words.get(window.words, ())
                if abs(len(window.key) - len(self.terms[t].keyed.key)) <= self.terms[t].allowed}
        return near.union(self.by_bare.get(window.bare, ()))


@lru_cache(maxsize=64)
def _index(terms: tuple[str, ...]) -> _Index:
    prepared = _prepared(terms)
    by_bare: dict[str, tuple[int, ...]] = {}
    by_words: dict[int, tuple[int, ...]] = {}
    for t, term in enumerate(prepared):
        by_bare[term.keyed.bare] = by_bare.get(term.keyed.bare, ()) + (t,)
        if term.allowed:
            by_words[term.words] = by_words.get(term.words, ()) + (t,)
    return _Index(prepared, by_bare, by_words)


@dataclass(frozen=True)
class _Keyed:
    """A term or a window of text in the forms the rules compare."""

    text: str
    words: int
    key: str                    # case-folded, single spaces
    bare: str                   # letters and digits only
    digits: tuple[str, ...]

    @classmethod
    def of(cls, text: str, words: int) -> "_Keyed":
        key = _key(text)
        return cls(text, words, key, _SEPARATORS.sub("", key), tuple(_DIGITS.findall(key)))


@dataclass(frozen=True)
class _Window:
    found: str
    start: int
    end: int
    words: int

    @property
    def keyed(self) -> _Keyed:
        return _keyed_window(self.found, self.words)


@lru_cache(maxsize=65536)
def _keyed_window(found: str, words: int) -> _Keyed:
    return _Keyed.of(found, words)


@lru_cache(maxsize=64)
def _prepared(terms: tuple[str, ...]) -> tuple["_Term", ...]:
    return tuple(_Term(_Keyed.of(t, len(t.split())), max_edits(t)) for t in terms)


@dataclass(frozen=True)
class _Term:
    keyed: _Keyed
    allowed: int

    @property
    def text(self) -> str:
        return self.keyed.text

    @property
    def words(self) -> int:
        return self.keyed.words


def _words(text: str) -> list[tuple[int, int]]:
    """Whitespace-separated words with surrounding punctuation trimmed, as offsets."""
    out = []
    for m in re.finditer(r"\S+", text):
        word = m.group()
        left = len(word) - len(word.lstrip(_EDGE))
        right = len(word.rstrip(_EDGE))
        if right > left:
            out.append((m.start() + left, m.start() + right))
    return out


def _windows(text: str, words: list[tuple[int, int]], n: int) -> Iterable[tuple[int, int, int]]:
    """(start, end, word count) of runs of 1 .. n + MAX_EXTRA_WORDS consecutive words; a
    first word with an elided word glued on ("l'échografie") starts one without it too."""
    for i, (first, first_end) in enumerate(words):
        elided = elision_length(text[first:first_end])
        for k in range(1, n + MAX_EXTRA_WORDS + 1):
            if i + k <= len(words):
                yield first, words[i + k - 1][1], k
                if elided:
                    yield first + elided, words[i + k - 1][1], k


def _edits(window: _Window, term: _Term) -> int | None:
    """Edits from the window's text to ``term`` when it counts as a misspelling, else None.
    The cheap tests come first: this runs for every (window, term) pair of every cue."""
    a, b = window.keyed, term.keyed
    if a.bare == b.bare:        # an ending would add letters, so this is never another form
        return None if a.key == b.key else 0    # exact (case, spacing), or separators only
    allowed = term.allowed
    if a.words != b.words or not allowed or abs(len(a.key) - len(b.key)) > allowed:
        return None
    if a.key in (b.key + s for s in _PLURAL) or inflected(a.key, b.key):
        return None             # another form of the term
    if a.digits != b.digits:
        return None
    edits = OSA.distance(a.key, b.key, score_cutoff=allowed)
    return edits if 0 < edits <= allowed else None


def max_edits(term: str) -> int:
    """Edits tolerated for a term of this length (see the module docstring)."""
    length = len(_NON_ALNUM.sub("", term))
    if length < MIN_FUZZY_CHARS:
        return 0
    return min(length // CHARS_PER_EDIT, MAX_EDITS)


def _key(text: str) -> str:
    # lower(), not casefold(): casefold makes "ß" "ss", so "Grössenordnung" would pass as
    # "Größenordnung" written differently, though scoring counts it as another spelling
    return " ".join(text.lower().split())


def _non_overlapping(hits: list[Misspelling]) -> list[Misspelling]:
    """Keep the closest hit where several overlap (fewest edits, then the longest span)."""
    kept: list[Misspelling] = []
    for hit in sorted(hits, key=lambda h: (h.edits, -(h.end - h.start), h.start)):
        if all(hit.end <= k.start or k.end <= hit.start for k in kept):
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def spelling_problems(cues: Sequence[Cue], terms: Sequence[str], file: str) -> list[Problem]:
    """One WARNING per likely misspelt term, at the cue's timing line."""
    problems = []
    for cue in cues:
        for miss in near_misses(cue.text, terms):
            how = "written differently from" if miss.edits == 0 else "close to"
            problems.append(Problem(Severity.WARNING, file, cue.line,
                                    f'"{miss.found}" is {how} the vocabulary term "{miss.term}"',
                                    f'did you mean "{miss.term}"?'))
    return problems
