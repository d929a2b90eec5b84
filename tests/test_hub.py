"""Pushes to the Hub, for real, against the fake Hub in tests/hubserver.py: what arrived (files
and bytes, private flag, card), the refusals that must happen before any upload, and the token
never leaking. Card text is also unit-tested without any server."""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
import wave
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

import finetune
import prepare_data
from vocabtune import cards, hub
from vocabtune.config import PushConfig
from vocabtune.errors import VocabtuneError

SR = 16_000
TERMS = ["Mixtral 8x7B", "vLLM", "Phi-2"]
TEXTS = {"train": ["Mixtral 8x7B runs on vLLM.", "Phi-2 is small.", "I like Mixtral 8x7B."],
         "validation": ["Serve Phi-2 with vLLM.", "Mixtral 8x7B again."]}


# -- helpers ----------------------------------------------------------------------------------

def wav_bytes(seconds: float, freq: float) -> bytes:
    t = np.arange(int(seconds * SR)) / SR
    samples = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def split_rows(split: str) -> dict[str, list]:
    texts = TEXTS[split]
    starts = [10.0 * i for i in range(len(texts))]
    ends = [s + 1.5 + 0.5 * i for i, s in enumerate(starts)]
    return {"audio": [{"bytes": wav_bytes(e - s, 220 + 10 * i), "path": None}
                      for i, (s, e) in enumerate(zip(starts, ends))],
            "text": texts, "start": starts, "end": ends, "source": [f"{split}.mp3"] * len(texts)}


def make_dataset(folder: Path, with_meta: bool = True) -> dict[str, dict[str, list]]:
    """A real DatasetDict as build writes it: WAV bytes in a struct cast to Audio(16 kHz)."""
    from datasets import Audio, Dataset, DatasetDict

    rows = {split: split_rows(split) for split in TEXTS}
    dd = DatasetDict({split: Dataset.from_dict(r).cast_column("audio", Audio(sampling_rate=SR))
                      for split, r in rows.items()})
    dd.save_to_disk(str(folder))
    if with_meta:
        meta = {"vocabtune_version": "0.1.0", "language": "en", "terms": TERMS,
                "splits": {s: {"chunks": len(r["text"]),
                               "audio_s": sum(e - b for b, e in zip(r["start"], r["end"])),
                               "term_counts": {t: sum(t in x for x in r["text"]) for t in TERMS}}
                           for s, r in rows.items()},
                "commands": ["python prepare_data.py build --recordings recordings"]}
        (folder / "vocabtune.json").write_text(json.dumps(meta))
    return rows


def make_model(folder: Path, report: dict | None = None, train: dict | None = None) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    save_file({"proj.weight": np.arange(12, dtype=np.float32).reshape(3, 4)},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "whisper", "d_model": 4}))
    (folder / "generation_config.json").write_text(json.dumps({"language": "en"}))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    (folder / "checkpoint-10").mkdir()
    (folder / "checkpoint-10" / "optimizer.pt").write_bytes(b"x" * 10)
    if report is not None:
        (folder / "report.json").write_text(json.dumps(report))
    if train is not None:
        (folder / "vocabtune_train.json").write_text(json.dumps(train))
    return folder


def make_adapter(folder: Path) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    save_file({"lora_A": np.ones((2, 4), dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "base_model_name_or_path": "openai/whisper-small", "r": 32, "lora_alpha": 64,
        "lora_dropout": 0.05, "target_modules": ["v_proj", "q_proj"], "peft_type": "LORA"}))
    return folder


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def assert_no_token(token: str, *texts: str) -> None:
    for text in texts:
        assert token not in text


@pytest.fixture
def dataset_dir(tmp_path) -> Path:
    folder = tmp_path / "data" / "voice"
    make_dataset(folder)
    return folder


