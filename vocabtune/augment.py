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
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .audio import SAMPLE_WIDTH, AudioSegment, ffmpeg_exe, float_to_pcm16
from .config import MAX_CHUNK_S, SAMPLE_RATE
from .errors import VocabtuneError
from .fsutil import temp_dir
from .schema import Chunk, Cue
from .segments import pack_cues

log = logging.getLogger(__name__)
COPIES_PREFIX = ".vocabtune-copies-"     # + pid-random: hidden, beside the run


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


def with_speed_copies(dataset, factors: Sequence[float], folder: Path | None = None):
    """``dataset`` (train/validation) with speed-perturbed copies of its train chunks
    appended to train; unchanged when ``factors`` is empty.

    With ``folder``, the copies are written there as an Arrow file while they are made, one
    train chunk at a time, and read back memory-mapped: held in memory they cost about
    0.7 GiB per hour of recordings (their WAV bytes, twice over while the table is built).
    The caller removes ``folder`` when training ends (``copies_folder``)."""
    from datasets import Dataset, DatasetDict, concatenate_datasets

    from .dataset import STORED_FEATURES, with_features

    factors = check_factors(factors)
    if not factors:
        return dataset
    train = dataset["train"]
    if folder is None:
        copies = Dataset.from_list(list(_copy_rows(train, factors)), features=STORED_FEATURES)
    else:
        copies = _copies_on_disk(train, factors, folder)
    log.info("speed perturbation: %d copies at %s x speed of the %d train chunks added "
             "(--speed-perturb none turns it off)", len(copies),
             " and ".join(f"{f:g}" for f in factors), len(train))
    copies = with_features(copies, train.features)
    return DatasetDict({**dataset, "train": concatenate_datasets([train, copies])})


def _copy_rows(train, factors: Sequence[float]) -> Iterator[dict]:
    """Dataset rows of every train chunk's copies, made one chunk at a time."""
    from tqdm.auto import tqdm

    from .dataset import chunk_rows, example_audio

    for row in tqdm(train, total=len(train), unit="chunk", desc="speed copies",
                    disable=len(train) < 2):
        for chunk, segment in speed_chunks(row, example_audio(row), factors):
            yield from chunk_rows([chunk], {chunk.source: segment})


def _copies_on_disk(train, factors: Sequence[float], folder: Path):
    import uuid

    import datasets

    from .dataset import STORED_FEATURES, datasets_bars_off

    with datasets_bars_off():       # ours counts the chunks; theirs would count rows
        # a fresh fingerprint: nothing to reuse in a new folder, and hashing the generator
        # would pickle the train split to do it
        return datasets.Dataset.from_generator(
            _copy_rows, features=STORED_FEATURES, cache_dir=str(folder),
            gen_kwargs={"train": train, "factors": tuple(factors)}, fingerprint=uuid.uuid4().hex)


@contextmanager
def copies_folder(run_dir: Path) -> Iterator[Path]:
    """A hidden temporary folder for the speed copies beside the run (on its disk, which
    has room for checkpoints), removed however training ends."""
    from .encoder_cache import spill_folder

    where = spill_folder(run_dir)
    try:
        folder = temp_dir(where, COPIES_PREFIX)     # and removes those of killed runs
    except OSError as err:
        raise VocabtuneError(f"cannot keep the speed copies on disk here ({err.strerror})",
                             file=where, hint="train with --output-dir in a folder you can "
                             "write to, or --speed-perturb none") from err
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


