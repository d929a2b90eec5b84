"""Speed perturbation: copies of the person's train chunks played a little slower and faster.

Why: a few minutes of one voice at one pace is a narrow diet, and LoRA fitted to it drifts on
ordinary speech too (replay.py). Playing each chunk at 0.9x and 1.1x speed, with its pitch
moving as a tape's would (Ko et al., 2015, "Audio augmentation for speech recognition"), gives
every term three acoustic versions for the cost of one recording. On llm-lingo, 4 epochs with
the copies spelt more terms right across seeds than 8 without them (median 97.6% against
95.1%), in about the same time; general English drifted as much (BENCHMARKS.md, issue 4).

A slowed chunk grows (a 28 s chunk lasts 31 s at 0.9x), past Whisper's 30 s window; its cues
are re-timed and packed again with ``pack_cues``, so no copy is cut and no cue split.
The copies go to the train split only, like replay: validation stays the person's own audio.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import replace
from typing import Iterator, Sequence

import numpy as np

from .audio import SAMPLE_WIDTH, AudioSegment, ffmpeg_exe, float_to_pcm16
from .config import MAX_CHUNK_S, SAMPLE_RATE
from .errors import VocabtuneError
from .schema import Chunk, Cue
from .segments import pack_cues

log = logging.getLogger(__name__)


def check_factors(factors: Sequence[float]) -> tuple[float, ...]:
    """Distinct factors other than 1 (the original is always kept), each in [0.5, 2]."""
    for f in factors:
        if not 0.5 <= f <= 2.0:
            raise VocabtuneError(f"--speed-perturb {f:g} is outside 0.5-2",
                                 hint="use factors near 1, such as 0.9 1.1, or none")
    return tuple(dict.fromkeys(f for f in factors if f != 1.0))


def change_speed(pcm16: bytes, factor: float) -> bytes:
    """16 kHz mono PCM played ``factor`` times as fast, still 16 kHz (duration / factor).

    FFmpeg does it (the wheel's binary, as for decoding): the samples are declared to be at
    16000 x factor Hz and resampled to 16000 Hz by libswresample, which band-limits the
    result; numpy interpolation would alias when speeding up."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
           "-f", "s16le", "-ar", str(round(SAMPLE_RATE * factor)), "-ac", "1", "-i", "pipe:0",
           "-ar", str(SAMPLE_RATE), "-f", "s16le", "-ac", "1", "pipe:1"]
    done = subprocess.run(cmd, input=pcm16, capture_output=True, check=False)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        raise VocabtuneError(f"ffmpeg could not change the speed: {why}",
                             hint="reinstall imageio-ffmpeg")
    return done.stdout


def retimed(cues: Sequence[Cue], factor: float) -> list[Cue]:
    """Cue times of the same speech played ``factor`` times as fast."""
    return [replace(c, start=round(c.start / factor, 3), end=round(c.end / factor, 3)) for c in cues]


def speed_chunks(row: dict, samples: np.ndarray, factors: Sequence[float]
                 ) -> Iterator[tuple[Chunk, AudioSegment]]:
    """Each factor's copy of one dataset row, as chunks of <= 30 s with their audio. The
    copy is its own "recording" (source ``<source>@<start>x<factor>``) with cue times from
    its start, so ``dataset.chunk_rows`` slices and checks it like any other."""
    # a dataset built elsewhere may have no per-cue times: one cue spans the chunk
    cues = [Cue(c["start"], c["end"], c["text"]) for c in row.get("cues") or [] if c["text"]] or \
        [Cue(0.0, row["end"] - row["start"], row["text"])]
    pcm = float_to_pcm16(samples)
    per_ms = SAMPLE_WIDTH * SAMPLE_RATE // 1000
    for factor in factors:
        data = change_speed(pcm, factor)
        # whole milliseconds: chunks are sliced in ms (audio.slice_segment), and pydub pads a
        # slice that runs past the end with silence rather than stopping (< 1 ms is lost)
        audio = AudioSegment(data=data[: len(data) // per_ms * per_ms], sample_width=SAMPLE_WIDTH,
                             frame_rate=SAMPLE_RATE, channels=1)
        source = f"{row['source']}@{row['start']:.3f}x{factor:g}"
        for chunk in pack_cues(_within(retimed(cues, factor), audio), source, MAX_CHUNK_S):
            yield chunk, audio


def _within(cues: list[Cue], audio: AudioSegment) -> list[Cue]:
    """The last cue ends where the resampled audio does (they can differ by a sample)."""
    length = audio.frame_count() / SAMPLE_RATE
    return [replace(c, end=min(c.end, length)) for c in cues if c.start < length]


def with_speed_copies(dataset, factors: Sequence[float]):
    """``dataset`` (train/validation) with speed-perturbed copies of its train chunks
    appended to train; unchanged when ``factors`` is empty."""
    from datasets import DatasetDict, concatenate_datasets
    from tqdm.auto import tqdm

    from .dataset import example_audio, make_split, with_features

    factors = check_factors(factors)
    if not factors:
        return dataset
    train = dataset["train"]
    chunks, audio = [], {}
    for row in tqdm(train, total=len(train), unit="chunk", desc="speed copies",
                    disable=len(train) < 2):
        for chunk, segment in speed_chunks(row, example_audio(row), factors):
            chunks.append(chunk)
            audio[chunk.source] = segment
    copies = make_split(chunks, audio)
    log.info("speed perturbation: %d copies at %s x speed of the %d train chunks added "
             "(--speed-perturb none turns it off)", len(copies),
             " and ".join(f"{f:g}" for f in factors), len(train))
    copies = with_features(copies, train.features)
    return DatasetDict({**dataset, "train": concatenate_datasets([train, copies])})
