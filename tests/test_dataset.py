"""Dataset rows, atomic save, checked load, and audio read back without torchcodec."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from datasets import Audio, Dataset, DatasetDict, load_from_disk

from vocabtune.audio import AudioSegment
from vocabtune.config import SAMPLE_RATE
from vocabtune.dataset import (METADATA_FILE, batch_audio, example_audio, load_dataset_dir,
                               make_dataset_dict, read_metadata, save_dataset)
from vocabtune.errors import VocabtuneError
from vocabtune.schema import Chunk, Cue

SECONDS = 12


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    """A distinct value per sample position, so a slice off by one sample is noticed."""
    rng = np.random.default_rng(0)
    return rng.integers(-20000, 20000, SECONDS * SAMPLE_RATE, dtype=np.int16)


@pytest.fixture(scope="module")
def audio(samples) -> dict[str, AudioSegment]:
    seg = AudioSegment(data=samples.tobytes(), sample_width=2, frame_rate=SAMPLE_RATE, channels=1)
    return {"talk.wav": seg}


def chunk(start: float, end: float, text: str) -> Chunk:
    return Chunk("talk.wav", (Cue(start, end, text, line=1),))


SPLITS = {"train": [chunk(0.5, 2.25, "one"), chunk(3.001, 9.999, "two")],
          "validation": [chunk(10.0, 11.5, "three")]}


@pytest.fixture
def saved(tmp_path, audio) -> Path:
    return save_dataset(make_dataset_dict(SPLITS, audio), tmp_path / "data" / "me",
                        {"terms": ["one"], "splits": {}})


def test_round_trip_through_load_from_disk(saved, samples):
    ds = load_from_disk(str(saved))
    assert set(ds) == {"train", "validation"}
    features = ds["train"].features
    assert isinstance(features["audio"], Audio) and features["audio"].sampling_rate == SAMPLE_RATE
    assert {k: features[k].dtype for k in ("text", "start", "end", "source")} == \
        {"text": "string", "start": "float64", "end": "float64", "source": "string"}
    rows = load_dataset_dir(saved)["train"]
    assert rows["text"] == ["one", "two"] and rows["source"] == ["talk.wav", "talk.wav"]
    for row, c in zip(rows, SPLITS["train"]):
        got = example_audio(row)
        first = round(c.start * SAMPLE_RATE)
        assert got.dtype == np.float32
        assert abs(len(got) - (row["end"] - row["start"]) * SAMPLE_RATE) <= 1
        np.testing.assert_array_equal(got, samples[first:first + len(got)] / 32768.0)


def test_batch_audio_matches_example_audio(saved):
    rows = load_dataset_dir(saved)["train"]
    batch = batch_audio(rows[:2])
    assert [len(a) for a in batch] == [len(example_audio(r)) for r in rows]


def test_example_audio_accepts_rows_decoded_elsewhere():
    arr = np.zeros(5, dtype=np.float64)
    got = example_audio({"audio": {"array": arr, "sampling_rate": SAMPLE_RATE}})
    assert got.dtype == np.float32 and len(got) == 5
    with pytest.raises(VocabtuneError, match="8000 Hz"):
        example_audio({"audio": {"array": arr, "sampling_rate": 8000}})


def test_example_audio_rejects_non_wav_bytes():
    with pytest.raises(VocabtuneError, match="not 16-bit WAV"):
        example_audio({"audio": {"bytes": b"ID3\x03\x00fake mp3", "path": "x.mp3"}})


def test_metadata_written_inside_the_dataset(saved):
    assert read_metadata(saved) == {"format": 1, "terms": ["one"], "splits": {}}
    assert read_metadata(saved.parent) == {}


def test_no_temporary_folders_are_left(saved, audio):
    save_dataset(make_dataset_dict(SPLITS, audio), saved, {"terms": []})     # replace it
    assert [p.name for p in saved.parent.iterdir()] == ["me"]
    assert read_metadata(saved)["terms"] == []


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_save_keeps_the_old_dataset_and_leaves_nothing(saved, audio, monkeypatch, exc):
    before = {p.relative_to(saved): p.read_bytes() for p in saved.rglob("*") if p.is_file()}
    real_save = DatasetDict.save_to_disk

    def half_then_fail(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)                # a complete-looking copy ...
        raise exc                                             # ... then the failure

    monkeypatch.setattr(DatasetDict, "save_to_disk", half_then_fail)
    new = make_dataset_dict({"train": SPLITS["train"][:1], "validation": SPLITS["validation"]},
                            audio)
    with pytest.raises(type(exc)):
        save_dataset(new, saved, {"terms": ["new"]})
    after = {p.relative_to(saved): p.read_bytes() for p in saved.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in saved.parent.iterdir()] == ["me"]


def test_a_killed_builds_leftovers_are_removed_but_a_running_ones_kept(saved, audio):
    """kill -9 leaves the hidden temp folder behind: the next save to the same place removes
    it, but never one whose process is alive (a build running beside this one)."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    dead = saved.parent / f".me.building-{dead_pid}-0a1b2c3d"
    old = saved.parent / f".me.old-{dead_pid}-0a1b2c3d"
    running = saved.parent / f".me.building-{os.getpid()}-0a1b2c3d"
    other = saved.parent / f".mine.building-{dead_pid}-0a1b2c3d"     # another dataset's
    for folder in (dead, old, running, other):
        (folder / "train").mkdir(parents=True)
    save_dataset(make_dataset_dict(SPLITS, audio), saved, {"terms": []})
    assert sorted(p.name for p in saved.parent.iterdir()) == sorted(["me", running.name, other.name])