@pytest.fixture
def model_dir(tmp_path) -> Path:
    report = {"split": "validation", "base": {"wer": 0.25, "term_recall": 0.5},
              "finetuned": {"wer": 0.1, "term_recall": 0.9}}
    train = {"base_model": "openai/whisper-small", "dataset": "me/voice", "language": "en",
             "lora_r": 32, "lora_alpha": 64, "lora_dropout": 0.05,
             "target_modules": ["q_proj", "v_proj"], "epochs": 5, "train_seconds": 754.0}
    return make_model(tmp_path / "models" / "voice-merged", report, train)


# -- the fake Hub itself ----------------------------------------------------------------------

def test_fake_hub_binds_localhost_only_and_stops(hub_server):
    assert hub_server.url.startswith("http://127.0.0.1:")
    assert hub_server.server.server_address[0] == "127.0.0.1"


# -- dataset push -----------------------------------------------------------------------------

def test_push_dataset_private_with_parquet_and_card(hub_server, dataset_dir, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", "me/voice"]) == 0

    repo = hub_server.repos["me/voice"]
    assert repo.repo_type == "dataset" and repo.private is True
    assert set(repo.files) == {"README.md", "data/train-00000-of-00001.parquet",
                               "data/validation-00000-of-00001.parquet"}
    assert repo.lfs_paths == {"data/train-00000-of-00001.parquet",
                              "data/validation-00000-of-00001.parquet"}
    assert len(hub_server.commits) == 1
    out = capsys.readouterr()
    assert f"{hub_server.url}/datasets/me/voice" in out.out and "private" in out.out
    assert_no_token(hub_server.token, out.out, out.err, caplog.text, repo.card,
                    *(d.decode("latin-1") for d in repo.files.values()))


def test_pushed_parquet_rows_match_the_dataset(hub_server, tmp_path):
    folder = tmp_path / "voice"
    rows = make_dataset(folder)
    hub.push_dataset(PushConfig(path=folder, repo="me/voice"))
    for split, expected in rows.items():
        data = hub_server.files("me/voice")[f"data/{split}-00000-of-00001.parquet"]
        table = pq.read_table(io.BytesIO(data))
        assert table.column("text").to_pylist() == expected["text"]
        assert table.column("start").to_pylist() == expected["start"]
        assert table.column("end").to_pylist() == expected["end"]
        assert table.column("source").to_pylist() == expected["source"]
        got_audio = [a["bytes"] for a in table.column("audio").to_pylist()]
        assert got_audio == [a["bytes"] for a in expected["audio"]]


def test_pushed_repo_loads_with_load_dataset(hub_server, dataset_dir, tmp_path):
    """The repo as a user would clone it: load_dataset finds both splits from the card's
    configs and the parquet metadata gives the Audio feature back at 16 kHz."""
    import datasets

    hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice"))
    clone = tmp_path / "clone"
    for path, data in hub_server.files("me/voice").items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_bytes(data)
    ds = datasets.load_dataset(str(clone))
    assert set(ds) == {"train", "validation"}
    assert ds["train"].features["audio"] == datasets.Audio(sampling_rate=SR)
    assert ds["validation"]["text"][:] == TEXTS["validation"]


def test_dataset_card_states_splits_minutes_vocab_and_provenance(hub_server, dataset_dir):
    hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice"))
    card = hub_server.repos["me/voice"].card
    meta = front_matter(card)
    assert meta["task_categories"] == ["automatic-speech-recognition"]
    assert meta["license"] == "other" and meta["language"] == "en"
    assert meta["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*"},
        {"split": "validation", "path": "data/validation-*"}]
    assert "| train | 3 | 0.1 |" in card            # 1.5 + 2.0 + 2.5 s = 6 s = 0.1 min
    assert "| validation | 2 | 0.1 |" in card
    assert "own voice" in card
    for term in TERMS:
        assert f"`{term}`" in card
    assert "| `Mixtral 8x7B` | 2 | 1 |" in card
    assert "python prepare_data.py build --recordings recordings" in card


