"""Decode any recording to 16 kHz mono and slice it by time.

ffmpeg comes from the imageio-ffmpeg wheel, so users need no system install. pydub's own
loaders call ``ffprobe`` first, which that wheel does not ship (PITFALLS #18), so we decode
with the ffmpeg binary ourselves, as Whisper's ``load_audio`` does, and hand pydub the raw
samples; pydub then does the slicing.
"""

from __future__ import annotations

import gc
import io
import logging
import re
import subprocess
import warnings
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

with warnings.catch_warnings():  # pydub warns at import when no system ffmpeg is on PATH;
    warnings.simplefilter("ignore", RuntimeWarning)  # we never use its lookup (see below)
    from pydub import AudioSegment

from .config import SAMPLE_RATE, SILENCE_PEAK_DBFS
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


_NO_AUDIO_TRACK = "does not contain any stream"      # ffmpeg: -vn left nothing to write
_LOG_PREFIX = re.compile(r"^(?:\[[^\]]*\]\s*)+")     # "[mp3float @ 0x55…] " and the like


@dataclass(frozen=True)
class Decoded:
    """A recording's samples, and what ffmpeg said about damage it decoded past."""

    data: bytes                  # 16 kHz mono s16le
    damage: str | None = None    # e.g. 'ffmpeg said "Header missing" and 5 more messages'; None = clean

    @property
    def silent(self) -> bool:       # on the int16 samples: no float copy of an hour's audio
        return is_silent(np.frombuffer(self.data, dtype=np.int16), full_scale=INT16_SCALE)


def decode_pcm16(path: Path) -> bytes:
    """Raw 16 kHz mono s16le samples of any file ffmpeg reads (mp3, m4a, wav, flac, ogg…)."""
    return decode_checked(path).data


def decode_checked(path: Path) -> Decoded:
    """:func:`decode_pcm16`, keeping ffmpeg's complaints. A file damaged in the middle (a
    broken copy, a bad card) still decodes, exit status 0, but the bad stretch is dropped, so
    the audio is shorter and every time after it earlier than the person expects: ``check``
    and ``transcribe`` say so instead of passing it off as a whole recording."""
    path = Path(path)
    if not path.is_file():
        raise VocabtuneError("audio file not found", file=path, hint="check the path")
    if path.stat().st_size == 0:        # ffmpeg: "Invalid data found when processing input"
        raise VocabtuneError("cannot decode audio (the file is empty: 0 bytes)", file=path,
                             hint="an interrupted copy or download leaves this: copy it again "
                                  "from where it was recorded")
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "0",
           # absolute, so a name such as "talk:drugs.mp3" is not read as an ffmpeg protocol
           "-i", str(path.absolute()), "-vn", "-f", "s16le", "-ac", "1", "-acodec", "pcm_s16le",
           "-ar", str(SAMPLE_RATE), "-"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise decode_error(path, proc.stderr.decode("utf-8", "replace"))
    data = proc.stdout
    return Decoded(data[: len(data) - len(data) % SAMPLE_WIDTH],
                   damage_of(proc.stderr.decode("utf-8", "replace")))


def decode_error(path: Path, stderr: str) -> VocabtuneError:
    """Why ffmpeg gave no samples, in the person's terms where we can tell. A video without
    sound (or a picture) made ffmpeg end on "Error opening output files: Invalid argument",
    which says nothing about the file."""
    if _NO_AUDIO_TRACK in stderr:
        return VocabtuneError("cannot decode audio (the file has no audio track)", file=path,
                              hint="is it a video recorded without sound, or a picture? export "
                                   "the recording's sound as mp3, wav or flac")
    detail = stderr.strip().splitlines()
    reason = detail[-1] if detail else "no audio stream"
    return VocabtuneError(f"cannot decode audio ({reason})", file=path,
                          hint="is it a complete audio file? re-export it as mp3, wav or flac")



