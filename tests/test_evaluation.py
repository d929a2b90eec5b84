"""evaluate: real decoding of the tiny Whisper (base + adapter, merged), term recall checked
end to end against known hypotheses, --compare rows and chart, and bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import finetune
from tiny_adapter import make_adapter
from vocabtune import evaluation
from vocabtune.config import EvalConfig, MergeConfig
from vocabtune.merge import merge_adapter
from vocabtune.scoring import score

TERMS = ["vLLM", "LoRA", "Mixtral 8x7B", "Phi-2", "GGUF"]
VALIDATION = ["I serve LoRA adapters with vLLM.",
              "Mixtral 8x7B and Phi-2 are open models.",
              "One more LoRA, converted to GGUF."]
TRAIN = ["The quick brown fox jumps over the lazy dog."]
GENERAL = ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background."]


def _clip(seconds: float, seed: int) -> bytes:
    from vocabtune.audio import AudioSegment, wav_bytes

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.02 * rng.standard_normal(t.size)
    pcm = (wave * 32767).astype(np.int16).tobytes()
    return wav_bytes(AudioSegment(data=pcm, sample_width=2, frame_rate=16000, channels=1))


def build_dataset(out: Path, splits: dict[str, list[str]], terms: list[str] | None = None) -> Path:
    """A dataset folder like prepare_data.py build writes: WAV bytes cast to datasets.Audio."""
    from datasets import Audio, Dataset, DatasetDict, Features, Value

    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")},
                         "text": Value("string"), "start": Value("float64"),
                         "end": Value("float64"), "source": Value("string")})
    parts = {}
    for name, texts in splits.items():
        rows = [{"audio": {"bytes": _clip(1 + i % 3, i), "path": f"{name}_{i}.wav"}, "text": text,
                 "start": float(i), "end": float(i + 1), "source": f"{name}.mp3"}
                for i, text in enumerate(texts)]
        columns = {k: [r[k] for r in rows] for k in features}
        parts[name] = Dataset.from_dict(columns, features=features).cast_column(
            "audio", Audio(sampling_rate=16000))
    DatasetDict(parts).save_to_disk(str(out))
    if terms is not None:
        (out / "vocabtune.json").write_text(json.dumps({"format": 1, "terms": terms}))
    return out


@pytest.fixture(scope="module")
def workspace(tiny_whisper, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    vocab = root / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("\n".join(TERMS) + "\n")
    data = build_dataset(root / "data" / "lingo", {"train": TRAIN, "validation": VALIDATION})
    general = build_dataset(root / "data" / "general", {"train": GENERAL[:1], "validation": GENERAL[1:]})
    return {"root": root, "vocab": vocab, "data": data, "general": general, "base": tiny_whisper}


@pytest.fixture()
def adapter(workspace, tmp_path) -> Path:
    return make_adapter(workspace["base"], tmp_path / "runs" / "lingo" / "best")


@pytest.fixture()
def short_generate(monkeypatch):
    """A random model never emits <|endoftext|>, so it would decode all 448 tokens of every
    clip; a few are enough to compare texts (and keep the test fast)."""
    from vocabtune import transcribe

    monkeypatch.setattr(transcribe, "max_new_tokens_for", lambda *a, **k: 6)


def _run(*args: str) -> int:
    return finetune.main(["evaluate", *[str(a) for a in args]])


def _spy_decode(monkeypatch, fake=None) -> list[dict]:
    """Record every decode_batch call (and its output); ``fake`` replaces the real decode."""
    from vocabtune import transcribe

    calls, real = [], transcribe.decode_batch

    def spy(loaded, arrays, **kwargs):
        hyps = fake(loaded, arrays, **kwargs) if fake else real(loaded, arrays, progress=False, **kwargs)
        calls.append({"adapter": loaded.is_adapter, "source": loaded.source, "n": len(arrays),
                      "prompt": kwargs.get("prompt_ids"), "hyps": hyps})
        return hyps

    monkeypatch.setattr(transcribe, "decode_batch", spy)
    return calls


def test_adapter_vs_base_with_real_decoding(workspace, adapter, short_generate, monkeypatch, capsys):
    calls = _spy_decode(monkeypatch)
    assert _run("--model", adapter, "--dataset", workspace["data"], "--vocab", workspace["vocab"]) == 0
    out = capsys.readouterr().out
    report = json.loads((adapter / "report.json").read_text())
    assert list(report["models"]) == ["base", "finetuned"]
    assert report["models"]["base"]["model"] == str(workspace["base"])
    assert (adapter / "report.md").is_file() and f"wrote {adapter / 'report.json'}" in out
    assert "fine-tuned" in out and "term recall" in out
    for call, key in zip(calls, ["base", "finetuned"]):    # numbers are exactly scoring's
        want = score("x", VALIDATION, call["hyps"], TERMS)
        got = report["models"][key]
        assert got["wer"] == pytest.approx(want.wer)
        assert [(t["term"], t["occurrences"], t["hits"]) for t in got["per_term"]] == \
               [(t.term, t.occurrences, t.hits) for t in want.per_term]
        assert report[key]["term_recall"] == got["term_recall"] == want.term_recall
    assert [c["adapter"] for c in calls] == [False, True]
    assert sum(t["occurrences"] for t in report["models"]["base"]["per_term"]) == 6


def _known_hyps(loaded, arrays, *, language, prompt_ids=None, batch_size=8, progress=True):
    """Base misses everything; the fine-tuned model gets vLLM, both LoRAs and Phi-2
    (but writes "Phi 2" once too: a false alarm); the prompt adds GGUF. The general set
    comes out word-perfect from the base and with one error from the fine-tuned model."""
    if len(arrays) == len(GENERAL):
        return list(GENERAL) if not loaded.is_adapter else [GENERAL[0], "Glue the sheet to the blue background."]
    if not loaded.is_adapter and not prompt_ids:
        return ["I serve Laura adapters with VLM.", "Mixed role eight by seven b and five two.", "One more."]
    hyps = ["I serve LoRA adapters with vLLM.", "Mixtral 8x7 B and Phi-2, Phi-2 open.", "One more LoRA."]
    if prompt_ids:
        hyps[2] = "One more LoRA, converted to GGUF."
    return hyps


def test_term_recall_end_to_end_with_known_hypotheses(workspace, adapter, monkeypatch, capsys):
    calls = _spy_decode(monkeypatch, _known_hyps)
    assert _run("--model", adapter, "--dataset", workspace["data"], "--vocab", workspace["vocab"]) == 0
    models = json.loads((adapter / "report.json").read_text())["models"]
    per_term = {t["term"]: t for t in models["finetuned"]["per_term"]}
    assert {t: (per_term[t]["hits"], per_term[t]["occurrences"]) for t in TERMS} == {
        "vLLM": (1, 1), "LoRA": (2, 2), "Mixtral 8x7B": (0, 1), "Phi-2": (1, 1), "GGUF": (0, 1)}
    assert per_term["Phi-2"]["false_alarms"] == 1
    assert models["finetuned"]["term_recall"] == pytest.approx(4 / 6)
    assert models["finetuned"]["term_precision"] == pytest.approx(4 / 5)
    assert models["base"]["term_recall"] == 0.0
    assert len(calls) == 2 and all(c["prompt"] is None for c in calls)
    table = capsys.readouterr().out
    assert "66.7% (4/6)" in table and "0.0% (0/6)" in table


def test_compare_scores_four_rows_general_wer_and_draws_the_chart(workspace, adapter, monkeypatch, tmp_path,
                                                                  capsys):
    calls = _spy_decode(monkeypatch, _known_hyps)
    loads = []
    real_load = evaluation.load_whisper
    monkeypatch.setattr(evaluation, "load_whisper", lambda name, **kw: loads.append(name) or real_load(name, **kw))
    extra = tmp_path / "out" / "compare.json"
    assert _run("--model", adapter, "--dataset", workspace["data"], "--vocab", workspace["vocab"],
                "--compare", "--general", workspace["general"], "--json", extra) == 0
    report = json.loads(extra.read_text())
    assert report == json.loads((adapter / "report.json").read_text())
    assert list(report["models"]) == ["base", "base_prompt", "finetuned", "finetuned_prompt"]
    assert report["models"]["finetuned_prompt"]["term_recall"] == pytest.approx(5 / 6)
    assert report["prompt"] == {"terms_in_prompt": len(TERMS), "dropped": []}
    from transformers import WhisperTokenizer

    startofprev = WhisperTokenizer.from_pretrained(str(workspace["base"])).convert_tokens_to_ids("<|startofprev|>")
    assert all(c["prompt"][0] == startofprev and len(c["prompt"]) > len(TERMS)
               for c in calls if c["prompt"])
    assert set(report["general"]["models"]) == {"base", "finetuned"}
    assert report["general"]["num_chunks"] == len(GENERAL)
    assert report["general"]["models"]["base"]["wer"] == 0.0
    assert report["general"]["models"]["finetuned"]["wer"] == pytest.approx(1 / 16)
    assert report["general"]["changes"] == {"new": [{"chunk": 1, "ref": "dark", "finetuned": ""}],
                                            "fixed": []}
    change = report["general"]["wer_change"]
    assert change["change"] == pytest.approx(1 / 16) and change["low"] == 0.0 and change["high"] > 1 / 16
    out = capsys.readouterr().out
    assert "dropped “dark”" in out
    assert "general WER change +6.2 points" in out and "this test cannot tell it from no change" in out
    assert "| 2     | “dark”    | —                |" in (adapter / "report.md").read_text()
    assert loads == [str(workspace["base"]), str(adapter)], "each model loaded once"
    assert [(c["adapter"], c["n"], bool(c["prompt"])) for c in calls] == [
        (False, 3, False), (False, 3, True), (False, 2, False),
        (True, 3, False), (True, 3, True), (True, 2, False)]
    png = (adapter / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "![term recall per term](report.png)" in (adapter / "report.md").read_text()


def test_merged_model_finds_its_base_and_transcribes_like_the_adapter(workspace, adapter, short_generate,
                                                                      monkeypatch, tmp_path):
    calls = _spy_decode(monkeypatch)
    merged = merge_adapter(MergeConfig(adapter=adapter, out=tmp_path / "models" / "lingo-merged"))
    evaluation.evaluate(EvalConfig(model=str(adapter), dataset=workspace["data"], vocab=workspace["vocab"]))
    result = evaluation.evaluate(EvalConfig(model=str(merged), dataset=workspace["data"],
                                            vocab=workspace["vocab"]))
    assert result.document["models"]["base"]["model"] == str(workspace["base"])
    assert (merged / "report.json").is_file()
    assert calls[3]["source"] == str(merged)
    assert calls[3]["hyps"] == calls[1]["hyps"], "merged decodes exactly like base + adapter"


def test_base_model_alone_is_one_row_and_vocab_can_come_from_the_dataset(workspace, monkeypatch, tmp_path):
    _spy_decode(monkeypatch, _known_hyps)
    data = build_dataset(tmp_path / "with-terms", {"train": TRAIN, "validation": VALIDATION}, TERMS)
    monkeypatch.chdir(tmp_path)
    result = evaluation.evaluate(EvalConfig(model=str(workspace["base"]), dataset=data,
                                            vocab=tmp_path / "no-vocab-here"))
    assert list(result.reports) == ["base"]
    assert result.document["finetuned"] is None
    assert result.document["vocabulary"]["terms"] == TERMS
    assert sum(s.occurrences for s in result.reports["base"].per_term) == 6


def test_hub_ids_report_under_reports_folder():
    assert evaluation.output_dir("openai/whisper-small") == Path("reports/openai--whisper-small")
    assert evaluation.output_dir("you/whisper my voice") == Path("reports/you--whisper--my--voice")


@pytest.mark.parametrize("case", ["dataset-missing", "no-validation", "model-missing",
                                  "model-not-whisper", "vocab-missing", "json-is-a-folder",
                                  "adapter-truncated", "batch-size-0"])
def test_bad_input_is_one_error_line_and_writes_nothing(case, workspace, adapter, tmp_path,
                                                        monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model, data, vocab = adapter, workspace["data"], workspace["vocab"]
    if case == "dataset-missing":
        data = tmp_path / "data" / "nope"
    elif case == "no-validation":
        data = build_dataset(tmp_path / "train-only", {"train": TRAIN})
    elif case == "model-missing":
        model = tmp_path / "runs" / "typo" / "best"
    elif case == "model-not-whisper":
        model = tmp_path / "bert"
        model.mkdir()
        (model / "config.json").write_text(json.dumps({"model_type": "bert"}))
    elif case == "vocab-missing":
        vocab = tmp_path / "no-vocab"
    extra = {"json-is-a-folder": ["--json", tmp_path], "batch-size-0": ["--batch-size", "0"]}.get(case, [])
    if case == "adapter-truncated":
        model = tmp_path / "cut"
        shutil.copytree(adapter, model)
        weights = model / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    before = sorted(os.listdir(adapter)) if Path(model).exists() else None
    capsys.readouterr()                         # drop the set-up's progress bars
    assert _run("--model", model, "--dataset", data, "--vocab", vocab, *extra) == 1
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if line.strip() and not line.startswith("Loading weights")]   # the base loads first
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert not (tmp_path / "reports").exists()
    if before is not None:
        assert sorted(os.listdir(adapter)) == before
    assert not list(Path(model).glob("report.*")) if Path(model).is_dir() else True


def test_replacing_a_report_of_another_dataset_is_said(tmp_path, caplog):
    import logging

    from vocabtune.evaluation import _note_replaced_report

    report = tmp_path / "report.json"
    with caplog.at_level(logging.WARNING, logger="vocabtune.evaluation"):
        _note_replaced_report(report, "data/a")                      # none yet
        report.write_text(json.dumps({"dataset": "data/a"}))
        _note_replaced_report(report, "data/a")                      # the same dataset again
        assert caplog.text == ""
        _note_replaced_report(report, "data/b")
        report.write_text("{ not json")
        _note_replaced_report(report, "data/b")                      # unreadable: replaced quietly
    assert len(caplog.records) == 1 and "measured on data/a, with this one on data/b" in caplog.text


@pytest.mark.parametrize("offline, what", [
    (True, "this Hub model is not in the local Hugging Face cache, and HF_HUB_OFFLINE is set"),
    (False, "this Hub model is not in the local Hugging Face cache, and the Hub (https://hub.invalid) "
            "cannot be reached to download it (no network?) — connect to the internet")])
def test_a_hub_id_without_network_says_the_hub_is_out_of_reach(workspace, tmp_path, monkeypatch, capsys,
                                                              offline, what):
    """transformers' own words were "cannot load AutoConfig (We couldn't connect to ...)"."""
    import finetune
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hub.invalid")
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:       # what the Hub client raises after its retries, without waiting for them
        from huggingface_hub.errors import LocalEntryNotFoundError
        from transformers import AutoConfig

        def unreachable(name, **kw):
            try:
                raise LocalEntryNotFoundError("An error happened while trying to locate the file")
            except LocalEntryNotFoundError as err:
                raise OSError("We couldn't connect to 'https://hub.invalid' to load the files") from err

        monkeypatch.setattr(AutoConfig, "from_pretrained", unreachable)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))       # an empty cache
    assert finetune.main(["evaluate", "--model", "someone/whisper-voice", "--dataset", str(workspace["data"]),
                          "--vocab", str(workspace["vocab"])]) == 1
    err = capsys.readouterr().err
    assert f"error: someone/whisper-voice: {what}" in err and "Traceback" not in err


def test_a_model_with_no_recorded_base_is_said_to_be_scored_alone(workspace, adapter, caplog):
    """A Whisper fine-tuned elsewhere came out as the row "base" with no word why."""
    from vocabtune.config import EvalConfig
    from vocabtune.evaluation import model_plan

    with caplog.at_level("INFO", logger="vocabtune"):
        plain = model_plan(EvalConfig(model=str(workspace["base"]), dataset=workspace["data"]))
        assert [s.key for s in plain] == ["base"]
        assert "records no base model" in caplog.text and "--base-model NAME" in caplog.text
        caplog.clear()
        assert [s.key for s in model_plan(EvalConfig(model=str(adapter), dataset=workspace["data"]))] == \
            ["base", "finetuned"]
        assert "records no base model" not in caplog.text