def test_dataset_card_without_build_metadata_uses_the_data(hub_server, tmp_path):
    folder = tmp_path / "voice"
    make_dataset(folder, with_meta=False)
    hub.push_dataset(PushConfig(path=folder, repo="me/voice"))
    card = hub_server.repos["me/voice"].card
    assert "| train | 3 | 0.1 |" in card
    assert "vocabulary was not recorded" in card


def test_public_flag_makes_a_public_repo(hub_server, dataset_dir):
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", "me/voice",
                              "--public"]) == 0
    assert hub_server.repos["me/voice"].private is False


def test_push_again_to_own_private_repo_works(hub_server, dataset_dir):
    hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice"))
    hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice"))
    assert hub_server.repos["me/voice"].private is True
    assert "README.md" in hub_server.files("me/voice")


def test_existing_public_repo_refused_before_any_upload(hub_server, dataset_dir, capsys):
    hub_server.add_repo("me/voice", "dataset", private=False)
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", "me/voice"]) == 1
    err = capsys.readouterr().err
    assert "already exists and is public" in err and "--public" in err and "settings" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert hub_server.uploads() == [] and hub_server.files("me/voice") == {}
    assert hub_server.repos["me/voice"].private is False     # nothing changed behind our back


def test_existing_private_repo_with_public_flag_refused(hub_server, dataset_dir):
    hub_server.add_repo("me/voice", "dataset", private=True)
    with pytest.raises(VocabtuneError, match="already exists and is private"):
        hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice", public=True))
    assert hub_server.uploads() == []


def test_no_token_is_a_clear_error(hub_server, dataset_dir, monkeypatch, tmp_path, capsys):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", "me/voice"]) == 1
    err = capsys.readouterr().err
    assert "no Hugging Face token" in err and "hf auth login" in err and "HF_TOKEN" in err
    assert hub_server.requests == []


def test_hf_token_wins_over_the_saved_token(hub_server, dataset_dir, monkeypatch, tmp_path):
    from huggingface_hub import constants

    saved = tmp_path / "token"
    saved.write_text("hf_saved_but_wrong")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(saved))
    hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice"))   # HF_TOKEN is the right one
    assert hub_server.repos["me/voice"].private is True


def test_rejected_token_error_does_not_leak_it(hub_server, dataset_dir, monkeypatch, capsys,
                                               caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_secret_value_42")
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", "me/voice"]) == 1
    out = capsys.readouterr()
    assert "401" in out.err and "hf auth login" in out.err
    assert_no_token("hf_wrong_secret_value_42", out.out, out.err, caplog.text)
    assert hub_server.repos == {}


def test_unreachable_hub_is_one_line_with_endpoint(dataset_dir, monkeypatch, capsys):
    with socket.socket() as s:                    # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", "hf_some_token_for_the_test")
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", "me/voice"]) == 1
    err = capsys.readouterr().err
    assert f"http://127.0.0.1:{port}" in err and "unreachable" in err and "ConnectError" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "hf_some_token_for_the_test" not in err


def test_config_endpoint_wins_over_env(hub_server, dataset_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")      # would fail if used
    url = hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice", endpoint=hub_server.url))
    assert url == f"{hub_server.url}/datasets/me/voice"


def test_dataset_folder_is_found_or_explained(tmp_path, dataset_dir):
    assert hub.find_dataset_folder(dataset_dir.parent) == dataset_dir
    with pytest.raises(VocabtuneError, match="no dataset here"):
        hub.find_dataset_folder(tmp_path / "nothing")
    shutil.copytree(dataset_dir, dataset_dir.parent / "other")
    with pytest.raises(VocabtuneError, match="several datasets"):
        hub.find_dataset_folder(dataset_dir.parent)


def test_bad_repo_id_refused_before_network(dataset_dir, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    with pytest.raises(VocabtuneError, match="not a Hub repo id"):
        hub.push_dataset(PushConfig(path=dataset_dir, repo="no-owner"))
