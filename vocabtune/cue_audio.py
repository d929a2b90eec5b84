"""Captions held against their audio: speech with no cue (:mod:`vocabtune.speech_gaps`)
and cues with no speech (:mod:`vocabtune.quiet_cues`). One place measures the recording's
frame levels once for both, since build runs this over every recording it decodes.

Cues with no speech are found first and count as emptied for the gap search: their
invented words are not the person's speech level, and a chunk ends at them anyway."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .config import SAMPLE_RATE
from .quiet_cues import find_quiet_cues, quiet_problem
from .schema import Cue, Problem
from .speech_gaps import SpeechGap, frame_levels, gap_problem, gaps_in, leave_out, speech_level


@dataclass(frozen=True)
class Heard:
    """What the audio says about a recording's cues."""

    gaps: list[SpeechGap]       # speech between two cues (a deleted cue)
    quiet: list[Cue]            # cues with words over no speech

    def problems(self, file: str) -> list[Problem]:
        """The warnings, in the caption file's line order."""
        found = [gap_problem(g, file) for g in self.gaps] + [quiet_problem(c, file) for c in self.quiet]
        return sorted(found, key=lambda p: p.line or 0)

    def cues_to_pack(self, cues: Sequence[Cue]) -> list[Cue]:
        """``cues`` as build packs them: each gap and each quiet cue made an empty cue,
        which packing leaves out and ends a chunk at."""
        return leave_out(_emptied(cues, self.quiet), self.gaps)


NOTHING_HEARD = Heard([], [])


def listen(cues: Sequence[Cue], pcm16: bytes, sample_rate: int = SAMPLE_RATE) -> Heard:
    """Gaps and quiet cues of one recording. ``pcm16``: 16-bit mono samples."""
    levels = frame_levels(np.frombuffer(pcm16, dtype="<i2"), sample_rate)
    quiet = find_quiet_cues(cues, levels)
    heard = _emptied(cues, quiet)
    speech_db = speech_level(heard, levels)
    return Heard([] if speech_db is None else gaps_in(heard, levels, speech_db), quiet)


def _emptied(cues: Sequence[Cue], quiet: Sequence[Cue]) -> list[Cue]:
    gone = set(quiet)
    return [replace(c, text="") if c in gone else c for c in cues]
