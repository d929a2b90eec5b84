"""Speech between cues: the trace of a cue deleted by hand.

A chunk spans its first cue's start to its last cue's end (``segments.pack_cues``), so
everything said between two of its cues is in its audio. A Whisper draft has a cue for
every phrase; when a person deletes one ("I stumbled there"), its words stay in the audio
of the chunk around it with no text for them, and the model learns to drop words. An
emptied cue does not do that (it ends the chunk). The text cannot show a deleted cue,
but the audio can: a gap between two cues that is as loud as the speech in the cues.

Loudness is compared with the recording's own speech (the median level of the 20 ms
frames inside its cues, less any cue with no speech under it: ``quiet_cues``), so it
holds for a quiet or a loud recording alike. A gap counts only when at least ``MIN_SPEECH_S`` of it, away from the cue edges Whisper times loosely,
is within ``SPEECH_DB`` of that level: a breath or an "um" between sentences is shorter.

``check`` warns; ``build`` also leaves such a gap's audio out, as an emptied cue's is, so
the dataset never pairs those words with a text that lacks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .captions import fmt_time
from .schema import Cue, Problem, Severity

FRAME_S = 0.02          # s: loudness is measured in 20 ms frames
EDGE_S = 0.25           # s: left out at each end of a gap (cue times are loose by this much)
MIN_SPEECH_S = 1.0      # s: loud stretch needed in a gap to call it speech
SPEECH_DB = 10.0        # dB: a frame this close to the median speech level is speech
MAX_GAP_S = 30.0        # s: a longer gap never lies inside a chunk


@dataclass(frozen=True)
class SpeechGap:
    """Speech with no cue, between the cues ``before`` and ``after``."""

    before: Cue
    after: Cue
    speech_s: float             # how much of the gap sounds like speech


def speech_level(cues: Sequence[Cue], levels: np.ndarray) -> float | None:
    """The recording's speech level: the median level of the frames inside its cues with
    words (None without any)."""
    inside = np.concatenate([levels[frame_slice(c.start, c.end)] for c in cues if c.trainable]
                            or [np.empty(0)])
    return float(np.median(inside)) if inside.size else None


def gaps_in(cues: Sequence[Cue], levels: np.ndarray, speech_db: float) -> list[SpeechGap]:
    """Gaps between two consecutive cues with text that sound like speech. ``levels``: the
    recording's frame levels (:func:`frame_levels`), measured once for this and the quiet
    cues (``cue_audio.listen``); ``speech_db``: its :func:`speech_level`."""
    threshold = speech_db - SPEECH_DB
    gaps = []
    for before, after in zip(cues, cues[1:]):
        # next to an empty cue a chunk ends anyway, so that gap is in no chunk
        if not (before.trainable and after.trainable) or after.start - before.end > MAX_GAP_S:
            continue
        gap = levels[frame_slice(before.end + EDGE_S, after.start - EDGE_S)]
        speech_s = int(np.count_nonzero(gap >= threshold)) * FRAME_S
        if speech_s >= MIN_SPEECH_S:
            gaps.append(SpeechGap(before, after, speech_s))
    return gaps


def frame_levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Level of each 20 ms frame in dB (full scale = 0; digital silence is very low)."""
    size = int(FRAME_S * sample_rate)
    frames = samples[: len(samples) // size * size].astype(np.float32).reshape(-1, size)
    # float32 and one pass (einsum): build runs this over every recording after decoding;
    # float64 with a squared copy took 0.13 s per 6 minutes of audio
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / size
    return 10.0 * np.log10(power / 32768.0 ** 2 + 1e-20)


def frame_slice(start: float, end: float) -> slice:
    """The frames from ``start`` to ``end`` (s), clipped at 0."""
    return slice(max(0, int(start / FRAME_S)), max(0, int(end / FRAME_S)))


def gap_problem(gap: SpeechGap, file: str) -> Problem:
    """The WARNING for one gap, at the timing line of the cue after it."""
    return Problem(Severity.WARNING, file, gap.after.line,
                   f"{gap.speech_s:.1f} s of what sounds like speech between "
                   f"{fmt_time(gap.before.end)} and {fmt_time(gap.after.start)} has no cue "
                   "(left out of the dataset)",
                   "if you deleted a cue there, put it back with the words said; "
                   "otherwise check the times of the cues on either side")


def leave_out(cues: Sequence[Cue], gaps: Sequence[SpeechGap]) -> list[Cue]:
    """``cues`` with an empty cue over each gap: packing ends a chunk at an empty cue and
    never puts its time inside one (``segments.pack_cues``)."""
    fill = [Cue(g.before.end, g.after.start, "", g.after.line) for g in gaps]
    return sorted([*cues, *fill], key=lambda c: (c.start, c.end))
