"""How sure a WER difference between two models on the same test is: a paired bootstrap
interval (Bisani & Ney, 2004, "Bootstrap estimates for confidence intervals in ASR
performance evaluation").

Why: a general-English check of a few minutes holds a few hundred words, so one word is a
quarter of a point, and a fine-tune's forgetting of "+0.8 point" may be three words that
another seed would not have broken. The interval says whether the test can tell the change
from no change at all, before a person retrains over it.

Resampling units are stretches of ``BLOCK_WORDS`` consecutive reference words within a chunk,
not sentences: they need no sentence boundaries (any dataset's chunks work), and they keep an
error that spans neighbouring words in one unit. Both models are scored on the same resampled
stretches (paired), so what the two share cancels. Pure functions; numpy's seeded generator
makes the interval the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .scoring import normalize
from .word_changes import WordError

BLOCK_WORDS = 10        # reference words per resampling unit
ROUNDS = 2000           # bootstrap resamples
LEVEL = 0.95            # two-sided interval
SEED = 0


@dataclass(frozen=True)
class WerChange:
    """``tuned`` WER minus ``base`` WER (fractions), and the interval around it."""

    change: float
    low: float
    high: float
    blocks: int         # resampling units
    level: float = LEVEL
    block_words: int = BLOCK_WORDS
    rounds: int = ROUNDS

    @property
    def tells_apart(self) -> bool:
        """False when the interval holds 0: the test cannot tell the change from none."""
        return self.low > 0 or self.high < 0


def error_size(err: WordError) -> int:
    """Errors the WER counts for one alignment step: a substitution or deletion counts its
    reference words, an insertion its written words (jiwer groups like steps together)."""
    return max(err.end - err.start, len(err.hyp.split()))


def ref_lengths(refs: Sequence[str], language: str = "en") -> list[int]:
    """Reference words per chunk, normalised as the WER counts them."""
    return [len(normalize(ref, language).split()) for ref in refs]


def block_counts(lengths: Sequence[int], errors: Sequence[WordError], block_words: int = BLOCK_WORDS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the errors in ``errors`` (one model's, from ``word_errors``) and the
    reference words. Blocks depend only on ``lengths``, so two models' counts on the same
    references pair up index by index."""
    offsets = np.cumsum([0] + [_blocks_in(n, block_words) for n in lengths])
    words = np.zeros(offsets[-1], dtype=np.int64)
    for chunk, n in enumerate(lengths):
        for b in range(_blocks_in(n, block_words)):
            words[offsets[chunk] + b] = min(block_words, n - b * block_words)
    counts = np.zeros_like(words)
    for err in errors:
        last = _blocks_in(lengths[err.chunk], block_words) - 1
        counts[offsets[err.chunk] + min(err.start // block_words, last)] += error_size(err)
    return counts, words


def _blocks_in(n_words: int, block_words: int) -> int:
    """A chunk with no reference words still has one block, to hold what was inserted."""
    return max(1, -(-n_words // block_words))


def wer_change(lengths: Sequence[int], base_errors: Sequence[WordError], tuned_errors: Sequence[WordError],
               rounds: int = ROUNDS, level: float = LEVEL, seed: int = SEED,
               block_words: int = BLOCK_WORDS) -> WerChange:
    """The tuned model's WER minus the base's on references of ``lengths`` words per chunk
    (``ref_lengths``), from each model's ``word_errors``, with the percentile interval of
    that difference over ``rounds`` resamples of the blocks (the same blocks for both)."""
    base, words = block_counts(lengths, base_errors, block_words)
    tuned, _ = block_counts(lengths, tuned_errors, block_words)
    total = words.sum()
    if total == 0:
        raise ValueError("no reference words: a WER difference needs a reference")
    picks = np.random.default_rng(seed).integers(0, len(words), size=(rounds, len(words)))
    resampled_words = np.maximum(words[picks].sum(axis=1), 1)     # an all-empty draw: 0/1
    diffs = (tuned[picks].sum(axis=1) - base[picks].sum(axis=1)) / resampled_words
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return WerChange(float((tuned.sum() - base.sum()) / total), float(low), float(high), len(words),
                     level, block_words, rounds)
