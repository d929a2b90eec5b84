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
    save_file({"lora_A": np.ones((2, 4), dtype=np.float32)},
              str(folder / "adapter_model.safetensors"))
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
              "finetuned": {"wer": 0.1, "term_recall": 0.9},
              "general": {"dataset": "/tmp/me/secret/data/general", "num_chunks": 5,
                          "models": {"base": {"wer": 0.072}, "finetuned": {"wer": 0.079}},
                          "wer_change": {"change": 0.007, "low": -0.008, "high": 0.025}}}
    train = {"base_model": "openai/whisper-small", "dataset": "me/voice", "language": "en",
             "lora_r": 32, "lora_alpha": 64, "lora_dropout": 0.05,
             "target_modules": ["q_proj", "v_proj"], "epochs": 5, "train_seconds": 754.0,
             "replay": ["builtin", "/tmp/me/secret/data/general-voice"], "speed_perturb": [0.9, 1.1],
             "context_weight": 0.2}
    return make_model(tmp_path / "models" / "voice-merged", report, train)


# -- the fake Hub itself ----------------------------------------------------------------------

def test_fake_hub_binds_localhost_only(hub_server):
    assert hub_server.url.startswith("http://127.0.0.1:")
    assert hub_server.server.server_address[0] == "127.0.0.1"


