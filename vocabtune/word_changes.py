"""What a fine-tune changed in plain speech, word by word: the words of a general-English
test that the fine-tuned model gets wrong and its base got right ("new errors"), and the
reverse ("fixed").

Why: a forgetting check that prints only "general WER 7.2% -> 8.7%" tells a person that
something broke, not what. Six new errors that are all one of their terms written into plain
speech call for another recipe; six scattered slips on short words are what any fine-tune of
a small model costs. Pure functions over the texts, on Whisper-normalised words as the WER
is computed, so the lists add up to the WER difference up to errors that both models make at
the same place in different ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import jiwer

from .scoring import normalize

if TYPE_CHECKING:                   # wer_interval imports this module
    from .wer_interval import WerChange


@dataclass(frozen=True)
class WordError:
    """One alignment error: reference words [start, end) written as ``hyp``; an inserted
    word has start == end (it comes before reference word ``start``)."""

    chunk: int
    start: int
    end: int
    ref: str
    hyp: str

    def slots(self) -> set[int]:
        """Where the error sits, so errors of two models can be compared: reference word i
        is slot 2i+1, the gap before it slot 2i."""
        if self.start == self.end:
            return {2 * self.start}
        return {2 * i + 1 for i in range(self.start, self.end)}


@dataclass(frozen=True)
class WordChange:
    """A stretch of reference one model gets right and the other wrong."""

    chunk: int
    ref: str          # the reference words ("" for an inserted word)
    wrong: str        # what the model that gets it wrong wrote ("" for a dropped word)


def word_errors(refs: Sequence[str], hyps: Sequence[str], language: str = "en") -> list[WordError]:
    """Every substitution, deletion and insertion, chunk by chunk, on normalised words."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors: list[WordError] = []
    for chunk, (ref, hyp) in enumerate(zip(refs, hyps)):
        ref_words, hyp_words = normalize(ref, language).split(), normalize(hyp, language).split()
        if not ref_words:       # jiwer refuses an empty reference: all of hyp is inserted
            if hyp_words:
                errors.append(WordError(chunk, 0, 0, "", " ".join(hyp_words)))
            continue
        out = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
        for op in out.alignments[0]:
            if op.type != "equal":
                errors.append(WordError(chunk, op.ref_start_idx, op.ref_end_idx,
                                        " ".join(ref_words[op.ref_start_idx:op.ref_end_idx]),
                                        " ".join(hyp_words[op.hyp_start_idx:op.hyp_end_idx])))
    return errors


def only_in(errors: Sequence[WordError], other: Sequence[WordError]) -> list[WordChange]:
    """The errors of ``errors`` at places where ``other`` has none (so the other model got
    those words right); errors that overlap one of ``other``'s are in neither list."""
    taken: dict[int, set[int]] = {}
    for err in other:
        taken.setdefault(err.chunk, set()).update(err.slots())
    return [WordChange(e.chunk, e.ref, e.hyp) for e in errors
            if not e.slots() & taken.get(e.chunk, set())]


@dataclass(frozen=True)
class Changes:
    new: list[WordChange]      # the fine-tuned model gets these wrong, its base right
    fixed: list[WordChange]    # the base gets these wrong (``wrong`` is its text), the fine-tune right
    wer_change: WerChange | None = None     # the WER difference and its interval


def word_changes(refs: Sequence[str], base_hyps: Sequence[str], tuned_hyps: Sequence[str]) -> Changes:
    return changes_between(word_errors(refs, base_hyps), word_errors(refs, tuned_hyps))


def changes_between(base: Sequence[WordError], tuned: Sequence[WordError]) -> Changes:
    """The lists from both models' errors on the same references, for a caller that needs
    the errors for more than this (evaluation also resamples them, wer_interval.py)."""
    return Changes(new=only_in(tuned, base), fixed=only_in(base, tuned))
