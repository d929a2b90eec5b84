"""Replay: the built-in general speech decodes and packs like a built dataset, dataset folders
are mixed in whole, replay only ever reaches the train split, and bad sources are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vocabtune.config import MAX_CHUNK_S, SAMPLE_RATE, TrainConfig
from vocabtune.dataset import STORED_FEATURES, example_audio, load_dataset_dir
from vocabtune.errors import VocabtuneError
from vocabtune.replay import BUILTIN_DIR, builtin_split, replay_sources, with_replay

from test_training import config, make_dataset  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture(scope="module")
def builtin():
    return builtin_split()


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "voice")


def test_sources_none_alone_and_repeats_once():
    assert replay_sources(["none"]) == []
    assert replay_sources(["builtin", "data/a", "builtin"]) == ["builtin", "data/a"]
    with pytest.raises(VocabtuneError, match="none cannot be combined"):
        replay_sources(["none", "builtin"])


def test_builtin_is_everyday_text_in_chunks_a_trainer_can_use(builtin):
    sentences = [s.strip() for s in (BUILTIN_DIR / "everyday.txt").read_text().splitlines() if s.strip()]
    assert len(builtin) >= 5 and set(builtin.column_names) == set(STORED_FEATURES)
    assert " ".join(builtin["text"]) == " ".join(sentences)          # every sentence, in order
    for row in builtin.cast_column("audio", builtin.features["audio"].__class__(decode=False)):
        audio = example_audio(row)
        duration = row["end"] - row["start"]
        assert 0 < duration <= MAX_CHUNK_S
        assert abs(len(audio) / SAMPLE_RATE - duration) < 2 / SAMPLE_RATE
        assert np.abs(audio).max() > 0.05                             # speech, not silence
        assert all(0 <= c["start"] < c["end"] <= duration + 1e-6 for c in row["cues"])


def test_replay_goes_to_train_only(voice, builtin):
    dataset = load_dataset_dir(voice)
    mixed = with_replay(dataset, ["builtin"])
    assert len(mixed["train"]) == len(dataset["train"]) + len(builtin)
    assert mixed["validation"]["text"] == dataset["validation"]["text"]
    assert mixed["train"]["text"][: len(dataset["train"])] == dataset["train"]["text"]
    assert set(mixed["train"]["source"][len(dataset["train"]):]) == {"everyday.mp3"}
    assert with_replay(dataset, ["none"]) is dataset


def test_a_dataset_folder_replays_both_its_splits(voice, tmp_path):
    other = make_dataset(tmp_path / "general", n_train=3, n_val=1)
    mixed = with_replay(load_dataset_dir(voice), [str(other)])
    assert len(mixed["train"]) == 6 + 3 + 1
    assert len(mixed["validation"]) == 2


def test_builtin_and_a_folder_replay_together(voice, builtin, tmp_path):
    """The built-in chunks and a built folder declare their audio differently; mixing both
    (``--replay builtin DIR``) must still work, with every chunk's audio readable."""
    other = make_dataset(tmp_path / "general", n_train=3, n_val=1)
    mixed = with_replay(load_dataset_dir(voice), ["builtin", str(other)])
    train = mixed["train"]
    assert len(train) == 6 + len(builtin) + 3 + 1
    assert train["source"][6:6 + len(builtin)] == builtin["source"]
    for i in (0, 6, len(train) - 1):                                  # own, builtin, folder
        row = train[i]
        assert len(example_audio(row)) == pytest.approx((row["end"] - row["start"]) * SAMPLE_RATE, abs=2)


def test_a_missing_replay_folder_is_named(voice, tmp_path):
    with pytest.raises(VocabtuneError, match="no such replay dataset folder") as err:
        with_replay(load_dataset_dir(voice), [str(tmp_path / "nope")])
    assert "nope" in str(err.value)


def test_training_mixes_builtin_replay_by_default(voice, tiny_whisper, tmp_path):
    """The default recipe: replay chunks are trained on (with targets), never validated on."""
    from vocabtune.training import prepare

    assert TrainConfig().replay == ("builtin",)
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("GGUF\n")
    cfg = config(voice, tiny_whisper, vocab, tmp_path / "run", replay=TrainConfig().replay)
    inputs = prepare(cfg)
    n_builtin = len(builtin_split())
    assert len(inputs.train) == 6 + n_builtin and len(inputs.validation) == 2
    last = inputs.train[len(inputs.train) - 1]
    assert len(last["labels"]) > 3 and "encoder_hidden" in last      # encoded once, like the rest
    assert not (tmp_path / "run").exists()                           # prepare writes nothing


def test_cli_replay_none_and_a_bad_source(voice, tiny_whisper, tmp_path, capsys):
    import finetune

    code = finetune.main(["train", "--dataset", str(voice), "--base-model", str(tiny_whisper),
                          "--output-dir", str(tmp_path / "run"), "--device", "cpu",
                          "--replay", "none", "builtin"])
    err = capsys.readouterr().err
    assert code == 1 and "none cannot be combined" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