def test_fake_hub_stops_by_itself():
    import time

    from hubserver import FakeHub

    fake = FakeHub(lifetime_s=0.2).start()
    port = fake.server.server_address[1]
    time.sleep(1.0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


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
    assert "own voice" in card and "`start` (s, in the source recording)" in card
    for term in TERMS:
        assert f"`{term}`" in card
    assert "| `Mixtral 8x7B` | 2 | 1 |" in card
    assert "python prepare_data.py build --recordings recordings" in card


ODD_TERMS = ["a|b", "`tick`", "x `` y", "*bold*", "<b>HTML</b>", "$PATH", "café", "東京"]


@pytest.mark.parametrize("counted", [True, False])
def test_dataset_card_shows_every_term_literally(hub_server, dataset_dir, counted):
    """Terms with markdown syntax in them (a pipe split the vocabulary table's row, a backtick
    ended the code span early) arrive on the Hub as one code cell each, spelt exactly."""
    markdown_it = pytest.importorskip("markdown_it")
    import html
    import re

    meta = json.loads((dataset_dir / "vocabtune.json").read_text())
    meta["terms"] = ODD_TERMS
    for split in meta["splits"].values():
        split["term_counts"] = {t: 1 for t in ODD_TERMS} if counted else {}
    (dataset_dir / "vocabtune.json").write_text(json.dumps(meta), encoding="utf-8")
    hub.push_dataset(PushConfig(path=dataset_dir, repo="me/voice"))
    card = hub_server.repos["me/voice"].card
    vocabulary = card.split("## Vocabulary")[1].split("\n## ")[0]
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(vocabulary)
    codes = [html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", rendered)]
    assert codes == ODD_TERMS
    if counted:
        assert all(row.count("<td") == 3 for row in re.findall(r"<tr>\s*<td>.*?</tr>", rendered, re.S))


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


def test_another_namespace_is_refused_in_the_servers_words(hub_server, dataset_dir, capsys):
    hub_server.owners = {"me"}
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", "openai/voice"]) == 1
    err = capsys.readouterr().err
    assert ('HTTP 403: You don\'t have the rights to create a dataset under the namespace "openai" — your '
            "token cannot write there") in err and "None" not in err
    assert err.count("\n") == 1 and hub_server.repos == {}


def test_someone_elses_public_repo_is_named_as_such_and_nothing_goes_up(hub_server, model_dir, capsys):
    hub_server.owners = {"me"}
    hub_server.add_repo("openai/whisper-small", "model", private=False, files={"README.md": b"theirs"})
    assert finetune.main(["push", "--model", str(model_dir), "--repo", "openai/whisper-small"]) == 1
    err = capsys.readouterr().err
    assert "already exists and is public, under 'openai', where your token cannot create repos" in err
    assert "settings" not in err and "check --repo" in err and _one_error_line(err)
    assert finetune.main(["push", "--model", str(model_dir), "--repo", "openai/whisper-small", "--public"]) == 1
    assert "HTTP 403: You don't have the rights to write to openai/whisper-small" in capsys.readouterr().err
    assert not hub_server.commits and not hub_server.lfs_objects   # refused at its first write request
    assert hub_server.files("openai/whisper-small") == {"README.md": b"theirs"}


def test_an_organisations_private_repo_the_token_may_write_to_is_pushed_to(hub_server, dataset_dir):
    """The Hub refuses to create a repo there (403) but the repo exists and takes commits."""
    hub_server.owners, hub_server.writable = {"me"}, {"lab/voice"}
    hub_server.add_repo("lab/voice", "dataset", private=True)
    hub.push_dataset(PushConfig(path=dataset_dir, repo="lab/voice"))
    assert "README.md" in hub_server.files("lab/voice") and hub_server.repos["lab/voice"].private


def _one_error_line(err: str) -> bool:
    """One error, on one line to the end (huggingface_hub's upload progress bar may precede it)."""
    return err.count("error: ") == 1 and err.split("error: ")[1].count("\n") == 1 \
        and err.endswith("\n") and "Traceback" not in err


@pytest.mark.parametrize("text, what", [('{"finetuned": {"wer": 0.1', "invalid JSON"),
                                        ("[]", "holds a JSON list")])
def test_a_damaged_report_is_one_line_before_any_repo_is_made(hub_server, model_dir, capsys, text, what):
    """It was skipped with a warning: the card said "not measured" and the damaged file went
    up beside it, to a repo that may be public."""
    (model_dir / "report.json").write_text(text)
    assert finetune.main(["push", "--model", str(model_dir), "--repo", "me/whisper-voice", "--public"]) == 1
    err = capsys.readouterr().err
    assert _one_error_line(err) and f"error: {model_dir / 'report.json'}:1: {what}" in err
    assert f"finetune.py evaluate --model {model_dir}" in err
    assert "me/whisper-voice" not in hub_server.repos and not hub_server.commits


def _no_retries(monkeypatch) -> None:
    """huggingface_hub retries an LFS upload 5 times over 23 s; once is enough to see the error."""
    import functools

    from huggingface_hub import lfs
    from huggingface_hub.utils import http_backoff

    monkeypatch.setattr(lfs, "http_backoff", functools.partial(http_backoff, max_retries=0))


def test_a_server_error_during_the_upload_says_which_file_and_to_try_later(hub_server, model_dir, capsys,
                                                                          monkeypatch):
    _no_retries(monkeypatch)
    hub_server.fail("PUT", "/lfs-upload/", 503)
    assert finetune.main(["push", "--model", str(model_dir), "--repo", "me/w"]) == 1
    err = capsys.readouterr().err
    assert "cannot upload to me/w" in err and "'model.safetensors'" in err and "HTTP 503" in err
    assert "try again later" in err and "check the files" not in err and _one_error_line(err)
    assert hub_server.files("me/w") == {} and not hub_server.commits     # nothing half-pushed


@pytest.mark.parametrize("method, path", [("PUT", "/lfs-upload/"), ("POST", "/commit/")])
def test_a_dropped_connection_is_one_line_and_pushing_again_completes(hub_server, model_dir, capsys,
                                                                     monkeypatch, method, path):
    _no_retries(monkeypatch)
    failure = hub_server.fail(method, path, status=None, times=1)
    assert finetune.main(["push", "--model", str(model_dir), "--repo", "me/w"]) == 1
    err = capsys.readouterr().err
    assert failure.times == 0 and "the connection broke off" in err and "unreachable" not in err
    assert "pushing again" in err and _one_error_line(err)
    assert hub_server.files("me/w") == {} and hub_server.repos["me/w"].private
    assert finetune.main(["push", "--model", str(model_dir), "--repo", "me/w"]) == 0
    assert hub_server.files("me/w")["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()


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


# -- model push -------------------------------------------------------------------------------

def test_push_model_private_with_files_and_card(hub_server, model_dir, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    assert finetune.main(["push", "--model", str(model_dir), "--repo", "me/whisper-voice"]) == 0

    repo = hub_server.repos["me/whisper-voice"]
    assert repo.repo_type == "model" and repo.private is True
    assert set(repo.files) == {"README.md", "model.safetensors", "config.json",
                               "generation_config.json", "tokenizer.json", "report.json",
                               "vocabtune_train.json"}       # no checkpoint-*/ leftovers
    assert repo.files["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()
    assert "model.safetensors" in repo.lfs_paths
    out = capsys.readouterr()
    assert f"{hub_server.url}/me/whisper-voice" in out.out and "private" in out.out
    assert_no_token(hub_server.token, out.out, out.err, caplog.text, repo.card)


def test_model_card_has_measured_metrics_and_model_index(hub_server, model_dir):
    hub.push_model(PushConfig(path=model_dir, repo="me/whisper-voice"))
    card = hub_server.repos["me/whisper-voice"].card
    meta = front_matter(card)
    assert meta["base_model"] == "openai/whisper-small" and meta["datasets"] == ["me/voice"]
    assert meta["pipeline_tag"] == "automatic-speech-recognition"
    result = meta["model-index"][0]["results"][0]
    assert result["task"]["type"] == "automatic-speech-recognition"
    assert result["dataset"]["split"] == "validation"
    metrics = {m["type"]: m["value"] for m in result["metrics"]}
    assert metrics == {"wer": 10.0, "term_recall": 90.0}
    assert "| WER (lower is better) | 25.0 % | 10.0 % |" in card
    assert "| vocabulary term recall (higher is better) | 50.0 % | 90.0 % |" in card
    assert "| WER on general speech (`general`), the forgetting check | 7.2 % | 7.9 % |" in card
    assert ("The change on general speech (+0.7 points) has a 95% interval of −0.8 to +2.5 points "
            "(paired bootstrap).") in card
    for row in ("| LoRA rank r | 32 |", "| LoRA alpha | 64 |", "| LoRA dropout | 0.05 |",
                "| target modules | q_proj, v_proj |", "| training time | 12 min 34 s |",
                "| epochs | 5.0 |",
                "| general speech replayed | vocabtune's built-in everyday sentences (4 min), "
                "`general-voice` |",
                "| speed perturbation | copies of the train audio at 0.9x, 1.1x speed |",
                "| loss weight of the words around the terms | 0.2 |"):
        assert row in card
    assert "/tmp/me" not in card                 # a replay folder by its name only
    # the usage snippet works on recordings over 30 s: transformers' pipeline refuses them
    # ("requires the model to predict timestamp tokens") without return_timestamps=True
    assert 'asr("recording.mp3", return_timestamps=True)' in card


def test_model_card_training_table_shows_folder_names_as_typed(hub_server, model_dir):
    meta_path = model_dir / "vocabtune_train.json"
    meta = json.loads(meta_path.read_text())
    meta["dataset"] = "data/my_voice|v2*"
    meta_path.write_text(json.dumps(meta))
    hub.push_model(PushConfig(path=model_dir, repo="me/whisper-voice"))
    card = hub_server.repos["me/whisper-voice"].card
    assert "| dataset | data/my\\_voice\\|v2\\* |" in card        # one cell, shown as typed


def test_model_card_names_the_dataset_the_results_were_measured_on(hub_server, tmp_path):
    """Evaluated on a held-out set, not the one trained on: the card and its model-index must
    not credit the figures to the training data."""
    folder = make_model(tmp_path / "m", report={"dataset": "/home/me/data/held-out", "split": "validation",
                                                "base": {"wer": 0.3}, "finetuned": {"wer": 0.2}},
                        train={"dataset": "me/voice", "base_model": "openai/whisper-small"})
    hub.push_model(PushConfig(path=folder, repo="me/w"))
    card = hub_server.repos["me/w"].card
    assert "## Results on the `validation` split of `held-out`" in card and "/home/me" not in card
    dataset = front_matter(card)["model-index"][0]["results"][0]["dataset"]
    assert dataset["name"] == "held-out" and dataset["type"] != "me/voice"
    assert front_matter(card)["datasets"] == ["me/voice"]             # what it was trained on


def test_model_card_without_report_says_not_measured(hub_server, tmp_path):
    folder = make_model(tmp_path / "m")
    hub.push_model(PushConfig(path=folder, repo="me/whisper-voice"))
    card = hub_server.repos["me/whisper-voice"].card
    assert "model-index" not in front_matter(card)
    assert "| WER (lower is better) | not measured | not measured |" in card
    assert "%" not in card.split("## Results")[1].split("##")[0].replace("(%)", "")


def test_push_model_with_adapter_to_its_own_private_repo(hub_server, tmp_path):
    folder = make_model(tmp_path / "m", report={"base": {"wer": 0.3}, "finetuned": {"wer": 0.2}})
    adapter = make_adapter(tmp_path / "runs" / "best")
    assert finetune.main(["push", "--model", str(folder), "--repo", "me/whisper-voice",
                          "--adapter", str(adapter),
                          "--adapter-repo", "me/whisper-voice-lora"]) == 0
    merged, lora = hub_server.repos["me/whisper-voice"], hub_server.repos["me/whisper-voice-lora"]
    assert merged.private is True and lora.private is True
    assert set(lora.files) == {"README.md", "adapter_model.safetensors", "adapter_config.json"}
    assert lora.files["adapter_model.safetensors"] == \
        (adapter / "adapter_model.safetensors").read_bytes()
    assert front_matter(lora.card)["base_model"] == "openai/whisper-small"
    assert "me/whisper-voice" in lora.card
    # the adapter's peft config fills the merged model's LoRA settings
    assert "| LoRA rank r | 32 |" in merged.card
    assert "| base model | openai/whisper-small |" in merged.card
    assert "| adapter | me/whisper-voice-lora |" in merged.card


def test_an_adapter_other_than_the_merged_one_is_refused_before_any_request(hub_server, tmp_path, capsys):
    """Its card would say "the same weights merged into" the model and its report.json would
    fill the model's card: a run trained again into the merged adapter's folder is another one."""
    import hashlib

    folder = make_model(tmp_path / "m")
    merged_adapter = make_adapter(tmp_path / "runs" / "v" / "best")
    weights = merged_adapter / "adapter_model.safetensors"
    (folder / "vocabtune_merge.json").write_text(json.dumps({
        "adapter": str(merged_adapter), "adapter_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}))
    copy = tmp_path / "elsewhere" / "best"
    shutil.copytree(merged_adapter, copy)
    hub.push_model(PushConfig(path=folder, repo="me/w", adapter=copy))        # the same weights: fine
    assert "me/w-lora" in hub_server.repos

    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")        # trained again, same folder
    (merged_adapter / "report.json").write_text(json.dumps({"finetuned": {"wer": 0.01}}))
    requests = len(hub_server.requests)
    assert finetune.main(["push", "--model", str(folder), "--repo", "me/w2", "--adapter", str(merged_adapter)]) == 1
    err = capsys.readouterr().err
    assert f"this is not the adapter merged into {folder}" in err and "merge this one first" in err
    assert len(hub_server.requests) == requests and "me/w2" not in hub_server.repos


def test_public_adapter_repo_refused_before_anything_is_uploaded(hub_server, tmp_path):
    folder = make_model(tmp_path / "m")
    adapter = make_adapter(tmp_path / "a")
    hub_server.add_repo("me/whisper-voice-lora", "model", private=False)
    with pytest.raises(VocabtuneError, match="whisper-voice-lora already exists and is public"):
        hub.push_model(PushConfig(path=folder, repo="me/whisper-voice", adapter=adapter,
                                  adapter_repo="me/whisper-voice-lora"))
    assert hub_server.uploads() == []
    assert hub_server.files("me/whisper-voice") == {}


def test_adapter_repo_defaults_next_to_the_model_repo(hub_server, tmp_path):
    folder = make_model(tmp_path / "m")
    hub.push_model(PushConfig(path=folder, repo="me/w", adapter=make_adapter(tmp_path / "a")))
    assert hub_server.repos["me/w-lora"].private is True


@pytest.mark.parametrize("setup, message", [
    ("missing", "model folder not found"),
    ("adapter", "LoRA adapter, not a merged model"),
    ("empty", "not a merged model folder"),
])
def test_bad_model_folder_is_a_clear_error(hub_server, tmp_path, setup, message):
    folder = tmp_path / "m"
    if setup == "adapter":
        make_adapter(folder)
    elif setup == "empty":
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    with pytest.raises(VocabtuneError, match=message):
        hub.push_model(PushConfig(path=folder, repo="me/w"))
    assert hub_server.requests == []


def test_adapter_repo_without_adapter_is_an_error(hub_server, model_dir):
    with pytest.raises(VocabtuneError, match="--adapter-repo needs --adapter"):
        hub.push_model(PushConfig(path=model_dir, repo="me/w", adapter_repo="me/w-lora"))


# -- cards without a server -------------------------------------------------------------------

def test_report_metrics_read_base_and_finetuned():
    base, tuned = cards.report_metrics({"base": {"wer": 0.4, "term_recall": 0.25},
                                        "fine_tuned": {"wer": 0.1}})
    assert base == cards.Metrics(0.4, 0.25) and tuned == cards.Metrics(0.1, None)
    assert cards.report_metrics({}) == (None, None)
    assert cards.report_metrics({"base": {"wer": "n/a"}}) == (None, None)


def test_general_check_from_report_only_when_the_fine_tune_was_measured():
    assert cards.general_check({}) is None
    assert cards.general_check({"general": None}) is None
    assert cards.general_check({"general": {"models": {"base": {"wer": 0.07}}}}) is None
    found = cards.general_check({"general": {"dataset": "data/general",
                                             "models": {"base": {"wer": 0.07}, "finetuned": {"wer": 0.08}}}})
    assert found == cards.GeneralCheck("general", 0.07, 0.08, None, None)
    card = cards.model_card(cards.ModelFacts("me/w", general=found))
    assert "| WER on general speech (`general`), the forgetting check | 7.0 % | 8.0 % |" in card
    assert "interval" not in card, "no interval was measured, so none is stated"


def test_local_paths_never_become_hub_links():
    assert cards.hub_id_or_none("openai/whisper-small") == "openai/whisper-small"
    for path in (".cache/models/whisper-base", "/abs/path", "data/voice/x", "voice", None):
        assert cards.hub_id_or_none(path) is None
    card = cards.model_card(cards.ModelFacts("me/w", base_model=".cache/models/whisper-base",
                                             dataset="data/voice", dataset_is_local=True,
                                             finetuned=cards.Metrics(0.123, None)))
    meta = front_matter(card)
    assert "base_model" not in meta and "datasets" not in meta
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert metrics == [{"type": "wer", "value": 12.3, "name": "WER (%)"}]
    assert "| vocabulary term recall (higher is better) | not measured | not measured |" in card


def test_split_facts_from_build_metadata_shapes():
    assert cards.split_from_dict("train", {"chunks": 4, "audio_s": 61.0}) == \
        cards.SplitFacts("train", 4, 61.0)
    assert cards.split_from_dict("train", {"num_chunks": 2, "minutes": 1.5}).seconds == 90.0
    assert cards.split_from_dict("train", {"chunks": 2}) is None
    assert cards.terms_from_dict({"splits": {"train": {"term_counts": {"vLLM": 1}}}}) == ("vLLM",)
    assert cards.terms_from_dict({"terms": [{"text": "Phi-2"}, "vLLM"]}) == ("Phi-2", "vLLM")


def test_local_dataset_folder_recorded_by_training_is_not_linked(hub_server, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "voice").mkdir(parents=True)
    folder = make_model(tmp_path / "m", train={"dataset": "data/voice",
                                               "base_model": "openai/whisper-small"})
    hub.push_model(PushConfig(path=folder, repo="me/w"))
    card = hub_server.repos["me/w"].card
    assert "datasets" not in front_matter(card)
    assert front_matter(card)["base_model"] == "openai/whisper-small"
    assert "| dataset | data/voice |" in card


def test_card_reads_the_files_training_merge_and_evaluate_write(hub_server, tmp_path):
    """The shapes the other stages write: vocabtune_train.json with a nested config and
    per-epoch logs, vocabtune_merge.json, report.json (format 1, full ``models`` only)."""
    folder = make_model(tmp_path / "m", report={"format": 1, "dataset": "data/voice",
                                                "models": {"base": {"wer": 0.5},
                                                           "finetuned": {"wer": 0.2}}},
                        train={"config": {"dataset": "data/voice", "lora_r": 16, "epochs": 3.0,
                                          "target_modules": ["q_proj", "v_proj"]},
                               "epochs": [{"epoch": 1, "wer": 0.4}], "train_seconds": 65})
    (folder / "vocabtune_merge.json").write_text(json.dumps({"base_model": "openai/whisper-base",
                                                             "language": "de"}))
    hub.push_model(PushConfig(path=folder, repo="me/w"))
    card = hub_server.repos["me/w"].card
    meta = front_matter(card)
    assert meta["base_model"] == "openai/whisper-base" and meta["language"] == "de"
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 20.0
    for row in ("| WER (lower is better) | 50.0 % | 20.0 % |", "| LoRA rank r | 16 |",
                "| epochs | 3.0 |", "| training time | 1 min 5 s |", "| dataset | data/voice |"):
        assert row in card


def test_push_model_with_a_faster_whisper_export(hub_server, tiny_whisper, tmp_path):
    """--ctranslate2 adds the CTranslate2 conversion under ctranslate2-int8/ in the same repo."""
    import shutil

    model = tmp_path / "my-voice-merged"
    shutil.copytree(tiny_whisper, model)
    assert finetune.main(["push", "--model", str(model), "--repo", "me/whisper-ct2", "--ctranslate2"]) == 0
    files = hub_server.files("me/whisper-ct2")
    assert "model.safetensors" in files and "ctranslate2-int8/model.bin" in files
    assert "ctranslate2-int8/tokenizer.json" in files and "ctranslate2-int8/preprocessor_config.json" in files
    assert "download this repo's `ctranslate2-int8/` folder" in hub_server.repos["me/whisper-ct2"].card
    assert hub_server.repos["me/whisper-ct2"].private


def test_a_bad_ctranslate2_quantization_creates_no_repo(hub_server, tiny_whisper, tmp_path, capsys):
    import shutil

    model = tmp_path / "my-voice-merged"
    shutil.copytree(tiny_whisper, model)
    assert finetune.main(["push", "--model", str(model), "--repo", "me/bogus", "--ctranslate2", "int3"]) == 1
    assert "unknown quantization 'int3'" in capsys.readouterr().err
    assert "me/bogus" not in hub_server.repos


def test_pushed_metadata_names_no_local_folder(hub_server, model_dir, tmp_path):
    hub.push_model(PushConfig(path=model_dir, repo="me/whisper-voice"))
    files = hub_server.files("me/whisper-voice")
    for name in ("report.json", "vocabtune_train.json"):
        text = files[name].decode()
        assert "/tmp/me" not in text and str(tmp_path) not in text, name
    assert json.loads(files["report.json"])["general"]["dataset"] == "general"
    assert json.loads(files["vocabtune_train.json"])["replay"] == ["builtin", "general-voice"]
    assert b"/tmp/me" in (model_dir / "report.json").read_bytes()      # the local copy is untouched


def test_a_resumed_run_says_its_training_time_is_partial():
    from vocabtune import cards

    facts = cards.model_facts_from_dicts("me/w", {"train_seconds": 65, "resumed_from": "runs/v/checkpoint-8"},
                                         {}, {})
    assert ("| training time | 1 min 5 s after resuming (the time before the interruption was not "
            "recorded) |") in cards.model_card(facts)
    facts = cards.model_facts_from_dicts("me/w", {"train_seconds": 65, "resumed_from": None}, {}, {})
    assert "| training time | 1 min 5 s |" in cards.model_card(facts)


@pytest.mark.parametrize("datasets, what", [([], "no dataset"), (["a", "b"], "several datasets")])
def test_push_without_dataset_and_no_single_one_is_one_line(tmp_path, monkeypatch, capsys, datasets, what):
    monkeypatch.chdir(tmp_path)
    for name in datasets:
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "dataset_dict.json").write_text('{"splits": ["train"]}')
    assert prepare_data.main(["push", "--repo", "me/voice"]) == 1
    err = capsys.readouterr().err
    assert what in err and "Traceback" not in err and err.startswith("error: ")


def test_the_card_and_adapter_config_name_no_local_folder(hub_server, tmp_path):
    train = {"base_model": "/tmp/me/models/whisper-base", "dataset": "/tmp/me/proj/data/voice",
             "epochs": 2, "train_seconds": 60}
    folder = make_model(tmp_path / "m", {"dataset": "/tmp/me/proj/data/voice"}, train)
    (folder / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": "/tmp/me/models/whisper-base", "r": 32}))
    hub.push_model(PushConfig(path=folder, repo="me/w"))
    files = hub_server.files("me/w")
    card = hub_server.repos["me/w"].card
    assert "/tmp/me" not in card and "| base model | whisper-base |" in card and "| dataset | voice |" in card
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == "whisper-base"


def test_stale_files_are_only_ours_that_this_push_lacks():
    existing = ["README.md", "model.safetensors", "ctranslate2-int8/model.bin", "report.png",
                "vocabtune_export.json", "notes.md", "data/train-00000-of-00002.parquet", "samples/a.wav"]
    pushed = {"model.safetensors", "README.md"}
    assert hub.stale_files(existing, pushed) == ["ctranslate2-int8/model.bin",
                                                 "data/train-00000-of-00002.parquet", "report.png",
                                                 "vocabtune_export.json"]


def test_a_re_push_removes_what_the_earlier_push_had_and_keeps_the_persons_files(hub_server, tiny_whisper,
                                                                                 tmp_path):
    import shutil

    model = tmp_path / "my-voice-merged"
    shutil.copytree(tiny_whisper, model)
    assert finetune.main(["push", "--model", str(model), "--repo", "me/w", "--ctranslate2"]) == 0
    hub_server.repos["me/w"].files["notes.md"] = b"written on the Hub by the person"
    (model / "report.json").write_text(json.dumps({"dataset": "data/voice"}))
    assert finetune.main(["push", "--model", str(model), "--repo", "me/w"]) == 0
    files = hub_server.files("me/w")
    assert not [p for p in files if p.startswith("ctranslate2-")], "the old export went with it"
    assert files["notes.md"] == b"written on the Hub by the person" and "report.json" in files
    assert "ctranslate2-int8" not in hub_server.repos["me/w"].card      # no folder promised that is gone


def test_the_card_gives_the_epochs_trained_when_a_run_stopped_short():
    from vocabtune import cards

    stopped = {"epochs": 1.0, "per_epoch": [{"epoch": 0.4, "step": 2}]}
    facts = cards.model_facts_from_dicts("me/w", cards.training_record(stopped), {}, {})
    assert "| epochs | 0.4 (of 1 asked) |" in cards.model_card(facts)
    whole = {"epochs": 4.0, "per_epoch": [{"epoch": e, "step": 18 * e} for e in (1.0, 2.0, 3.0, 4.0)]}
    facts = cards.model_facts_from_dicts("me/w", cards.training_record(whole), {}, {})
    assert "| epochs | 4.0 |" in cards.model_card(facts)


@pytest.mark.parametrize("repo", ["me/a--b", "me/..", "me/-w-", "me/vöice", "me/" + "a" * 97])
def test_ids_the_hub_refuses_are_refused_before_any_request(hub_server, dataset_dir, capsys, repo):
    assert prepare_data.main(["push", "--dataset", str(dataset_dir), "--repo", repo]) == 1
    err = capsys.readouterr().err
    assert "not a Hub repo id" in err and "try again" not in err
    assert hub_server.requests == []


def test_a_bad_adapter_repo_id_creates_no_model_repo(hub_server, model_dir, tmp_path, capsys):
    adapter = tmp_path / "runs" / "v" / "best"          # only the folder's shape matters here
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "openai/whisper-small"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"x")
    code = finetune.main(["push", "--model", str(model_dir), "--repo", "me/new", "--adapter", str(adapter),
                          "--adapter-repo", "bad id"])
    assert code == 1 and "not a Hub repo id: 'bad id'" in capsys.readouterr().err
    assert "me/new" not in hub_server.repos
