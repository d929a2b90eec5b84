"""Per-token loss weights that make training dwell on the vocabulary terms.

In a chunk that holds terms, most label tokens are everyday words the base model already
gets right; training on them at full weight moves the model towards the style of one
person's handful of sentences and adds little. ``--context-weight`` scales their loss, so the
gradient comes mostly from the terms. The words are not dropped: at weight 0 (terms only)
term recall fell on llm-lingo (92.7% against 100% at 0.2, seed 42, BENCHMARKS.md), since a
term is learnt in its context.

Chunks with no term (replay, or a person's chunk without one) keep weight 1 throughout:
they are there to keep general English, and every word of them is the point.

Pure: ``encode`` (text -> token ids) is passed in, so this is tested without a model.
"""

from __future__ import annotations

from typing import Sequence

from .targets import IGNORE_INDEX, Encode
from .vocab import find_term


def term_token_runs(text: str, terms: Sequence[str], encode: Encode) -> tuple[tuple[int, ...], ...]:
    """The token sequences the term occurrences in ``text`` take in a target, as written
    there: after a space (" Mixtral", as ``targets.text_ids`` encodes words) and without one
    (after a bracket or at the start of a cue). Empty when ``text`` holds no term."""
    found = {" ".join(text[a:b].split()) for term in terms for a, b in find_term(term, text)}
    runs = {tuple(encode(prefix + f)) for f in found for prefix in (" ", "")}
    return tuple(sorted(r for r in runs if r))


def label_weights(labels: Sequence[int], runs: Sequence[Sequence[int]],
                  context_weight: float) -> tuple[float, ...]:
    """One weight per label: 1 on tokens inside a term occurrence, ``context_weight`` on the
    other tokens (words, timestamps, end of text) of a chunk with terms, 1 everywhere in a
    chunk without (``runs`` empty), 0 on masked positions (no loss there anyway).

    Found by matching token sequences rather than mapping character offsets: BPE splits at
    word boundaries, so a term encoded alone has the tokens it has inside its sentence; a
    term glued to a neighbour ("GPT-4o's") still matches on the tokens before the glue."""
    labels = list(labels)
    inside = [False] * len(labels)
    for run in map(tuple, runs):
        n = len(run)
        for start in range(len(labels) - n + 1):
            if labels[start] == run[0] and tuple(labels[start:start + n]) == run:
                inside[start:start + n] = [True] * n
    other = context_weight if runs else 1.0
    return tuple(0.0 if label == IGNORE_INDEX else 1.0 if hit else other
                 for label, hit in zip(labels, inside))
