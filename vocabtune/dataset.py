"""Chunks + decoded audio -> a ``DatasetDict`` (train/validation) on disk, and back.

Columns: ``audio`` (``datasets.Audio``, 16 kHz mono), ``text``, ``start``/``end`` (s in the
recording), ``source`` (recording file name), ``cues`` (each cue's start/end relative to the
chunk start, and text: the trainer's timestamp targets). datasets 5 encodes and decodes ``Audio``
through torchcodec, which cannot run on a machine without FFmpeg's shared libraries
(PITFALLS #15). So the column is built as the struct ``Audio`` stores ({bytes, path}) holding
16-bit PCM WAV written by the stdlib, then *cast* to ``Audio`` (casting does not encode);
readers cast to ``Audio(decode=False)`` and decode the WAV bytes with :mod:`wave` via
:func:`example_audio`. Anyone else still gets a normal ``Audio`` column.

The rows are built in memory (about 115 MB per hour of audio), which is simple and fast for
the tens of minutes a person records; the dataset is then saved with ``save_to_disk`` into a
temporary folder beside the target and renamed into place, so an old dataset survives any
failure and no half-written one is ever left under the target's name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import wave
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, NoReturn, Sequence

import numpy as np
from datasets import Audio, Dataset, DatasetDict, Features, Value

from .audio import AudioSegment, slice_segment, wav_bytes, wav_to_array
from .config import PAST_END_TOLERANCE_S, SAMPLE_RATE
from .errors import VocabtuneError
from .fsutil import check_writable, fresh_name, remove_orphans, swap_in
from .schema import Chunk

log = logging.getLogger(__name__)
SPLITS = ("train", "validation")
METADATA_FILE = "vocabtune.json"          # what the dataset card and the trainer read
METADATA_FORMAT = 1
STORED_FEATURES = Features({
    "audio": {"bytes": Value("binary"), "path": Value("string")},   # cast to Audio below
    "text": Value("string"),
    "start": Value("float64"),
    "end": Value("float64"),
    "source": Value("string"),
    # each cue's time relative to the chunk start: the trainer's Whisper timestamp targets
    "cues": [{"start": Value("float64"), "end": Value("float64"), "text": Value("string")}],
})
REBUILD = "rebuild it with prepare_data.py build"


def chunk_rows(chunks: Sequence[Chunk], audio: Mapping[str, AudioSegment],
               progress: Any = None) -> Iterator[dict]:
    """One dataset row per chunk, its audio sliced from the recording decoded once."""
    for chunk in chunks:
        recording = audio[chunk.source]
        piece = slice_segment(recording, chunk.start, chunk.end)
        # a last cue may end up to PAST_END_TOLERANCE_S past the decoded audio (check allows
        # it: MP3 padding); the chunk then has what there is
        duration = recording.frame_count() / SAMPLE_RATE
        expected = round((min(chunk.end, duration) - chunk.start) * SAMPLE_RATE)
        if chunk.end > duration + PAST_END_TOLERANCE_S or abs(piece.frame_count() - expected) > 1:
            raise VocabtuneError(f"cue ends at {chunk.end:.3f} s, past the end of the audio",
                                 file=chunk.source, line=chunk.cues[-1].line,
                                 hint="run prepare_data.py check and fix the timestamps")
        name = f"{Path(chunk.source).stem}_{chunk.start:09.3f}-{chunk.end:09.3f}.wav"
        yield {"audio": {"bytes": wav_bytes(piece), "path": name}, "text": chunk.text,
               "start": chunk.start, "end": chunk.end, "source": chunk.source,
               "cues": chunk_cues(chunk)}
        if progress is not None:
            progress.update(chunk.end - chunk.start)


def chunk_cues(chunk: Chunk) -> list[dict]:
    """Cue boundaries relative to the chunk start (what Whisper's timestamp tokens encode)."""
    return [{"start": round(c.start - chunk.start, 3), "end": round(c.end - chunk.start, 3),
             "text": c.text} for c in chunk.cues if c.text]


def make_split(chunks: Sequence[Chunk], audio: Mapping[str, AudioSegment],
               progress: Any = None) -> Dataset:
    rows = list(chunk_rows(chunks, audio, progress))
    columns = {name: [r[name] for r in rows] for name in STORED_FEATURES}
    dataset = Dataset.from_dict(columns, features=STORED_FEATURES)
    return dataset.cast_column("audio", Audio(sampling_rate=SAMPLE_RATE))


def make_dataset_dict(splits: Mapping[str, Sequence[Chunk]], audio: Mapping[str, AudioSegment],
                      progress: Any = None) -> DatasetDict:
    """``splits`` maps "train"/"validation" to chunks; ``audio`` maps source -> recording."""
    return DatasetDict({name: make_split(splits[name], audio, progress) for name in SPLITS})


def with_features(part: Dataset, features: Features) -> Dataset:
    """``part`` (with at least ``features``' columns) cast to exactly ``features``, so that
    ``concatenate_datasets`` takes it: splits from different places declare their audio
    differently (decoded or not) and their floats at different widths."""
    part = part.select_columns([c for c in features if c in part.column_names])
    part = part.cast_column("audio", features["audio"])       # metadata only: quick
    return part if part.features == features else part.cast(features)


# --- saving: temp folder beside the target, then rename -----------------------------------

def save_dataset(dataset: DatasetDict, out: Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``dataset`` and ``vocabtune.json`` to ``out`` atomically; returns ``out``."""
    out = Path(out)
    check_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    tmp = fresh_name(out, "building")
    try:
        tmp.mkdir()             # not mkdtemp: its 0700 mode would end up on the dataset
        _save_quietly(dataset, tmp)
        payload = {"format": METADATA_FORMAT, **metadata}
        (tmp / METADATA_FILE).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        swap_in(tmp, out)
    except BaseException as e:  # Ctrl-C included: never leave the half-written folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # a full disk, a folder made read-only meanwhile
            raise VocabtuneError(f"could not write the dataset ({e.strerror or e}); nothing was "
                                 "changed", file=out, hint="free some space or choose another --out") from None
        raise
    return out


def _save_quietly(dataset: DatasetDict, path: Path) -> None:
    """datasets draws a progress bar per split; ours already covered the slow part."""
    with datasets_bars_off():
        dataset.save_to_disk(str(path))


@contextmanager
def datasets_bars_off() -> Iterator[None]:
    """datasets' own progress bars off for a step our bar already counts, then back as
    they were."""
    import datasets

    was_enabled = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def remove_stale(out: Path) -> list[Path]:
    """Delete the temp folders of earlier saves to ``out`` whose process is gone.

    Why: ``save_dataset`` cleans up after any exception, but a build killed outright (kill -9,
    power loss, out-of-memory) cannot; its hidden folder holds a whole dataset's audio. A
    folder whose process still runs is another build's, and is left alone."""
    return [path for what in ("building", "old")
            for path in remove_orphans(out.parent, f".{out.name}.{what}-")]


def check_output(out: Path) -> None:
    """Only ever replace a folder that holds a dataset (or nothing): never a user's files.
    ``build`` calls this first too, so a bad ``--out`` fails before any slow work."""
    if not out.exists():
        check_writable(out, "a dataset", "choose another --out")
        return
    if not out.is_dir():
        raise VocabtuneError("output exists and is not a folder", file=out,
                             hint="choose another --out")
    is_dataset = (out / "dataset_dict.json").exists() or (out / METADATA_FILE).exists()
    if not is_dataset and any(out.iterdir()):
        raise VocabtuneError("output folder exists and does not hold a dataset", file=out,
                             hint="choose another --out, or empty that folder")
    added = _files_not_from_build(out) if is_dataset else []
    if added:
        raise VocabtuneError(f"the dataset folder also holds files build did not write ({', '.join(added[:5])}"
                             f"{', …' if len(added) > 5 else ''}); rebuilding would delete them", file=out,
                             hint="move them out of that folder, or choose another --out")


def _files_not_from_build(out: Path) -> list[str]:
    """What a person put into a dataset folder (notes, a card): a rebuild replaces the folder
    whole, so these would go with it. Split folders are those dataset_dict.json names."""
    try:
        splits = json.loads((out / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
    except (OSError, ValueError, AttributeError):
        splits = []
    ours = {"dataset_dict.json", METADATA_FILE, *map(str, splits)}
    return sorted(p.name for p in out.iterdir() if p.name not in ours and not p.name.startswith("."))


# --- loading: clear errors, and audio that never needs torchcodec ---------------------------

def load_dataset_dir(path: Path) -> DatasetDict:
    """Open a dataset folder written by ``build`` (or any ``save_to_disk`` DatasetDict with
    train/validation splits and audio/text columns). The audio column comes back as
    ``Audio(decode=False)``: read it with :func:`example_audio`."""
    from datasets import load_from_disk

    path = Path(path)
    _check_dataset_folder(path)
    _check_saved_splits(path)
    try:
        dataset = load_from_disk(str(path))
    except Exception as err:                    # corrupt or foreign files: say so, keep cause
        raise VocabtuneError(f"cannot read the dataset ({type(err).__name__}: {err})",
                             file=path, hint=REBUILD) from err
    _check_splits(dataset, path)
    return dataset.cast_column("audio", Audio(sampling_rate=SAMPLE_RATE, decode=False))


def _check_dataset_folder(path: Path) -> None:
    if not path.exists():
        raise VocabtuneError("dataset folder not found", file=path,
                             hint="build one with prepare_data.py build, or pass its folder")
    if not (path / "dataset_dict.json").is_file():
        raise VocabtuneError("not a dataset folder (no dataset_dict.json)", file=path,
                             hint="pass the folder prepare_data.py build wrote, e.g. data/<name>")


def _check_saved_splits(path: Path) -> None:
    """Split names and emptiness from the folder's JSON, before datasets reads it: datasets
    5.2 cannot even load a split saved with no rows (IndexError)."""
    try:
        names = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        states = {n: json.loads((path / n / "state.json").read_text(encoding="utf-8"))
                  for n in SPLITS if n in names}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise VocabtuneError(f"cannot read the dataset ({type(err).__name__}: {err})",
                             file=path, hint=REBUILD) from err
    for name in SPLITS:
        if name not in names:
            have = ", ".join(names) or "none"
            raise VocabtuneError(f"dataset has no '{name}' split (it has: {have})", file=path,
                                 hint=REBUILD)
        if not states[name].get("_data_files"):
            _empty_split(name, path)


def _empty_split(name: str, path: Path) -> NoReturn:
    raise VocabtuneError(f"the '{name}' split is empty", file=path,
                         hint="record more, or add a validation recording, and " + REBUILD)


def _check_splits(dataset: DatasetDict, path: Path) -> None:
    for name in SPLITS:
        missing = {"audio", "text"} - set(dataset[name].column_names)
        if missing:
            raise VocabtuneError(f"'{name}' split lacks column(s) {', '.join(sorted(missing))}",
                                 file=path, hint=REBUILD)
        if len(dataset[name]) == 0:
            _empty_split(name, path)


def dataset_terms(vocab: Path, dataset: Path) -> tuple[list[str], str]:
    """(terms, where they came from): the ``vocab/`` folder if present, else the vocabulary
    ``build`` recorded in the dataset's ``vocabtune.json``. Training and evaluation both
    score term recall, so both read the vocabulary the same way."""
    from .vocab import read_vocab, term_texts

    if Path(vocab).exists():
        terms = term_texts(read_vocab(Path(vocab)))
        if terms:
            return terms, str(vocab)
    raw = read_metadata(dataset).get("terms") or []
    if not isinstance(raw, list):       # a string would be read as one term per letter
        raise VocabtuneError(f'"terms" is a JSON {type(raw).__name__}, not a list', file=Path(dataset) / METADATA_FILE,
                             hint="pass --vocab with the folder of *.txt term lists, or " + REBUILD)
    recorded = [t["text"] if isinstance(t, dict) else str(t) for t in raw]
    if not recorded:
        if Path(vocab).exists():
            return [], str(vocab)       # no terms anywhere: WER only, as the person set it up
        raise VocabtuneError("vocabulary not found, and the dataset records none", file=vocab,
                             hint="pass --vocab with the folder of *.txt term lists")
    source = Path(dataset) / METADATA_FILE
    why = "no terms in" if Path(vocab).exists() else "no"
    log.info("%s %s: using the %d terms recorded in %s", why, vocab, len(recorded), source)
    return recorded, str(source)


def dataset_files(path: Path) -> list[Path] | None:
    """The Arrow files holding a saved dataset's rows, split by split, or None when the folder
    cannot be read (loading it then says why). ``save_to_disk`` writes them byte for byte
    alike for the same rows, so their digest tells a rebuilt dataset from the same one."""
    path = Path(path)
    try:
        names = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        files = []
        for name in sorted(names):
            state = json.loads((path / name / "state.json").read_text(encoding="utf-8"))
            files += [path / name / entry["filename"] for entry in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return files if all(f.is_file() for f in files) else None


def read_metadata(path: Path) -> dict[str, Any]:
    """The ``vocabtune.json`` build wrote (vocabulary, durations, per-split counts);
    empty for a dataset built elsewhere."""
    from .fsutil import load_json_object

    file = Path(path) / METADATA_FILE
    if not file.is_file():
        return {}
    return load_json_object(file, hint=REBUILD)


def example_audio(example: Mapping[str, Any]) -> np.ndarray:
    """float32 16 kHz mono samples of one row, without torchcodec."""
    audio = example["audio"]
    if isinstance(audio, Mapping) and audio.get("array") is not None:   # decoded elsewhere
        rate = audio.get("sampling_rate", SAMPLE_RATE)
        return _check_rate(np.asarray(audio["array"], dtype=np.float32), rate)
    data = audio.get("bytes") if isinstance(audio, Mapping) else None
    if data is None and isinstance(audio, Mapping) and audio.get("path"):
        data = Path(audio["path"]).read_bytes()
    if data is None:
        raise VocabtuneError("a dataset row has no audio bytes", hint=REBUILD)
    try:
        array, rate = wav_to_array(data)
    except (wave.Error, EOFError) as err:      # mp3/flac bytes from a dataset built elsewhere
        raise VocabtuneError(f"dataset audio is not 16-bit WAV ({err})", hint=REBUILD) from err
    return _check_rate(array, rate)


def batch_audio(batch: Mapping[str, Sequence[Any]]) -> list[np.ndarray]:
    """:func:`example_audio` for a batch (``Dataset.map(batched=True)`` / a collator)."""
    return [example_audio({"audio": audio}) for audio in batch["audio"]]


def _check_rate(array: np.ndarray, rate: int) -> np.ndarray:
    if rate != SAMPLE_RATE:
        raise VocabtuneError(f"dataset audio is at {rate} Hz, not {SAMPLE_RATE} Hz", hint=REBUILD)
    return array
