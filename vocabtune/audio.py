"""Decode any recording to 16 kHz mono and slice it by time.

ffmpeg comes from the imageio-ffmpeg wheel, so users need no system install. pydub's own
loaders call ``ffprobe`` first, which that wheel does not ship (PITFALLS #18), so we decode
with the ffmpeg binary ourselves, as Whisper's ``load_audio`` does, and hand pydub the raw
samples; pydub then does the slicing.
"""

from __future__ import annotations

import io
import logging
import subprocess
import warnings
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

with warnings.catch_warnings():  # pydub warns at import when no system ffmpeg is on PATH;
    warnings.simplefilter("ignore", RuntimeWarning)  # we never use its lookup (see below)
    from pydub import AudioSegment

from .config import SAMPLE_RATE
from .errors import VocabtuneError

log = logging.getLogger(__name__)
SAMPLE_WIDTH = 2                      # bytes: signed 16-bit PCM
INT16_SCALE = 32768.0


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The wheel's ffmpeg binary; pydub is pointed at it too for any export it does."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    AudioSegment.converter = exe
    return exe


def decode_pcm16(path: Path) -> bytes:
    """Raw 16 kHz mono s16le samples of any file ffmpeg reads (mp3, m4a, wav, flac, ogg…)."""
    path = Path(path)
    if not path.is_file():
        raise VocabtuneError("audio file not found", file=path, hint="check the path")
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "0",
           # absolute, so a name such as "talk:drugs.mp3" is not read as an ffmpeg protocol
           "-i", str(path.absolute()), "-vn", "-f", "s16le", "-ac", "1", "-acodec", "pcm_s16le",
           "-ar", str(SAMPLE_RATE), "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[-1] if detail else "no audio stream"
        raise VocabtuneError(f"cannot decode audio ({reason})", file=path,
                             hint="is it a complete audio file? re-export it as mp3, wav or flac")
    data = proc.stdout
    return data[: len(data) - len(data) % SAMPLE_WIDTH]


def load_segment(path: Path) -> AudioSegment:
    """The whole recording as a pydub segment (decoded once; slice it as often as needed)."""
    return AudioSegment(data=decode_pcm16(path), sample_width=SAMPLE_WIDTH,
                        frame_rate=SAMPLE_RATE, channels=1)


# PyAV does not apply an MP4 file's edit list, so AAC's priming samples (about 14 ms) stay
# in front, and every time would be that much later than build's ffmpeg slices (measured:
# 224 extra samples; mp3, wav, flac, ogg, opus, webm and raw aac agreed to the sample)
FFMPEG_ONLY_SUFFIXES = (".m4a", ".mp4")


def decode_audio(path: Path) -> np.ndarray:
    """float32 samples in [-1, 1) at 16 kHz, mono: what Whisper's feature extractor takes.

    Decoded in this process with PyAV where it is installed (faster-whisper depends on it):
    the same FFmpeg resampler, so the same samples (tested), without starting an ffmpeg
    process and piping its output, which cost 0.1-0.2 s per recording (measured on the
    5.9 min llm-lingo train.mp3: 0.29 s against 0.38-0.51 s). Anything PyAV cannot read
    goes through the wheel's ffmpeg, which also gives the error message."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() not in FFMPEG_ONLY_SUFFIXES:
        try:
            return _decode_in_process(path)
        except Exception:            # PyAV missing or the file unreadable: ffmpeg decides
            pass
    return pcm16_to_float(decode_pcm16(path))


def _decode_in_process(path: Path) -> np.ndarray:
    from faster_whisper.audio import decode_audio as pyav_decode

    samples = pyav_decode(str(path), sampling_rate=SAMPLE_RATE)
    if not len(samples):
        raise ValueError("no audio decoded")
    return samples.astype(np.float32, copy=False)


def pcm16_to_float(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.int16).astype(np.float32) / INT16_SCALE


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """The inverse of :func:`pcm16_to_float` (exact for samples that came from it)."""
    scaled = np.round(np.asarray(samples, dtype=np.float64) * INT16_SCALE)
    return np.clip(scaled, -INT16_SCALE, INT16_SCALE - 1).astype(np.int16).tobytes()


def segment_seconds(segment: AudioSegment) -> float:
    return segment.frame_count() / segment.frame_rate


def slice_segment(segment: AudioSegment, start: float, end: float) -> AudioSegment:
    """Audio between two times in seconds. pydub slices in milliseconds, which is exact for
    VTT times (they have millisecond resolution): 16 samples per ms at 16 kHz."""
    return segment[round(start * 1000): round(end * 1000)]


def segment_to_array(segment: AudioSegment) -> np.ndarray:
    return pcm16_to_float(segment.raw_data)


def wav_bytes(segment: AudioSegment) -> bytes:
    """16-bit PCM WAV bytes via the stdlib ``wave`` writer: no ffmpeg, no torchcodec needed
    to store audio in a dataset (datasets' own encoder requires torchcodec, PITFALLS #15)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(segment.frame_rate)
        w.writeframes(segment.raw_data)
    return buf.getvalue()


def wav_to_array(data: bytes) -> tuple[np.ndarray, int]:
    """Decode WAV bytes written by :func:`wav_bytes` (or any PCM16 mono WAV)."""
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != SAMPLE_WIDTH or w.getnchannels() != 1:
            raise VocabtuneError("unsupported WAV layout in dataset",
                                 hint="rebuild the dataset with prepare_data.py build")
        return pcm16_to_float(w.readframes(w.getnframes())), w.getframerate()