def test_failed_rename_puts_the_old_dataset_back(saved, audio, monkeypatch):
    import vocabtune.dataset as mod
    real_replace = mod.os.replace
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:                                   # new -> out
            raise OSError("simulated")
        return real_replace(src, dst)

    monkeypatch.setattr(mod.os, "replace", flaky)
    with pytest.raises(VocabtuneError, match=r"could not write the dataset \(simulated\); nothing was changed"):
        save_dataset(make_dataset_dict(SPLITS, audio), saved, {"terms": ["new"]})
    assert read_metadata(saved)["terms"] == ["one"]
    assert [p.name for p in saved.parent.iterdir()] == ["me"]


def test_never_replaces_a_folder_that_is_not_a_dataset(tmp_path, audio):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(VocabtuneError, match="does not hold a dataset"):
        save_dataset(make_dataset_dict(SPLITS, audio), target, {})
    assert (target / "notes.txt").read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_a_rebuild_never_deletes_files_a_person_added(saved, audio):
    (saved / "NOTES.md").write_text("mic: the blue one")
    (saved / ".DS_Store").write_bytes(b"\0")                     # the system's, not the person's
    with pytest.raises(VocabtuneError, match=r"holds files build did not write \(NOTES.md\)"):
        save_dataset(make_dataset_dict(SPLITS, audio), saved, {"terms": ["new"]})
    assert (saved / "NOTES.md").read_text() == "mic: the blue one"
    assert read_metadata(saved)["terms"] == ["one"]
    (saved / "NOTES.md").unlink()
    save_dataset(make_dataset_dict(SPLITS, audio), saved, {"terms": ["new"]})
    assert read_metadata(saved)["terms"] == ["new"]


def test_an_empty_folder_is_filled(tmp_path, audio):
    (tmp_path / "out").mkdir()
    save_dataset(make_dataset_dict(SPLITS, audio), tmp_path / "out", {})
    assert (tmp_path / "out" / "dataset_dict.json").is_file()


def test_chunk_past_the_end_of_the_audio_is_an_error(audio):
    late = {"train": [chunk(11.0, SECONDS + 1.0, "late")], "validation": SPLITS["validation"]}
    with pytest.raises(VocabtuneError, match="past the end of the audio"):
        make_dataset_dict(late, audio)


# --- load_dataset_dir errors -------------------------------------------------------------

def test_missing_folder(tmp_path):
    with pytest.raises(VocabtuneError, match="not found") as err:
        load_dataset_dir(tmp_path / "nope")
    assert "prepare_data.py build" in str(err.value)


def test_folder_that_is_not_a_dataset(tmp_path):
    with pytest.raises(VocabtuneError, match="not a dataset folder"):
        load_dataset_dir(tmp_path)


def tiny(n: int) -> Dataset:
    return Dataset.from_dict({"audio": [{"bytes": b"", "path": "x"}] * n, "text": ["x"] * n})


def test_missing_validation_split(tmp_path):
    DatasetDict(train=tiny(2)).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(VocabtuneError, match="no 'validation' split \\(it has: train\\)"):
        load_dataset_dir(tmp_path / "d")


def test_empty_split(tmp_path):
    DatasetDict(train=tiny(2), validation=tiny(0)).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(VocabtuneError, match="'validation' split is empty"):
        load_dataset_dir(tmp_path / "d")


def test_missing_column(tmp_path):
    DatasetDict(train=tiny(1).remove_columns("text"), validation=tiny(1)).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(VocabtuneError, match="lacks column\\(s\\) text"):
        load_dataset_dir(tmp_path / "d")


def test_corrupt_dataset(saved):
    (saved / "dataset_dict.json").write_text("{not json")
    with pytest.raises(VocabtuneError, match="cannot read the dataset"):
        load_dataset_dir(saved)


def test_corrupt_metadata(saved):
    (saved / METADATA_FILE).write_text('{"a": }')
    with pytest.raises(VocabtuneError, match="invalid JSON") as err:
        read_metadata(saved)
    assert err.value.line == 1 and err.value.file == str(saved / METADATA_FILE)


@pytest.mark.parametrize("text, what", [('["LoRA"]', "holds a JSON list"),
                                        ('{"terms": "LoRA"}', '"terms" is a JSON str, not a list')])
def test_hand_edited_metadata_of_the_wrong_shape_is_named(tmp_path, text, what):
    """Before: an AttributeError traceback, or the terms "L", "o", "R", "A"."""
    from vocabtune.dataset import dataset_terms

    data = tmp_path / "data"
    data.mkdir()
    (data / METADATA_FILE).write_text(text)
    with pytest.raises(VocabtuneError, match=what) as err:
        dataset_terms(tmp_path / "no-vocab", data)
    assert err.value.file == str(data / METADATA_FILE) and err.value.hint


def test_dataset_terms_come_from_the_dataset_when_vocab_is_absent_or_empty(tmp_path):
    from vocabtune.dataset import METADATA_FILE, dataset_terms

    data, vocab = tmp_path / "data", tmp_path / "vocab"
    data.mkdir()
    (data / METADATA_FILE).write_text(json.dumps({"terms": [{"text": "LoRA"}, {"text": "vLLM"}]}))
    assert dataset_terms(vocab, data) == (["LoRA", "vLLM"], str(data / METADATA_FILE))
    vocab.mkdir()
    (vocab / "terms.txt").write_text("# nothing yet\n")
    assert dataset_terms(vocab, data)[0] == ["LoRA", "vLLM"]
    (vocab / "terms.txt").write_text("GGUF\n")
    assert dataset_terms(vocab, data) == (["GGUF"], str(vocab))
    (data / METADATA_FILE).write_text(json.dumps({"terms": []}))
    (vocab / "terms.txt").write_text("")
    assert dataset_terms(vocab, data) == ([], str(vocab))
