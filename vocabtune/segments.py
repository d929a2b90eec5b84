"""Pack a recording's corrected cues into training chunks of at most 30 s (pure, no audio).

Whisper sees 30 s windows, so a training example must fit in one; packing several short
cues into one chunk gives the model context and fewer padded windows. The rules:

* A chunk spans its first cue's start to its last cue's end; a cue is never split.
* A new chunk starts when the next cue would push the span past ``max_s``.
* A cue longer than ``max_s`` is an error (``check`` reports it too): dropping it silently
  would lose the person's corrected text.
* A cue with empty text, or text with no words ("...", "♪"), is left out *and ends the
  current chunk*. Its audio is of unknown content (a cough, music, or speech the person
  deleted because it was wrong); inside a chunk it would be audio without a transcript,
  which teaches Whisper to drop words. So its time span never lies inside any chunk.
* A zero-length cue is left out the same way (``check`` warns): its text has no audio.
* Overlapping cues (``check`` lets a few ms through as a warning): within a chunk the
  overlap is harmless (the span covers both); across a chunk boundary the later chunk's
  first cue is clipped to start where the previous chunk ends, so no audio is used twice.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import replace
from typing import Sequence

from .config import MAX_CHUNK_S
from .errors import VocabtuneError
from .schema import Chunk, Cue
from .vocab import count_terms

log = logging.getLogger(__name__)
TIME_EPS_S = 1e-6               # s: VTT times are whole ms; absorbs float noise in sums


def pack_cues(cues: Sequence[Cue], source: str, max_s: float = MAX_CHUNK_S, *,
              caption_file: str | None = None) -> list[Chunk]:
    """Consecutive cues of one recording -> chunks of at most ``max_s`` seconds.

    ``source`` is the recording's file name (stored in every chunk); ``caption_file`` is
    the VTT named in errors (default: ``source``). Cues must be in time order.
    """
    where = caption_file or source
    chunks: list[Chunk] = []
    current: list[Cue] = []
    last_end = 0.0              # end of the last chunk closed: nothing may start before it
    previous: Cue | None = None
    for cue in cues:
        _check_cue(cue, previous, max_s, where)
        previous = cue
        if not cue.trainable:       # _check_cue refused end < start, so: no words or no length
            last_end = _close(chunks, current, source, last_end)
            last_end = max(last_end, cue.end)
            current = []
            continue
        if current and cue.end - current[0].start > max_s + TIME_EPS_S:
            last_end = _close(chunks, current, source, last_end)
            current = []
        if not current:
            cue = _clip_start(cue, last_end, where)
        current.append(cue)
    _close(chunks, current, source, last_end)
    return chunks


def _close(chunks: list[Chunk], current: list[Cue], source: str, last_end: float) -> float:
    """Append ``current`` as a chunk (if any) and return the time the next one may start."""
    if not current:
        return last_end
    chunks.append(Chunk(source=source, cues=tuple(current)))
    return max(last_end, max(c.end for c in current))


def _clip_start(cue: Cue, not_before: float, where: str) -> Cue:
    """A chunk's first cue may not start inside the previous chunk (overlapping cues).
    Cue ends strictly increase (``_check_cue``), so the clipped cue is never empty."""
    if cue.start >= not_before:
        return cue
    log.debug("%s:%s: cue clipped to start at %.3f s (overlap)", where, cue.line, not_before)
    return replace(cue, start=not_before)


def _check_cue(cue: Cue, previous: Cue | None, max_s: float, where: str) -> None:
    """The few facts packing relies on; ``check`` reports these too, with more context."""
    if cue.start < 0 or cue.end < cue.start:
        raise VocabtuneError(f"cue ends at {cue.end:.3f} s, not after its start {cue.start:.3f} s",
                             file=where, line=cue.line, hint="fix the timestamps")
    if cue.duration > max_s + TIME_EPS_S:
        raise VocabtuneError(f"cue is {cue.duration:.1f} s long, over the {max_s:g} s limit",
                             file=where, line=cue.line,
                             hint="split this cue in two (Whisper cannot train on it)")
    if previous is not None and cue.start < previous.start:
        raise VocabtuneError("cue starts before the previous cue (out of order)", file=where,
                             line=cue.line, hint="put the cues in time order")
    if previous is not None and cue.end <= previous.end and cue.end > cue.start:
        # a chunk ends at its last cue's end: a nested cue would cut the one around it short
        raise VocabtuneError("cue lies entirely inside the previous cue", file=where,
                             line=cue.line, hint="fix its timestamps or merge the two cues")


def hold_out(chunks: Sequence[Chunk], fraction: float, seed: int = 0,
             terms: Sequence[str] = ()) -> tuple[list[Chunk], list[Chunk]]:
    """Split whole chunks into (train, validation) when no validation recording exists.

    Deterministic for a seed; both lists keep the input order; each gets at least one
    chunk, so ``fraction`` is a target, rounded, not an exact share. With ``terms``, the
    chunks are chosen to put as many terms as possible into validation, where recall is
    measured: a random tenth of 50 voice memos held 9 of llm-lingo's 40 terms, and the
    other 31 could not be scored at all. A chunk is taken for its terms only if each of
    them keeps an occurrence in train; the rest of the share is drawn at random, from such
    chunks first.
    """
    if not 0.0 < fraction < 1.0:
        raise VocabtuneError(f"validation fraction {fraction:g} is not between 0 and 1",
                             hint="pass e.g. --validation-fraction 0.1")
    if len(chunks) < 2:
        raise VocabtuneError(
            f"cannot hold out validation chunks: only {len(chunks)} chunk(s) of audio",
            hint="record more, or add a recording named validation.mp3 with its .vtt")
    n_val = min(max(round(len(chunks) * fraction), 1), len(chunks) - 1)
    order = random.Random(seed).sample(range(len(chunks)), len(chunks))
    picked = _covering(chunks, order, n_val, terms) if terms else []
    picked += [i for i in order if i not in picked][: n_val - len(picked)]
    chosen = set(picked)
    train = [c for i, c in enumerate(chunks) if i not in chosen]
    validation = [c for i, c in enumerate(chunks) if i in chosen]
    return train, validation


def _covering(chunks: Sequence[Chunk], order: Sequence[int], n_val: int,
              terms: Sequence[str]) -> list[int]:
    """Up to ``n_val`` chunk indices, greedily the one bringing the most terms not yet in
    validation (ties, and once every term is in: the first in ``order``), never one holding
    a term's last train occurrence."""
    found = {i: count_terms(terms, chunks[i].text) for i in order}
    in_train = Counter(t for counts in found.values() for t in counts.elements())
    covered: set[str] = set()
    picked: list[int] = []
    while len(picked) < n_val:
        gain = {i: len(set(found[i]) - covered) for i in order if i not in picked
                and all(in_train[t] > n for t, n in found[i].items())}
        if not gain:
            return picked
        best = max(gain, key=gain.__getitem__)      # the first of the ties: dicts keep order
        picked.append(best)
        covered |= set(found[best])
        in_train.subtract(found[best])
    return picked
