"""Cue text over no speech: what Whisper writes for room noise.

Over a stretch with nothing said (a pause before the first word, the noise between two
takes) Whisper often writes words anyway: "you", "Thank you.", or (whisper-base over 30 s
of a quiet room) twenty cues of made-up dialogue. The person correcting the draft reads
along and can miss that nothing was said there; trained on it, the model learns to write
words over noise. ``transcribe`` leaves such cues out of the draft, ``check`` warns of
them in a caption file, and ``build`` leaves them out of the dataset as emptied cues.

Speech and room are told apart by the recording itself: its 20 ms frame levels fall into
a quiet group (the room) and a loud one (the voice), and the level between the two
(Otsu's threshold) separates them. That holds however loud the room, the voice or the
microphone is, and however many cues Whisper invented (half a minute of them drags any
average over the cues down to the room's level).

A cue is unheard when less than ``MIN_VOICED_S`` of it, and of the second on either side
of it, is above that level. The second is for Whisper's loose timing: it puts the last
word of a sentence ("files.") in a cue of its own in the pause after it, where nothing is
heard though the word was said a moment before (three times in llm-lingo's 8 minutes).
Such a cue is a true caption and stays; one a second or more from any speech is not.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .captions import fmt_time
from .schema import Cue, Problem, Severity
from .speech_gaps import FRAME_S, frame_slice

MIN_VOICED_S = 0.1      # s: a cue with less of its audio above the split has no word in it
MARGIN_S = 1.0          # s: heard around the cue too (Whisper's timing is loose)
DIGITAL_SILENCE_DB = -90.0  # frames below this are zeros, not a room: left out of the split


def find_quiet_cues(cues: Sequence[Cue], levels: np.ndarray) -> list[Cue]:
    """Cues with words over audio with no speech. ``levels``: 20 ms frame levels of the
    whole recording (``speech_gaps.frame_levels``)."""
    split = noise_split(levels)
    if split is None:
        return []
    return [cue for cue in cues if cue.trainable and np.count_nonzero(
        levels[frame_slice(cue.start - MARGIN_S, cue.end + MARGIN_S)] > split) * FRAME_S < MIN_VOICED_S]


def noise_split(levels: np.ndarray, bins: int = 128) -> float | None:
    """The level between the recording's quiet and loud frames: Otsu's threshold, the split
    that makes the two groups' levels most distinct (None when there is nothing to split).
    Written here because it is ten lines of numpy and the libraries that have it
    (scikit-image, OpenCV) would be a large dependency for one function."""
    sound = levels[levels > DIGITAL_SILENCE_DB]
    if sound.size < 2 or np.ptp(sound) == 0:
        return None
    counts, edges = np.histogram(sound, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)[:-1]                   # frames at or under each candidate split
    above = sound.size - below
    sum_below = np.cumsum(counts * centers)[:-1]
    mean_below = sum_below / np.maximum(below, 1)
    mean_above = (float(np.sum(counts * centers)) - sum_below) / np.maximum(above, 1)
    between = below * above * (mean_below - mean_above) ** 2
    return float(edges[1:][int(np.argmax(between))])


def quiet_problem(cue: Cue, file: str) -> Problem:
    """The WARNING for one unheard cue, at its timing line."""
    return Problem(Severity.WARNING, file, cue.line,
                   f'nothing sounds like speech from {fmt_time(cue.start)} to '
                   f'{fmt_time(cue.end)}, yet the cue says "{_short(cue.text)}" '
                   "(left out of the dataset)",
                   "Whisper writes words like 'you' over room noise: delete the cue's text "
                   "if nothing is said there; if words are, check the cue's times")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