def damage_of(stderr: str) -> str | None:
    """ffmpeg's error lines (``-loglevel error``) after a successful decode, in short:
    'ffmpeg said "Header missing" and 5 more messages'; None when it said nothing."""
    lines = [_LOG_PREFIX.sub("", line).strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return None
    more = f" and {len(lines) - 1} more message{'' if len(lines) == 2 else 's'}" if len(lines) > 1 else ""
    return f'ffmpeg said "{lines[0]}"{more}'



def load_segment(path: Path) -> AudioSegment:
    """The whole recording as a pydub segment (decoded once; slice it as often as needed)."""
    return segment_of(decode_pcm16(path))


def segment_of(data: bytes) -> AudioSegment:
    """16 kHz mono s16le samples as a pydub segment."""
    return AudioSegment(data=data, sample_width=SAMPLE_WIDTH, frame_rate=SAMPLE_RATE, channels=1)


# PyAV does not apply an MP4 file's edit list, so AAC's priming samples (about 14 ms) stay
# in front, and every time would be that much later than build's ffmpeg slices (measured:
# 224 extra samples; mp3, wav, flac, ogg, opus, webm and raw aac agreed to the sample).
# QuickTime .mov and Android's .3gp are the same container (measured: 28 and 896 extra).
FFMPEG_ONLY_SUFFIXES = (".m4a", ".mp4", ".mov", ".3gp")


def decode_audio(path: Path) -> np.ndarray:
    """float32 samples in [-1, 1) at 16 kHz, mono: what Whisper's feature extractor takes.

    Decoded in this process with PyAV where it is installed (faster-whisper depends on it):
    the same FFmpeg resampler, so the same samples (tested), without starting an ffmpeg
    process and piping its output, which cost 0.1-0.2 s per recording (measured on the
    5.9 min llm-lingo train.mp3: 0.29 s against 0.38-0.51 s). Anything PyAV cannot read
    goes through the wheel's ffmpeg, which also gives the error message, or the warning
    for a damaged file."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() not in FFMPEG_ONLY_SUFFIXES:
        try:
            return _decode_in_process(path)
        except Exception:            # PyAV missing or the file damaged: ffmpeg decides
            pass
    decoded = decode_checked(path)
    if decoded.damage:
        log.warning("%s: damaged audio, %s", path, damage_hint(decoded.damage))
    return pcm16_to_float(decoded.data)


def damage_hint(damage: str) -> str:
    """What a damaged recording means for the person, after ffmpeg's own words. ffmpeg does
    not say where the damage was (junk appended after the audio, e.g. a Lyrics3 tag, says
    "Header missing" too), so the hint says what to listen for rather than assert a loss."""
    return (f"{damage}: what it could not decode is left out, so if that was inside the speech, "
            "the times after it are earlier than a player may show (junk after the end is "
            "harmless) — listen to it, and copy or export it again from its source")


def _decode_in_process(path: Path) -> np.ndarray:
    """faster-whisper's ``decode_audio`` (PyAV: the same FFmpeg resampler, grouping and
    down-mix), except that damaged data raises instead of ending the decode: faster-whisper
    skips an ``InvalidDataError``, but the PyAV generator that raised it is then finished,
    so a recording damaged at 14 s was silently transcribed as a 14 s recording."""
    import av

    resampler = av.audio.resampler.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    fifo = av.audio.fifo.AudioFifo()
    parts = []
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        for frame in container.decode(audio=0):
            frame.pts = None                   # as faster-whisper: no timestamp checks
            fifo.write(frame)
            if fifo.samples >= PYAV_GROUP_SAMPLES:
                parts += [f.to_ndarray() for f in resampler.resample(fifo.read())]
    if fifo.samples:
        parts += [f.to_ndarray() for f in resampler.resample(fifo.read())]
    parts += [f.to_ndarray() for f in resampler.resample(None)]
    del resampler
    gc.collect()                               # PyAV frees resampler buffers only then (faster-whisper #390)
    samples = np.concatenate([p.reshape(-1) for p in parts]) if parts else np.zeros(0, np.int16)
    if not len(samples):
        raise ValueError("no audio decoded")
    return samples.astype(np.float32) / INT16_SCALE


PYAV_GROUP_SAMPLES = 500_000                   # faster-whisper's grouping before resampling


def is_silent(samples: np.ndarray, full_scale: float = 1.0) -> bool:
    """True when no sample reaches ``SILENCE_PEAK_DBFS``: a muted microphone, the wrong input,
    or stereo whose two channels cancel in the down-mix (one wired in reverse). Whisper
    "hears" words in silence ("you"), which would become training text."""
    if not len(samples):
        return True
    peak = max(float(samples.max()), -float(samples.min()))     # no abs(): int16 -32768 overflows
    return peak < full_scale * 10 ** (SILENCE_PEAK_DBFS / 20)


def silent_error(path: Path) -> VocabtuneError:
    """The one wording of a silent recording, for transcribe, check and build."""
    return VocabtuneError(f"the recording is silent (no sample reaches {SILENCE_PEAK_DBFS:g} dBFS)",
                          file=path, hint="check the microphone is on and the right input is chosen, "
                                          "and record again (stereo whose two channels cancel out, one "
                                          "wired in reverse, is silent too: export one channel)")


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
