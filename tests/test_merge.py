"""merge: the merged folder transcribes exactly like base + adapter, loads with plain
transformers, and is written all-or-nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import os
from pathlib import Path

import pytest
import torch

import finetune
from tiny_adapter import make_adapter
from vocabtune.config import MergeConfig
from vocabtune.errors import VocabtuneError
from vocabtune.merge import MERGE_META, default_output, merge_adapter
from vocabtune.modelio import load_whisper


@pytest.fixture(scope="module")
def adapter(tiny_whisper, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "my-voice" / "best"
    make_adapter(tiny_whisper, run, train_meta={"config": {"language": "en"}, "epochs": [{"wer": 0.5}]})
    (run / "report.json").write_text(json.dumps({"models": {"finetuned": {"wer": 0.1}}}))
    (run / "report.md").write_text("![per-term recall](report.png)\n")
    (run / "report.png").write_bytes(b"\x89PNG chart")
    return run


@pytest.fixture(scope="module")
def merged(adapter, tmp_path_factory) -> Path:
    return merge_adapter(MergeConfig(adapter=adapter, out=tmp_path_factory.mktemp("m") / "out-merged"))


def _inputs(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(1, 80, 3000, generator=gen)
    decoder_ids = torch.tensor([[1, 5, 17, 42, 99, 7]])
    return features, decoder_ids


def _logits(model, features, decoder_ids):
    with torch.no_grad():
        return model(input_features=features, decoder_input_ids=decoder_ids).logits


def test_merged_logits_equal_adapter_logits(adapter, merged, tiny_whisper):
    from transformers import WhisperForConditionalGeneration

    features, ids = _inputs()
    with_adapter = load_whisper(str(adapter), device="cpu", dtype=torch.float32)
    plain = WhisperForConditionalGeneration.from_pretrained(str(merged)).eval()
    base = WhisperForConditionalGeneration.from_pretrained(str(tiny_whisper)).eval()
    want = _logits(with_adapter.model, features, ids)
    assert (want - _logits(base, features, ids)).abs().max() > 1e-2, "adapter must change outputs"
    assert torch.allclose(_logits(plain, features, ids), want, atol=1e-4)


def test_merged_greedy_generate_matches_adapter_without_language_args(adapter, merged):
    from transformers import WhisperForConditionalGeneration

    features, _ = _inputs(seed=2)
    with_adapter = load_whisper(str(adapter), device="cpu", dtype=torch.float32)
    plain = WhisperForConditionalGeneration.from_pretrained(str(merged)).eval()
    with torch.no_grad():
        want = with_adapter.model.generate(input_features=features, language="en", task="transcribe",
                                           max_new_tokens=12, num_beams=1, do_sample=False)
        got = plain.generate(input_features=features, max_new_tokens=12, num_beams=1, do_sample=False)
    assert got.tolist() == want.tolist()


def test_merged_folder_loads_with_plain_transformers(merged, tiny_whisper):
    from transformers import (GenerationConfig, WhisperFeatureExtractor, WhisperProcessor,
                              WhisperTokenizer)

    for name in ("model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt",
                 "tokenizer.json", "generation_config.json"):
        assert (merged / name).is_file(), name
    assert not list(merged.glob("adapter_*")), "a merged model carries no adapter files"
    WhisperFeatureExtractor.from_pretrained(str(merged))
    processor = WhisperProcessor.from_pretrained(str(merged))
    base_tok = WhisperTokenizer.from_pretrained(str(tiny_whisper))
    text = "Mixtral 8x7B and vLLM with LoRA"
    words = processor.tokenizer(text, add_special_tokens=False).input_ids
    assert words == base_tok(text, add_special_tokens=False).input_ids
    assert processor.tokenizer.decode(words) == text
    gen = GenerationConfig.from_pretrained(str(merged))
    assert gen.language == "en" and gen.task == "transcribe"


def test_metadata_travels_with_the_model(merged, adapter):
    meta = json.loads((merged / MERGE_META).read_text())
    assert meta["language"] == "en"
    assert Path(meta["adapter"]) == adapter.resolve()
    assert meta["adapter_sha256"] == hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert json.loads((merged / "vocabtune_train.json").read_text())["epochs"][0]["wer"] == 0.5
    assert json.loads((merged / "report.json").read_text())["models"]["finetuned"]["wer"] == 0.1
    assert (merged / "report.png").read_bytes() == b"\x89PNG chart"      # report.md shows it


def test_no_partial_folders_left_beside_the_output(merged):
    assert [p.name for p in merged.parent.iterdir()] == [merged.name]


def test_a_killed_merges_hidden_folder_is_removed_by_the_next_one(adapter, tmp_path, dead_pid):
    """kill -9 runs no clean-up: the hidden half-merged model stayed beside the output for
    good. The next merge there removes it, but not the folder of a merge still running."""
    out = tmp_path / "out-merged"
    killed = tmp_path / f".out-merged.{dead_pid}-0a1b2c3d.partial"
    running = tmp_path / f".out-merged.{os.getpid()}-0a1b2c3d.partial"
    for folder in (killed, running):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half a model")
    merge_adapter(MergeConfig(adapter=adapter, out=out))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, running.name])


def test_english_only_merge_sets_no_language(tiny_whisper_en, tmp_path):
    from transformers import GenerationConfig

    adapter = make_adapter(tiny_whisper_en, tmp_path / "en-run" / "checkpoint-3")
    out = merge_adapter(MergeConfig(adapter=adapter, out=tmp_path / "en-merged"))
    gen = GenerationConfig.from_pretrained(str(out))
    assert getattr(gen, "language", None) is None and getattr(gen, "task", None) is None
    assert json.loads((out / MERGE_META).read_text())["language"] is None


def test_default_output_is_named_after_the_run(tmp_path):
    assert default_output(tmp_path / "runs" / "my-voice" / "best") == Path("models/my-voice-merged")
    assert default_output(tmp_path / "runs" / "x" / "checkpoint-40") == Path("models/x-merged")
    assert default_output(tmp_path / "adapters" / "clinic") == Path("models/clinic-merged")


def test_cli_default_output_and_remerge_replaces(adapter, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert finetune.main(["merge", "--adapter", str(adapter)]) == 0
    out = tmp_path / "models" / "my-voice-merged"
    assert (out / MERGE_META).is_file()
    assert "wrote models/my-voice-merged" in capsys.readouterr().out
    (out / "report.png").write_bytes(b"a chart of the earlier merge, by evaluate")
    assert finetune.main(["merge", "--adapter", str(adapter)]) == 0
    assert (out / "report.png").read_bytes() == (adapter / "report.png").read_bytes(), \
        "evaluate's reports of the earlier merge are replaced by the adapter's"
    assert sorted(os.listdir(tmp_path / "models")) == ["my-voice-merged"]
    capsys.readouterr()
    (out / "README.md").write_text("my own model card")
    before = sorted(os.listdir(out))
    assert finetune.main(["merge", "--adapter", str(adapter)]) == 1
    err = capsys.readouterr().err
    assert "files merge did not write (README.md)" in err and "move them out" in err
    assert sorted(os.listdir(out)) == before and (out / "README.md").read_text() == "my own model card"
    assert sorted(os.listdir(tmp_path / "models")) == ["my-voice-merged"]


def test_refuses_to_overwrite_a_folder_it_did_not_write(adapter, tmp_path, capsys):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    assert finetune.main(["merge", "--adapter", str(adapter), "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "not an earlier merge output" in err[0]
    assert os.listdir(target) == ["notes.txt"]


def test_refuses_to_write_inside_the_adapter_folder(adapter, capsys):
    """push --adapter would upload a merged model written there, and every copy of the
    adapter would carry one."""
    before = sorted(p.name for p in adapter.iterdir())
    assert finetune.main(["merge", "--adapter", str(adapter), "--out", str(adapter / "merged")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the output folder is inside the adapter folder" in err[0], err
    assert sorted(p.name for p in adapter.iterdir()) == before


@pytest.mark.parametrize("make", ["missing", "not_adapter"])
def test_bad_adapter_is_one_error_line_and_nothing_written(make, tmp_path, capsys):
    adapter = tmp_path / "run"
    if make == "not_adapter":
        adapter.mkdir()
        (adapter / "config.json").write_text("{}")
    out = tmp_path / "out"
    assert finetune.main(["merge", "--adapter", str(adapter), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {adapter}")
    assert not out.exists()


def test_adapter_whose_base_is_not_whisper_is_refused(tmp_path):
    adapter = tmp_path / "run"
    adapter.mkdir()
    fake_base = tmp_path / "bert"
    fake_base.mkdir()
    (fake_base / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(fake_base)}))
    with pytest.raises(VocabtuneError, match="not a Whisper model"):
        merge_adapter(MergeConfig(adapter=adapter, out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_normalizer_of_the_base_is_kept(tiny_whisper, tmp_path):
    """decode(normalize=True) needs normalizer.json beside the tokenizer (PITFALLS #9)."""
    import shutil
    from importlib import resources

    from transformers import WhisperProcessor

    base = tmp_path / "base-with-normalizer"
    shutil.copytree(tiny_whisper, base)
    spelling = resources.files("vocabtune.assets").joinpath("english_normalizer.json").read_text()
    (base / "normalizer.json").write_text(spelling)
    adapter = make_adapter(base, tmp_path / "run" / "best")
    out = merge_adapter(MergeConfig(adapter=adapter, out=tmp_path / "merged"))
    assert json.loads((out / "normalizer.json").read_text()) == json.loads(spelling)
    tok = WhisperProcessor.from_pretrained(str(out)).tokenizer
    ids = tok("The colour is Grey", add_special_tokens=False).input_ids
    assert tok.decode(ids, normalize=True) == "the color is gray"


def test_an_adapter_whose_base_moved_says_where_it_looked(adapter, tmp_path, capsys):
    moved = tmp_path / "copied-run"
    shutil.copytree(adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": "/gone/whisper"}))
    assert finetune.main(["merge", "--adapter", str(moved), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "the adapter's base model /gone/whisper is not there" in err
    assert "base_model_name_or_path" in err and f"{moved}/adapter_config.json" in err
    assert not (tmp_path / "out").exists()


def test_the_merged_folder_has_the_mode_mkdir_would_give(merged):
    from vocabtune.fsutil import NEW_DIR_MODE

    assert merged.stat().st_mode & 0o777 == NEW_DIR_MODE


@pytest.mark.parametrize("text, what", [("{\"r\": 4,", "invalid JSON"), ("[]", "holds a JSON list")])
def test_a_damaged_adapter_config_is_one_line_naming_it(adapter, tmp_path, capsys, text, what):
    """Hand-edited or half-copied: a JSONDecodeError or AttributeError traceback before."""
    broken = tmp_path / "copied-run"
    shutil.copytree(adapter, broken)
    (broken / "adapter_config.json").write_text(text)
    assert finetune.main(["merge", "--adapter", str(broken), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {broken}/adapter_config.json:1: {what}")
    assert " — " in err[0] and not (tmp_path / "out").exists()


def _wider_whisper(tiny_whisper: Path, out: Path) -> Path:
    """Another Whisper size (d_model 48, not 32) with the tiny model's processor: what an
    adapter pointed at whisper-small after training on whisper-base meets."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    shutil.copytree(tiny_whisper, out)
    config = WhisperConfig.from_pretrained(str(tiny_whisper))
    config.d_model = 48
    WhisperForConditionalGeneration(config).save_pretrained(str(out))
    return out


def test_an_adapter_pointed_at_another_base_size_says_so(adapter, tiny_whisper, tmp_path, capsys):
    other = _wider_whisper(tiny_whisper, tmp_path / "whisper-wider")
    moved = tmp_path / "copied-run"
    shutil.copytree(adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(other)}))
    assert finetune.main(["merge", "--adapter", str(moved), "--out", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().err
    err = [line for line in out.splitlines() if line.startswith("error:")]   # not the loading bar
    assert "Traceback" not in out and len(err) == 1
    assert err[0].startswith(f"error: {moved}/adapter_config.json: the adapter's weights "
                                               f"do not fit {other}")
    assert "base_model_name_or_path" in err[0] and not (tmp_path / "out").exists()
