"""Whisper's timed segments -> caption cues that ``prepare_data.py check`` accepts (pure).

Whisper's timestamps are predictions, not facts: real models hallucinate past the end of
the audio, repeat a timestamp, or emit none at all, and a randomly initialised test model
emits any token anywhere. So nothing here trusts them: times are clamped to the audio,
forced to increase, zero-length stretches give their text to a neighbour rather than lose
it, and a segment that is too long is split at sentence ends (then at words), with times
shared out by character count, so no cue is over 30 s.

The text order is the decoding order (= speech order); cues are made monotonic rather than
sorted, so a wild timestamp cannot shuffle sentences.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from .config import MAX_CHUNK_S, TIMESTAMP_STEP_S
from .schema import Cue

MAX_CUE_S = MAX_CHUNK_S          # s: longest cue we write (check rejects longer ones)
LONG_CUE_S = 15.0                # s: segments longer than this are split at sentence ends
MIN_CUE_S = 0.02                 # s: shorter cues merge into a neighbour (one timestamp step)
SENTENCE_END = re.compile(r"(?<=[.!?…。？！])\s+")


@dataclass(frozen=True)
class Piece:
    """Decoded text between two (possibly wrong) times, in seconds from the recording start."""

    start: float
    end: float
    text: str


def pieces_from_tokens(tokens: Sequence[int], start: float, end: float, timestamp_begin: int,
                       decode: Callable[[list[int]], str],
                       step: float = TIMESTAMP_STEP_S) -> list[Piece]:
    """Split one generate() segment at every timestamp token inside it.

    A normal segment is ``<|t0|> text <|t1|>`` and gives one piece; a window where Whisper
    gave no closing pair (transformers then returns the whole window as one segment) may
    still hold single timestamps, which we use rather than waste. The window offset is
    recovered from the segment start and its first timestamp token.
    """
    first_is_ts = bool(tokens) and tokens[0] >= timestamp_begin
    offset = start - (tokens[0] - timestamp_begin) * step if first_is_ts else start
    pieces: list[Piece] = []
    cur_start, buffer = start, []
    for tok in tokens:
        if tok < timestamp_begin:
            buffer.append(int(tok))
            continue
        t = offset + (tok - timestamp_begin) * step
        if buffer:
            pieces.append(Piece(cur_start, t, decode(buffer)))
            buffer = []
        cur_start = t
    if buffer:
        pieces.append(Piece(cur_start, end, decode(buffer)))
    return pieces


def cues_from_pieces(pieces: Sequence[Piece], duration: float, *, max_s: float = MAX_CUE_S,
                     long_s: float = LONG_CUE_S) -> list[Cue]:
    """Valid cues for a recording of ``duration`` seconds: text non-empty, times within
    the audio (ms resolution), increasing, non-overlapping, each ``<= max_s``."""
    limit = math.floor(duration * 1000) / 1000
    raw = [_clamp(p, limit) for p in pieces if _clean(p.text)]
    cues = _monotonic(raw, limit, fallback=True)
    split = [part for cue in cues for part in split_long_cue(cue, max_s=max_s, long_s=long_s)]
    return _monotonic(split, limit, fallback=False)


def _clean(text: str) -> str:
    return " ".join(text.split())


def _clamp(p: Piece, limit: float) -> Cue:
    start = round(min(max(p.start, 0.0), limit), 3)
    end = round(min(max(p.end, 0.0), limit), 3)
    return Cue(start, end, _clean(p.text))


def _monotonic(cues: Sequence[Cue], limit: float, *, fallback: bool) -> list[Cue]:
    """Force each cue to start where the previous ended (or later); a cue left with no
    time gives its text to the previous cue (or the next, at the start). If no cue has any
    time left at all, one cue spans the whole recording (with ``fallback``)."""
    out: list[Cue] = []
    pending: list[str] = []          # text of degenerate cues before the first good one
    for cue in cues:
        start = max(cue.start, out[-1].end) if out else cue.start
        if cue.end - start < MIN_CUE_S:
            if out:
                out[-1] = Cue(out[-1].start, out[-1].end, f"{out[-1].text} {cue.text}")
            else:
                pending.append(cue.text)
            continue
        out.append(Cue(start, cue.end, " ".join(pending + [cue.text])))
        pending = []
    if pending and fallback and limit >= MIN_CUE_S:
        out.append(Cue(0.0, limit, " ".join(pending)))
    return out


def split_long_cue(cue: Cue, *, max_s: float = MAX_CUE_S, long_s: float = LONG_CUE_S) -> list[Cue]:
    """A cue over ``long_s`` becomes one cue per sentence; any still over ``max_s`` is cut
    between words. Times inside are shared out by character count: Whisper gave none."""
    if cue.duration <= long_s:
        return [cue]
    out: list[Cue] = []
    for sentence in _spread(cue, SENTENCE_END.split(cue.text)):
        if sentence.duration <= max_s:
            out.append(sentence)
        else:
            out.extend(_pack(_spread(sentence, sentence.text.split()), max_s))
    return out


def _spread(cue: Cue, parts: Sequence[str]) -> list[Cue]:
    """Give each part a share of the cue's time proportional to its length."""
    parts = [p for p in parts if p.strip()]
    total = sum(len(p) + 1 for p in parts)
    out, used = [], 0
    for part in parts:
        a = cue.start + cue.duration * used / total
        used += len(part) + 1
        b = cue.start + cue.duration * used / total
        out.append(Cue(round(a, 3), round(b, 3), part.strip()))
    return out


def _pack(words: Sequence[Cue], max_s: float) -> list[Cue]:
    """Greedily join consecutive timed words into cues of at most ``max_s`` seconds; a
    single word longer than that keeps only its first ``max_s`` seconds."""
    out: list[Cue] = []
    for w in words:
        if out and w.end - out[-1].start <= max_s:
            out[-1] = Cue(out[-1].start, w.end, f"{out[-1].text} {w.text}")
        else:
            out.append(Cue(w.start, round(min(w.end, w.start + max_s), 3), w.text))
    return out
