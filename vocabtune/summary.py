"""What a build produced, as numbers and as a table a person reads in the terminal (pure).

The table answers the questions that decide whether the dataset is worth training on: how
much audio each split has, and whether every vocabulary term is heard often enough in
train to be learnt and at least once in validation to be measured.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .schema import Chunk
from .vocab import count_terms

MIN_TRAIN_OCCURRENCES = 3       # fewer than this in train: flagged as under-represented
SPLITS = ("train", "validation")


@dataclass(frozen=True)
class SplitStats:
    chunks: int
    audio_s: float                                     # s of audio in the split's chunks
    term_counts: dict[str, int] = field(default_factory=dict)   # every term, 0 included

    def as_json(self) -> dict:
        return {"chunks": self.chunks, "audio_s": round(self.audio_s, 3),
                "term_counts": dict(self.term_counts)}


def split_stats(chunks: Sequence[Chunk], terms: Sequence[str]) -> SplitStats:
    """Counted per chunk, as the model sees them: a term split across two chunks was
    split across two training examples too, so it is not counted."""
    counts: Counter[str] = Counter()
    for chunk in chunks:
        counts.update(count_terms(terms, chunk.text))
    return SplitStats(chunks=len(chunks), audio_s=sum(c.end - c.start for c in chunks),
                      term_counts={t: counts.get(t, 0) for t in terms})


def term_notes(stats: Mapping[str, SplitStats], term: str) -> list[str]:
    """Why a term deserves attention; empty when it is fine."""
    notes = []
    train = stats["train"].term_counts.get(term, 0)
    if train < MIN_TRAIN_OCCURRENCES:
        notes.append(f"under-represented in train (< {MIN_TRAIN_OCCURRENCES})")
    if stats["validation"].term_counts.get(term, 0) == 0:
        notes.append("never in validation")
    return notes


def format_summary(stats: Mapping[str, SplitStats], terms: Sequence[str]) -> str:
    """The whole summary: splits table, terms table, and a one-line verdict per flag."""
    parts = [format_splits(stats)]
    if terms:
        parts.append(format_terms(stats, terms))
        parts.append(format_verdict(stats, terms))
    return "\n\n".join(parts)


def format_splits(stats: Mapping[str, SplitStats]) -> str:
    rows = [(name, str(s.chunks), f"{s.audio_s / 60:.2f}") for name, s in stats.items()]
    rows.append(("total", str(sum(s.chunks for s in stats.values())),
                 f"{sum(s.audio_s for s in stats.values()) / 60:.2f}"))
    return _table(("split", "chunks", "minutes"), rows, right=(1, 2))


def format_terms(stats: Mapping[str, SplitStats], terms: Sequence[str]) -> str:
    names = list(stats)
    rows = [(term, *(str(stats[n].term_counts.get(term, 0)) for n in names),
             "; ".join(term_notes(stats, term))) for term in terms]
    return _table(("term", *names, "note"), rows, right=tuple(range(1, len(names) + 1)))


def format_verdict(stats: Mapping[str, SplitStats], terms: Sequence[str]) -> str:
    missing = [t for t in terms if stats["validation"].term_counts.get(t, 0) == 0]
    few = [t for t in terms if stats["train"].term_counts.get(t, 0) < MIN_TRAIN_OCCURRENCES]
    lines = []
    if missing:
        lines.append(f"! {len(missing)} of {len(terms)} terms never occur in validation, so "
                     f"their accuracy cannot be measured: {', '.join(missing)}")
    if few:
        lines.append(f"! {len(few)} of {len(terms)} terms occur fewer than "
                     f"{MIN_TRAIN_OCCURRENCES} times in train, too few to learn reliably: "
                     f"{', '.join(few)}")
    return "\n".join(lines) or (f"every term occurs at least {MIN_TRAIN_OCCURRENCES} times "
                                "in train and at least once in validation")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Aligned plain-text columns; numbers right-aligned. Trailing spaces stripped."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
