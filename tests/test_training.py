"""finetune.py train on the tiny random Whisper: real Trainer steps, checkpoints, best/,
resume after an interruption, bad input, and two processes under torchrun (gloo)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vocabtune.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["I converted the model to GGUF.", "A single vLLM instance can serve many LoRA adapters.",
         "Mixtral 8x7B and Mistral 7B are open models.", "Phi-2 is small.",
         "The quick brown fox jumps over the lazy dog.", "Glue the sheet to the dark blue background."]
TERMS = ["GGUF", "vLLM", "LoRA", "Mixtral 8x7B", "Phi-2"]


@pytest.fixture(autouse=True)
def one_thread():
    """A tiny model gains nothing from threads, and on a busy 2-core machine OpenMP
    spin-waiting makes it 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_model(tiny_whisper, tmp_path_factory) -> Path:
    """The tiny Whisper with a short generation limit: random weights never emit <|endoftext|>,
    so validation would otherwise generate 448 tokens per chunk."""
    out = tmp_path_factory.mktemp("model") / "tiny"
    shutil.copytree(tiny_whisper, out)
    gen = json.loads((out / "generation_config.json").read_text())
    (out / "generation_config.json").write_text(json.dumps({**gen, "max_length": 24}))
    return out


def _recording(seconds: float, seed: int):
    from vocabtune.audio import AudioSegment

    noise = np.random.default_rng(seed).normal(0, 2000, int(16000 * seconds)).astype(np.int16)
    return AudioSegment(data=noise.tobytes(), sample_width=2, frame_rate=16000, channels=1)


def _chunks(source: str, n: int, texts=TEXTS):
    from vocabtune.schema import Chunk, Cue

    return [Chunk(source, (Cue(2.5 * i, 2.5 * i + 1.0, texts[i % len(texts)]),
                           Cue(2.5 * i + 1.0, 2.5 * i + 2.0, texts[(i + 1) % len(texts)])))
            for i in range(n)]


def make_dataset(out: Path, n_train: int = 6, n_val: int = 2, texts=TEXTS) -> Path:
    """A dataset exactly as prepare_data.py build writes it (WAV bytes, cues column)."""
    from vocabtune.dataset import make_dataset_dict, save_dataset

    splits = {"train": _chunks("train.mp3", n_train, texts), "validation": _chunks("validation.mp3", n_val, texts)}
    audio = {"train.mp3": _recording(2.5 * n_train, 0), "validation.mp3": _recording(2.5 * n_val, 1)}
    return save_dataset(make_dataset_dict(splits, audio), out, {"terms": TERMS})


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "voice")


@pytest.fixture(scope="module")
def vocab_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vocab")
    (folder / "terms.txt").write_text("\n".join(TERMS) + "\n")
    return folder


def config(dataset: Path, model: Path, vocab: Path, out: Path, **kw) -> TrainConfig:
    """Without replay or speed copies unless asked (test_replay.py and test_augment.py cover
    them): step counts stay 6 chunks / 3."""
    kw.setdefault("replay", ("none",))
    kw.setdefault("speed_perturb", ())
    return TrainConfig(dataset=dataset, base_model=str(model), vocab=vocab, output_dir=out,
                       device="cpu", **kw)


class Recorder:
    """Records, per optimiser step, the epoch the train examples were drawn for."""

    def __new__(cls, stop_after: int | None = None):
        from transformers import TrainerCallback

        class _Recorder(TrainerCallback):
            def __init__(self):
                self.seen: list[tuple[int, float, int]] = []

            def on_step_end(self, args, state, control, train_dataloader=None, **kw):
                self.seen.append((state.global_step, state.epoch, train_dataloader.dataset.epoch))
                if stop_after is not None and state.global_step >= stop_after:
                    raise KeyboardInterrupt

        return _Recorder()


@pytest.fixture(scope="module")
def full_run(tiny_dataset, tiny_model, vocab_dir, tmp_path_factory):
    """Three epochs of two steps (6 train chunks, batch 3), uninterrupted."""
    from vocabtune.training import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "full"
    recorder = Recorder()
    result = train(config(tiny_dataset, tiny_model, vocab_dir, out, epochs=3), callbacks=[recorder])
    return result, recorder


def test_train_writes_checkpoints_best_adapter_and_metadata(full_run, tiny_model):
    from vocabtune.fsutil import NEW_DIR_MODE

    result, _ = full_run
    out = result.output_dir
    assert result.global_step == 6 and "still all zeros" not in result.summary
    assert (out / "best").stat().st_mode & 0o777 == NEW_DIR_MODE          # not mkdtemp's 0700
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert "checkpoint-6" in checkpoints and len(checkpoints) <= 2     # save_total_limit
    assert result.best_checkpoint in checkpoints                          # never rotated away
    best = out / "best"
    for name in ("adapter_model.safetensors", "adapter_config.json", "preprocessor_config.json",
                 "tokenizer.json", "vocab.json", "merges.txt", "vocabtune_train.json"):
        assert (best / name).is_file(), name
    assert (best / "adapter_model.safetensors").read_bytes() == \
        (out / result.best_checkpoint / "adapter_model.safetensors").read_bytes()
    meta = json.loads((best / "vocabtune_train.json").read_text())
    assert meta["base_model"] == str(tiny_model.resolve())
    assert meta["config"]["lora_r"] == 32
    assert meta["config"]["target_modules"] == list(TrainConfig().target_modules)
    assert meta["best_checkpoint"] == result.best_checkpoint
    assert "term recall" in meta["selection_rule"]
    assert [e["step"] for e in meta["per_epoch"]] == [2, 4, 6]
    for epoch in meta["per_epoch"]:
        assert 0.0 <= epoch["wer"] and 0.0 <= epoch["term_recall"] <= 1.0 and epoch["eval_loss"] > 0
    assert meta["train_seconds"] > 0 and meta["peak_rss_mib"] > 50 and meta["precision"] == "fp32"
    assert json.loads((out / "vocabtune_train.json").read_text())["best_checkpoint"] == result.best_checkpoint
    assert "best: " + result.best_checkpoint in result.summary and str(best) in result.summary
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "vocabtune_train.json, training.png)" in result.summary


def test_best_survives_a_failed_rename_of_its_replacement(full_run, tiny_model, tmp_path, monkeypatch):
    """best/ was deleted before its replacement was renamed into place: a full disk or a
    kill between the two left a finished run without best/."""
    from transformers import WhisperProcessor

    from vocabtune.train_output import write_best

    out = tmp_path / "run"
    shutil.copytree(full_run[0].output_dir, out)
    before = (out / "best" / "adapter_model.safetensors").read_bytes()
    real_replace = os.replace

    def full_disk(src, dst):
        if Path(src).name.startswith(".best-"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        write_best(out, full_run[0].best_checkpoint, WhisperProcessor.from_pretrained(tiny_model), {})
    assert (out / "best" / "adapter_model.safetensors").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_best_is_a_loadable_adapter_that_changed_the_model(full_run, tiny_model):
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    from vocabtune.modelio import load_whisper

    best = full_run[0].output_dir / "best"
    WhisperProcessor.from_pretrained(best)
    WhisperFeatureExtractor.from_pretrained(best)
    loaded = load_whisper(str(best), device="cpu", language="en")
    assert loaded.is_adapter and Path(loaded.base_model) == tiny_model.resolve()
    features = torch.randn(1, 80, 3000)
    decoder = torch.tensor([[loaded.model.config.decoder_start_token_id]])
    with torch.no_grad():
        tuned = loaded.model(input_features=features, decoder_input_ids=decoder).logits
        with loaded.model.disable_adapter():
            base = loaded.model(input_features=features, decoder_input_ids=decoder).logits
    assert not torch.allclose(tuned, base)


def test_targets_follow_the_epoch_the_trainer_is_in(full_run):
    _, recorder = full_run
    assert [s for s, _, _ in recorder.seen] == [1, 2, 3, 4, 5, 6]
    for _, epoch, drawn_for in recorder.seen:
        assert drawn_for == math.ceil(epoch) - 1      # steps of epoch k end at k - 1 < epoch <= k


def test_resume_after_interrupt_ends_where_an_uninterrupted_run_does(
        full_run, tiny_dataset, tiny_model, vocab_dir, tmp_path):
    from safetensors.torch import load_file

    from vocabtune.training import train

    out = tmp_path / "run"
    cfg = config(tiny_dataset, tiny_model, vocab_dir, out, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Recorder(stop_after=3)])      # killed in epoch 2
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert not (out / "best").exists()

    recorder = Recorder()
    result = train(replace(cfg, resume=True), callbacks=[recorder])
    assert [s for s, _, _ in recorder.seen] == [3, 4, 5, 6]           # continued, not restarted
    assert result.global_step == full_run[0].global_step == 6
    assert [e.step for e in result.epochs] == [2, 4, 6]               # epoch 1 kept from before
    assert (out / "checkpoint-6").is_dir() and (out / "best" / "adapter_model.safetensors").is_file()
    resumed = load_file(out / "checkpoint-6" / "adapter_model.safetensors")
    straight = load_file(full_run[0].output_dir / "checkpoint-6" / "adapter_model.safetensors")
    for name, tensor in straight.items():                             # same data, order, RNG
        torch.testing.assert_close(resumed[name], tensor, rtol=1e-4, atol=1e-5)


def test_examples_draw_exact_shares_per_epoch_with_the_previous_chunk_as_prompt(
        tiny_dataset, tiny_model, vocab_dir, tmp_path):
    from vocabtune.dataset import load_dataset_dir
    from vocabtune.targets import IGNORE_INDEX
    from vocabtune.training import load_model, make_examples

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path, timestamp_share=0.5, prompt_share=0.5)
    _, processor, multilingual = load_model(str(tiny_model), "en")
    train_ex, val_ex = make_examples(cfg, load_dataset_dir(tiny_dataset), processor, multilingual)
    tok = processor.tokenizer
    no_ts = tok.convert_tokens_to_ids("<|notimestamps|>")

    def shapes():
        items = [train_ex[i] for i in range(len(train_ex))]
        return ([no_ts not in it["labels"] for it in items], [IGNORE_INDEX in it["labels"] for it in items], items)

    timestamped, prompted, items = shapes()
    assert sum(timestamped) == 3
    assert set(np.flatnonzero(prompted)) <= {1, 2, 3, 4, 5}          # chunk 0 has no previous
    for i in np.flatnonzero(prompted):
        text = tok.decode(items[i]["decoder_input_ids"])
        assert text.startswith("<|startofprev|> " + train_ex.rows[i - 1].text)
    assert items[0]["input_features"].shape == (80, 3000)
    assert shapes()[:2] == (timestamped, prompted)                       # same epoch, same draw
    draws = set()
    for epoch in range(1, 6):
        train_ex.set_epoch(epoch)
        draws.add(tuple(shapes()[0]))
    assert len(draws) > 1
    assert all(no_ts in val_ex[i]["labels"] for i in range(len(val_ex)))  # validation: plain


def test_loss_is_a_token_mean_over_the_whole_accumulated_step():
    from vocabtune.train_hooks import token_mean_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[1, 2, 3, -100, -100], [4, 5, 6, 7, 8]])
    whole = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1))
    # two micro-batches of one example each, normalised by the step's 8 label tokens
    parts = sum(token_mean_loss({"logits": logits[i:i + 1]}, labels[i:i + 1], num_items_in_batch=8)
                for i in range(2))
    torch.testing.assert_close(parts, whole)
    torch.testing.assert_close(token_mean_loss({"logits": logits}, labels), whole)


def test_collator_pads_decoder_inputs_with_eot_and_labels_with_ignore():
    from vocabtune.collator import WhisperCollator

    batch = WhisperCollator(pad_token_id=7)([
        {"input_features": np.zeros((80, 3000), np.float32), "decoder_input_ids": (1, 2, 3), "labels": (2, 3, 9)},
        {"input_features": np.ones((80, 3000), np.float32), "decoder_input_ids": (1, 2), "labels": (2, 9)}])
    assert batch["input_features"].shape == (2, 80, 3000)
    assert batch["decoder_input_ids"].tolist() == [[1, 2, 3], [1, 2, 7]]
    assert batch["labels"].tolist() == [[2, 3, 9], [2, 9, -100]]


def test_weighted_loss_scales_each_token_and_keeps_the_token_count_divisor():
    from vocabtune.train_hooks import token_mean_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[1, 2, 3, -100, -100], [4, 5, 6, 7, 8]])
    per = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1),
                                            ignore_index=-100, reduction="none").reshape(2, 5)
    weights = torch.tensor([[1.0, 0.2, 0.2, 0.0, 0.0], [0.2, 1.0, 1.0, 0.0, 0.2]])
    expected = (per * weights).sum() / 8
    torch.testing.assert_close(token_mean_loss({"logits": logits}, labels, weights=weights), expected)
    ones = torch.ones(2, 5)
    torch.testing.assert_close(token_mean_loss({"logits": logits}, labels, weights=ones),
                               token_mean_loss({"logits": logits}, labels))
    # the trainer's shape: logits at the label positions only
    at_labels = logits[labels != -100]
    torch.testing.assert_close(token_mean_loss({"logits": at_labels}, labels, weights=weights), expected)


def test_collator_pads_label_weights_with_zero():
    from vocabtune.collator import WhisperCollator

    batch = WhisperCollator(pad_token_id=7)([
        {"input_features": np.zeros((80, 3000), np.float32), "decoder_input_ids": (1, 2, 3),
         "labels": (2, 3, 9), "label_weights": (1.0, 0.2, 0.2)},
        {"input_features": np.ones((80, 3000), np.float32), "decoder_input_ids": (1, 2),
         "labels": (2, 9), "label_weights": (1.0, 1.0)}])
    assert batch["label_weights"].dtype == torch.float32
    torch.testing.assert_close(batch["label_weights"], torch.tensor([[1.0, 0.2, 0.2], [1.0, 1.0, 0.0]]))


def test_train_examples_weight_the_words_around_terms_and_validation_is_unweighted(
        tiny_dataset, tiny_model, vocab_dir, tmp_path):
    from vocabtune.dataset import load_dataset_dir
    from vocabtune.targets import IGNORE_INDEX
    from vocabtune.training import load_model, make_examples

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path, timestamp_share=0.5, prompt_share=0.5,
                 context_weight=0.25)
    _, processor, multilingual = load_model(str(tiny_model), "en")
    train_ex, val_ex = make_examples(cfg, load_dataset_dir(tiny_dataset), processor, multilingual,
                                     terms=TERMS)
    tok = processor.tokenizer
    for i in range(len(train_ex)):
        item = train_ex[i]
        labels, weights = item["labels"], item["label_weights"]
        assert len(weights) == len(labels)
        assert all(w == 0.0 for lab, w in zip(labels, weights) if lab == IGNORE_INDEX)
        on_terms = tok.decode([lab for lab, w in zip(labels, weights) if w == 1.0 and lab >= 0])
        has_term = any(t in train_ex.rows[i].text for t in TERMS)
        if has_term:        # exactly the terms' tokens carry full weight
            assert set(on_terms.split()) <= set(" ".join(TERMS).split())
            assert any(t in on_terms for t in TERMS) and 0.25 in weights
        else:               # a chunk without terms (like replay) trains on every word
            assert set(weights) <= {0.0, 1.0}
    assert all("label_weights" not in val_ex[i] for i in range(len(val_ex)))
    plain = replace(cfg, context_weight=1.0)
    train_plain, _ = make_examples(plain, load_dataset_dir(tiny_dataset), processor, multilingual,
                                   terms=TERMS)
    assert "label_weights" not in train_plain[0]


# --- bad input: one error line, non-zero exit, nothing written ----------------------------

def _no_validation(tmp: Path) -> Path:
    from datasets import load_from_disk

    folder = tmp / "train-only"
    DatasetDictOnlyTrain = load_from_disk(str(make_dataset(tmp / "src")))
    DatasetDictOnlyTrain.pop("validation")
    DatasetDictOnlyTrain.save_to_disk(str(folder))
    return folder


def _empty(tmp: Path) -> Path:
    return make_dataset(tmp / "empty", n_train=0, n_val=0)


def _not_whisper(tmp: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=1, n_embd=8, vocab_size=16)).save_pretrained(tmp / "gpt2")
    return tmp / "gpt2"


def _too_long(tmp: Path) -> Path:
    return make_dataset(tmp / "long", texts=[" ".join(["fox"] * 300)])


BAD_INPUTS = {
    "missing dataset": (lambda tmp: tmp / "nope", None, "dataset folder not found"),
    "no validation split": (_no_validation, None, "no 'validation' split"),
    "empty dataset": (_empty, None, "is empty"),
    "not whisper": (None, _not_whisper, "not a Whisper model"),
    "target over 448 tokens": (_too_long, None, "train.mp3: the chunk at 0:00.00"),
}


@pytest.mark.parametrize("flag, value, expected", [
    ("--context-weight", "1.5", "--context-weight must be in [0, 1]"),
    ("--context-weight", "-0.1", "--context-weight must be in [0, 1]"),
    ("--timestamp-share", "2", "--timestamp-share must be in [0, 1]"),
    ("--learning-rate", "0", "--learning-rate must be above 0"),
    ("--learning-rate", "inf", "--learning-rate must be above 0 and finite"),
    ("--max-steps", "0", "--max-steps must be at least 1"),
    ("--lora-alpha", "0", "--lora-alpha must be above 0"),
    ("--seed", "-5", "--seed must be between 0 and 4294967295"),
    ("--language", "xx", "unknown language 'xx'"),
    ("--replay", "DATASET", "is the training dataset itself"),
    ("--output-dir", "A FILE", "--output-dir is a file")])
def test_bad_setting_is_one_error_line_and_writes_nothing(flag, value, expected, tiny_dataset,
                                                          tiny_model, vocab_dir, tmp_path, capsys):
    import finetune

    out = tmp_path / "run"
    value = {"DATASET": str(tiny_dataset), "A FILE": str(tmp_path / "a-file")}.get(value, value)
    if value.endswith("a-file"):
        out = Path(value)
        out.write_text("mine")
    code = finetune.main(["train", "--dataset", str(tiny_dataset), "--base-model", str(tiny_model),
                          "--vocab", str(vocab_dir), "--output-dir", str(out), flag, value])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and expected in errors[0], err
    assert "Traceback" not in err and (not out.exists() or out.read_text() == "mine")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line_and_writes_nothing(case, tiny_dataset, tiny_model, vocab_dir,
                                                        tmp_path, capsys):
    import finetune

    make_data, make_model, expected = BAD_INPUTS[case]
    dataset = make_data(tmp_path) if make_data else tiny_dataset
    model = make_model(tmp_path) if make_model else tiny_model
    out = tmp_path / "run"
    capsys.readouterr()
    code = finetune.main(["train", "--dataset", str(dataset), "--base-model", str(model),
                          "--vocab", str(vocab_dir), "--output-dir", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1
    assert len(errors) == 1 and expected in errors[0], err
    assert "Traceback" not in err
    assert not out.exists()


def test_resume_without_checkpoint_and_rerun_into_a_used_folder_are_refused(
        full_run, tiny_dataset, tiny_model, vocab_dir, tmp_path, capsys):
    import finetune

    args = ["train", "--dataset", str(tiny_dataset), "--base-model", str(tiny_model),
            "--vocab", str(vocab_dir), "--device", "cpu", "--output-dir"]
    assert finetune.main(args + [str(tmp_path / "fresh"), "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "fresh").exists()
    assert finetune.main(args + [str(full_run[0].output_dir)]) == 1
    assert "--resume" in capsys.readouterr().err
    best = full_run[0].output_dir / "best" / "adapter_model.safetensors"
    before = best.read_bytes()
    same = ["--epochs", "3", "--replay", "none", "--speed-perturb", "none"]     # full_run's recipe
    assert finetune.main(args + [str(full_run[0].output_dir), "--resume"] + same) == 1
    assert "this run has finished (step 6 of 6): nothing to resume" in capsys.readouterr().err
    assert best.read_bytes() == before


@pytest.fixture(scope="module")
def interrupted_run(tiny_dataset, tiny_model, vocab_dir, tmp_path_factory) -> Path:
    """A run stopped in epoch 2 of 3: checkpoint-2 to resume from."""
    from vocabtune.training import train

    out = tmp_path_factory.mktemp("runs") / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(config(tiny_dataset, tiny_model, vocab_dir, out, epochs=3), callbacks=[Recorder(stop_after=3)])
    return out


def _cut_in_half(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


@pytest.mark.parametrize("name, damage, what", [
    ("trainer_state.json", lambda f: f.write_text('{"global_step": '), ":1: invalid JSON"),
    ("adapter_model.safetensors", _cut_in_half, ": damaged weights file"),
    ("optimizer.pt", _cut_in_half, ": incomplete file"),
    ("rng_state.pth", lambda f: f.write_bytes(b""), ": empty file")])
def test_resume_from_a_damaged_checkpoint_names_the_file(
        interrupted_run, tiny_dataset, tiny_model, vocab_dir, tmp_path, capsys, name, damage, what):
    """A disk that filled up or a copy cut short: the Trainer's traceback before (JSONDecodeError,
    SafetensorError, "PytorchStreamReader failed reading zip archive", OSError)."""
    import finetune

    out = tmp_path / "run"
    shutil.copytree(interrupted_run, out)
    damage(out / "checkpoint-2" / name)
    before = sorted(p.name for p in out.rglob("*"))
    args = ["train", "--dataset", str(tiny_dataset), "--base-model", str(tiny_model), "--vocab", str(vocab_dir),
            "--device", "cpu", "--output-dir", str(out), "--resume", "--epochs", "3", "--replay", "none",
            "--speed-perturb", "none"]
    assert finetune.main(args) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(lines) == 1
    assert lines[0].startswith(f"error: {out / 'checkpoint-2' / name}{what}")
    assert f"delete {out / 'checkpoint-2'} and --resume again" in lines[0]
    assert sorted(p.name for p in out.rglob("*")) == before


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_run_killed_while_saving_its_first_checkpoint_says_to_start_afresh(
        resume, tiny_dataset, tiny_model, vocab_dir, tmp_path, capsys):
    """The two commands sent the person back and forth: --resume said "run without --resume",
    and without it "continue it with --resume"."""
    import finetune

    out = tmp_path / "run"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "adapter_model.safetensors").write_bytes(b"half")   # no trainer_state
    args = ["train", "--dataset", str(tiny_dataset), "--base-model", str(tiny_model), "--vocab",
            str(vocab_dir), "--device", "cpu", "--output-dir", str(out)]
    assert finetune.main(args + resume) == 1
    err = capsys.readouterr().err
    assert "checkpoint-2 was not completely written" in err and f"delete {out} and train again" in err
    assert "Traceback" not in err


def test_resume_with_other_settings_is_refused_naming_them(full_run, tiny_dataset, tiny_model,
                                                           vocab_dir, capsys):
    """The recipe is kept beside the checkpoints; --resume must use the same one."""
    import finetune

    out = full_run[0].output_dir
    recipe = json.loads((out / "vocabtune_recipe.json").read_text())
    assert recipe["epochs"] == 3 and recipe["replay"] == ["none"] and "device" not in recipe
    before = sorted(p.name for p in out.rglob("*"))
    args = ["train", "--dataset", str(tiny_dataset), "--base-model", str(tiny_model), "--vocab",
            str(vocab_dir), "--device", "cpu", "--output-dir", str(out), "--resume"]
    assert finetune.main(args + ["--epochs", "5", "--replay", "builtin"]) == 1
    err = capsys.readouterr().err
    assert "--resume with different settings" in err and "Traceback" not in err
    assert "epochs: 3 at the start, 5 now" in err and "replay: none at the start, builtin now" in err
    assert "lora_r" not in err                                     # only what differs is named
    assert sorted(p.name for p in out.rglob("*")) == before        # nothing written


def _resume_error(args: list[str], capsys) -> str:
    """The one error line of a refused ``finetune.py train --resume``."""
    import finetune

    assert finetune.main(args) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_resume_refuses_an_edited_vocabulary_a_rebuilt_dataset_or_another_base(
        tiny_model, tmp_path, capsys):
    """Their paths stay the same, so the recipe's settings alone let --resume go on quietly
    with other terms, rows or weights than the run's first steps saw."""
    from safetensors.torch import load_file, save_file

    from vocabtune.training import train

    data, vocab, model = tmp_path / "voice", tmp_path / "vocab", tmp_path / "tiny"
    make_dataset(data)
    vocab.mkdir()
    (vocab / "terms.txt").write_text("\n".join(TERMS) + "\n")
    shutil.copytree(tiny_model, model)
    cfg = config(data, model, vocab, tmp_path / "run", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Recorder(stop_after=3)])
    args = ["train", "--dataset", str(data), "--base-model", str(model), "--vocab", str(vocab),
            "--device", "cpu", "--output-dir", str(cfg.output_dir), "--epochs", "3",
            "--replay", "none", "--speed-perturb", "none", "--resume"]

    (vocab / "terms.txt").write_text("\n".join(TERMS[:-1] + ["QLoRA"]) + "\n")
    error = _resume_error(args, capsys)
    assert f"the vocabulary {vocab} changed (added: QLoRA; removed: Phi-2)" in error
    assert "dataset" not in error and "start afresh" in error
    (vocab / "terms.txt").write_text("\n".join(TERMS) + "\n")

    make_dataset(data, texts=TEXTS[::-1])
    assert f"the dataset {data} was rebuilt" in _resume_error(args, capsys)
    make_dataset(data)                          # the same rows again: the same dataset

    weights = load_file(model / "model.safetensors")
    name = next(iter(weights))
    save_file({**weights, name: weights[name] + 1e-3}, model / "model.safetensors",
              metadata={"format": "pt"})
    assert f"the base model {model.resolve()} has other files" in _resume_error(args, capsys)
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})

    result = train(replace(cfg, resume=True))
    assert result.global_step == 6


def test_resume_refuses_a_rebuilt_replay_dataset(tiny_dataset, tiny_model, tmp_path):
    from vocabtune.errors import VocabtuneError
    from vocabtune.recipe import check_resume_inputs, write_recipe

    general = make_dataset(tmp_path / "general", n_train=2, n_val=1)
    cfg = config(tiny_dataset, tiny_model, tmp_path / "vocab", tmp_path / "run",
                 replay=("builtin", str(general)))
    write_recipe(cfg, TERMS)
    check_resume_inputs(cfg, TERMS)
    make_dataset(general, n_train=2, n_val=1, texts=TEXTS[::-1])
    with pytest.raises(VocabtuneError, match=f"started, the replay dataset {general} was rebuilt —"):
        check_resume_inputs(cfg, TERMS)


def test_resuming_a_run_recorded_before_context_weight_existed(tmp_path):
    """Runs recorded before --context-weight trained every word alike (weight 1)."""
    from vocabtune.errors import VocabtuneError
    from vocabtune.recipe import RECIPE_FILE, check_resume_recipe, write_recipe

    cfg = TrainConfig(dataset=tmp_path / "data", vocab=tmp_path / "vocab", output_dir=tmp_path / "run",
                      context_weight=1.0)
    write_recipe(cfg, TERMS)
    path = cfg.output_dir / RECIPE_FILE
    recipe = json.loads(path.read_text())
    del recipe["context_weight"]
    path.write_text(json.dumps(recipe))
    check_resume_recipe(cfg)                                     # the same run: accepted
    with pytest.raises(VocabtuneError, match="context_weight: 1 at the start, 0.2 now"):
        check_resume_recipe(replace(cfg, context_weight=0.2))


@pytest.mark.parametrize("text, what", [("[]", "holds a JSON list"), ('{"epochs": ', "invalid JSON")])
def test_a_damaged_recipe_is_named_with_its_line(tmp_path, text, what):
    """A list in it was a TypeError traceback."""
    from vocabtune.errors import VocabtuneError
    from vocabtune.recipe import RECIPE_FILE, check_resume_recipe

    cfg = TrainConfig(dataset=tmp_path / "data", vocab=tmp_path / "vocab", output_dir=tmp_path / "run")
    cfg.output_dir.mkdir()
    (cfg.output_dir / RECIPE_FILE).write_text(text)
    with pytest.raises(VocabtuneError, match=what) as err:
        check_resume_recipe(cfg)
    assert (err.value.file, err.value.line) == (str(cfg.output_dir / RECIPE_FILE), 1)
    assert "--output-dir" in err.value.hint


def test_resume_under_another_number_of_processes_is_refused(tmp_path, monkeypatch):
    """The effective batch counts the processes: resumed under another torchrun
    --nproc_per_node, the steps left would cover other examples under the old LR schedule.
    Runs recorded before the count was are resumed as asked."""
    from vocabtune.errors import VocabtuneError
    from vocabtune.recipe import RECIPE_FILE, check_resume_recipe, write_recipe

    cfg = TrainConfig(dataset=tmp_path / "data", vocab=tmp_path / "vocab", output_dir=tmp_path / "run")
    monkeypatch.setenv("WORLD_SIZE", "2")
    write_recipe(cfg, TERMS)
    check_resume_recipe(cfg)
    monkeypatch.delenv("WORLD_SIZE")
    with pytest.raises(VocabtuneError, match=r"\(processes: 2 at the start, 1 now\)"):
        check_resume_recipe(cfg)
    path = cfg.output_dir / RECIPE_FILE
    path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "processes"}))
    check_resume_recipe(cfg)


# --- several processes ---------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_under_torchrun(tiny_dataset, tiny_model, vocab_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "finetune.py"), "train", "--dataset", str(tiny_dataset),
           "--base-model", str(tiny_model), "--vocab", str(vocab_dir), "--output-dir", str(out),
           "--max-steps", "2", "--device", "cpu", "--replay", "none",
           "--speed-perturb", "none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "best" / "vocabtune_train.json").read_text())
    assert meta["world_size"] == 2 and meta["global_step"] == 2
    # 6 chunks over 2 processes x batch 3: one step per epoch, so 2 epochs were validated
    assert [e["step"] for e in meta["per_epoch"]] == [1, 2]
    assert proc.stdout.count("best: checkpoint-") == 1        # only the main process reports


def test_decoder_scope_runs_the_frozen_encoder_once_with_the_same_loss(tiny_dataset, tiny_model, vocab_dir,
                                                                         tmp_path):
    """The default scope puts LoRA in the decoder only; the cached encoder states must give
    exactly the loss of a full forward pass on the audio."""
    from vocabtune.collator import WhisperCollator
    from vocabtune.encoder_cache import encoder_is_frozen
    from vocabtune.training import prepare

    inputs = prepare(config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run"))
    model = inputs.model
    assert encoder_is_frozen(model)
    assert not [n for n, _ in model.named_modules() if "lora_A" in n and ".encoder." in n]
    example = inputs.train[0]
    assert "encoder_hidden" in example and "input_features" not in example
    cached = WhisperCollator(inputs.processor.tokenizer.pad_token_id)([example])
    inputs.train.encoder_states = None                      # now the same row from audio
    full = WhisperCollator(inputs.processor.tokenizer.pad_token_id)([inputs.train[0]])
    model.eval()
    with torch.no_grad():
        a = model(encoder_outputs=cached["encoder_outputs"], decoder_input_ids=cached["decoder_input_ids"],
                  labels=cached["labels"]).loss
        b = model(input_features=full["input_features"], decoder_input_ids=full["decoder_input_ids"],
                  labels=full["labels"]).loss
    assert torch.allclose(a, b, atol=1e-5)


def test_encoder_outputs_past_the_memory_budget_train_the_same_from_an_unnamed_file(
        tiny_dataset, tiny_model, vocab_dir, tmp_path, monkeypatch):
    """Long recordings: the frozen encoder's outputs go to a temporary file beside the run
    instead of memory. Nothing may change but where they live, and no file may be left."""
    from safetensors.torch import load_file

    from vocabtune import encoder_cache
    from vocabtune.training import prepare, train

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "in-memory", max_steps=2)
    in_memory = prepare(cfg)
    assert isinstance(in_memory.train.encoder_states, list)
    monkeypatch.setattr(encoder_cache, "STATES_MAX_BYTES", 0)
    on_disk = prepare(replace(cfg, output_dir=tmp_path / "on-disk"))
    for split in ("train", "validation"):
        states = getattr(on_disk, split).encoder_states
        assert isinstance(states, encoder_cache.StatesOnDisk)
        assert len(states) == len(getattr(in_memory, split).encoder_states) > 0
        for a, b in zip(states, getattr(in_memory, split).encoder_states):
            assert np.array_equal(a, b)
    assert not [p for p in tmp_path.rglob("*") if "encoder" in p.name]    # unnamed
    first = train(cfg)
    monkeypatch.setattr(encoder_cache, "STATES_MAX_BYTES", 0)
    second = train(replace(cfg, output_dir=tmp_path / "on-disk"))
    a = load_file(first.best_dir / "adapter_model.safetensors")
    b = load_file(second.best_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)
    assert not [p for p in tmp_path.rglob("*") if "encoder" in p.name]


def test_states_on_disk_read_back_what_was_written_and_refuse_another_shape(tmp_path, monkeypatch):
    import tempfile

    from vocabtune.encoder_cache import StatesOnDisk, states_fit_in_memory, STATES_MAX_BYTES

    rows = [np.random.default_rng(i).standard_normal((5, 3)).astype(np.float32) for i in range(4)]
    store = StatesOnDisk(tmp_path, (5, 3))
    for row in rows:
        store.append(row)
    assert len(store) == 4 and list(tmp_path.iterdir()) == []
    assert all(np.array_equal(a, b) for a, b in zip(store, rows))
    assert np.array_equal(store[-1], rows[3]) and len(store[1:3]) == 2
    assert np.array_equal(np.stack(store[1:3]), np.stack(rows[1:3]))
    with pytest.raises(IndexError):
        store[4]
    with pytest.raises(ValueError):
        store.append(np.zeros((3, 5), dtype=np.float32))
    store[0][0, 0] = 99.0                                   # a copy: the file is unchanged
    assert np.array_equal(store[0], rows[0])
    store.close()
    from vocabtune.errors import VocabtuneError

    def refused(**kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refused)   # a folder we cannot write to
    with pytest.raises(VocabtuneError, match="cannot keep the encoder outputs on disk here"):
        StatesOnDisk(tmp_path, (5, 3))
    assert states_fit_in_memory(STATES_MAX_BYTES, 64 * 2**30)
    assert not states_fit_in_memory(STATES_MAX_BYTES + 1, 64 * 2**30)
    assert not states_fit_in_memory(2**28 + 1, 4 * 2**30)  # 1/16 of a 4 GiB machine


def test_all_scope_trains_encoder_adapters_from_audio(tiny_dataset, tiny_model, vocab_dir, tmp_path):
    from vocabtune.training import prepare, train

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run", lora_scope="all", max_steps=2)
    inputs = prepare(cfg)
    assert [n for n, _ in inputs.model.named_modules() if "lora_A" in n and ".encoder." in n]
    assert "input_features" in inputs.train[0]
    result = train(replace(cfg, output_dir=tmp_path / "run2"))
    assert result.global_step == 2 and (result.best_dir / "adapter_model.safetensors").is_file()


def test_cached_cross_attention_kv_gives_the_same_loss_and_gradients(tiny_dataset, tiny_model, vocab_dir,
                                                                      tmp_path):
    """The train chunks' cross-attention K/V are computed once (nothing upstream trains):
    the loss and every LoRA gradient must equal the step that projects the encoder states."""
    from vocabtune.collator import WhisperCollator
    from vocabtune.trainer import with_cross_cache
    from vocabtune.training import prepare

    inputs = prepare(config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run"))
    assert inputs.train.cross_kv is not None and inputs.validation.cross_kv is not None
    collate = WhisperCollator(inputs.processor.tokenizer.pad_token_id)
    examples = [inputs.train[i] for i in range(3)]
    cached = collate(examples)
    assert "cross_kv" in cached
    plain = collate([{k: v for k, v in e.items() if k != "cross_kv"} for e in examples])
    assert "cross_kv" not in plain
    model = inputs.model
    model.eval()                                            # no dropout: comparable steps

    def step(batch):
        out = model(**{k: v for k, v in with_cross_cache(batch).items()
                       if k not in ("labels", "label_weights")})
        loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), batch["labels"].flatten(),
                                                 ignore_index=-100)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        model.zero_grad()
        return loss.detach(), grads

    loss_a, grads_a = step(cached)
    loss_b, grads_b = step(plain)
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_a, grads_b))
    assert any(g.abs().sum() > 0 for g in grads_a)


def test_training_loss_projects_only_labelled_positions_with_the_same_loss_and_gradients(
        tiny_dataset, tiny_model, vocab_dir, tmp_path):
    """The trainer's loss skips the vocabulary projection where there is no label (start
    tokens, prompt, padding): the loss and every LoRA gradient must equal the full one,
    with the batch's label weights (--context-weight) applied in both."""
    from vocabtune.modelio import whisper_of
    from vocabtune.train_hooks import token_mean_loss
    from vocabtune.training import build_trainer, prepare

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run", prompt_share=1.0)
    inputs = prepare(cfg)
    trainer, _ = build_trainer(cfg, inputs, [])
    model = trainer.model
    model.eval()                                            # no dropout: comparable steps
    examples = [inputs.train[i] for i in range(3)]
    labels = trainer.data_collator(examples)["labels"]
    assert (labels == -100).sum() > labels.shape[0]         # more than the start tokens
    shapes = []
    head = whisper_of(model).get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, out: shapes.append(tuple(out.shape)))

    def grads_after(loss):
        loss.backward()
        found = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        model.zero_grad()
        return loss.detach(), found

    loss_a, grads_a = grads_after(trainer.compute_loss(model, trainer.data_collator(examples)))
    batch = trainer.data_collator(examples)
    plain, weights = batch.pop("labels"), batch.pop("label_weights")
    labelled = weights[plain != -100]
    assert labelled.min() == pytest.approx(cfg.context_weight) and labelled.max() == 1.0
    outputs = model(**batch)
    unweighted = token_mean_loss(outputs, plain).detach()
    loss_b, grads_b = grads_after(token_mean_loss(outputs, plain, weights=weights))
    hook.remove()
    vocab = head.weight.shape[0]
    assert shapes == [(int((labels != -100).sum()), vocab), (*labels.shape, vocab)]
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert not torch.allclose(loss_a, unweighted, atol=1e-3)    # the weights did apply
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_a, grads_b))
    assert any(g.abs().sum() > 0 for g in grads_a)


def test_cross_attention_kv_is_not_cached_when_its_projections_train(tiny_dataset, tiny_model, vocab_dir,
                                                                      tmp_path):
    from vocabtune.training import prepare

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run",
                 target_modules=("q_proj", "k_proj", "v_proj"))
    inputs = prepare(cfg)
    assert inputs.train.encoder_states is not None and inputs.train.cross_kv is None
    assert "cross_kv" not in inputs.train[0]


def test_cross_attention_kv_cache_only_on_the_cpu_within_the_memory_share_and_cap():
    from vocabtune.encoder_cache import (CROSS_KV_MAX_BYTES, CROSS_KV_MEMORY_SHARE,
                                         should_cache_cross_kv)

    ram = 4 * 2**30                                        # the share binds
    assert should_cache_cross_kv(int(CROSS_KV_MEMORY_SHARE * ram), "cpu", ram)
    assert not should_cache_cross_kv(int(CROSS_KV_MEMORY_SHARE * ram) + 1, "cpu", ram)
    big = 64 * 2**30                                       # the cap binds
    assert should_cache_cross_kv(CROSS_KV_MAX_BYTES, "cpu", big)
    assert not should_cache_cross_kv(CROSS_KV_MAX_BYTES + 1, "cpu", big)
    assert not should_cache_cross_kv(int(2.8 * 2**30), "cpu", big)   # whisper-small + replay
    assert not should_cache_cross_kv(1, "cuda", ram)
    assert not should_cache_cross_kv(1, "cpu", None)


def test_encoder_batches_stay_small_on_the_cpu_only():
    from vocabtune.encoder_cache import CPU_ENCODE_BATCH, encode_batch_size

    assert encode_batch_size("cpu", 8) == CPU_ENCODE_BATCH < 8
    assert encode_batch_size("cpu", 1) == 1
    assert encode_batch_size("cuda", 8) == 8


def test_validation_generation_is_capped_at_twice_the_longest_reference():
    from vocabtune.config import MAX_TARGET_TOKENS
    from vocabtune.train_hooks import validation_token_cap

    labels = torch.tensor([[5, 6, 7, -100, -100], [5, 6, 7, 8, 9]])
    assert validation_token_cap(labels) == 2 * 5 + 8
    assert validation_token_cap(torch.full((1, 400), 3)) == MAX_TARGET_TOKENS - 8


def test_trainer_validation_generates_no_more_than_the_cap(tiny_dataset, tiny_model, vocab_dir, tmp_path):
    """A random tiny model never says <|endoftext|>: without the cap it would run to 448."""
    from vocabtune.training import build_trainer, prepare
    from vocabtune.train_hooks import validation_token_cap

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run")
    inputs = prepare(cfg)
    trainer, _ = build_trainer(cfg, inputs, [])
    batch = trainer.data_collator([inputs.validation[i] for i in range(len(inputs.validation))])
    _, tokens, labels = trainer.prediction_step(trainer.model, batch, prediction_loss_only=False)
    generated = (tokens != inputs.processor.tokenizer.pad_token_id).sum(-1).max().item()
    assert generated <= validation_token_cap(labels) + 4        # + Whisper's forced prefix


def test_validation_with_cached_cross_attention_gives_the_same_tokens_and_loss(
        tiny_dataset, tiny_model, vocab_dir, tmp_path):
    """Validation reuses the chunks' cross-attention K/V in generate and in the loss pass
    (a fresh cache each: both fill it as they go); nothing may change but the time."""
    from vocabtune.training import build_trainer, prepare

    cfg = config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "run")
    inputs = prepare(cfg)
    trainer, _ = build_trainer(cfg, inputs, [])
    trainer.model.eval()
    examples = [inputs.validation[i] for i in range(len(inputs.validation))]
    assert all("cross_kv" in e for e in examples)
    cached = trainer.prediction_step(trainer.model, trainer.data_collator(examples), False)
    plain_batch = trainer.data_collator([{k: v for k, v in e.items() if k != "cross_kv"} for e in examples])
    assert "cross_kv" not in plain_batch
    plain = trainer.prediction_step(trainer.model, plain_batch, False)
    assert torch.allclose(cached[0], plain[0], atol=1e-6)
    assert torch.equal(cached[1], plain[1]) and torch.equal(cached[2], plain[2])


def test_validation_never_starts_a_second_segment_on_a_timestamp_pair(
        tiny_dataset, tiny_whisper_en, vocab_dir, tmp_path):
    """Validation decodes each chunk once, in no-timestamps mode. This random English-only
    model emits timestamp pairs there, which made Whisper's generate start a second segment
    that could not reuse the chunk's cached cross-attention: a RuntimeError that stopped
    training at its first validation, and again on --resume."""
    from vocabtune.training import build_trainer, prepare

    model = tmp_path / "tiny-en"
    shutil.copytree(tiny_whisper_en, model)
    gen = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**gen, "max_length": 24}))
    cfg = config(tiny_dataset, model, vocab_dir, tmp_path / "run")
    inputs = prepare(cfg)
    trainer, _ = build_trainer(cfg, inputs, [])
    examples = [inputs.validation[i] for i in range(len(inputs.validation))]
    assert all("cross_kv" in e for e in examples)
    _, tokens, _ = trainer.prediction_step(trainer.model, trainer.data_collator(examples), False)
    assert not (tokens > gen["no_timestamps_token_id"]).any()


def test_a_run_too_short_to_change_the_adapter_says_so(tiny_dataset, tiny_model, vocab_dir, tmp_path):
    from vocabtune.train_output import adapter_unchanged
    from vocabtune.training import train

    result = train(config(tiny_dataset, tiny_model, vocab_dir, tmp_path / "one", max_steps=1))
    assert "the adapter is still all zeros: 1 step(s) were too few" in result.summary


def test_adapter_unchanged_looks_at_the_lora_b_matrices():
    from vocabtune.train_output import adapter_unchanged

    model = torch.nn.Module()
    model.lora_B = torch.nn.Parameter(torch.zeros(2, 2))
    assert adapter_unchanged(model)
    with torch.no_grad():
        model.lora_B[0, 1] = 1e-6
    assert not adapter_unchanged(model)
    assert not adapter_unchanged(torch.nn.Linear(2, 2))           # no LoRA at all: nothing to say


def test_an_english_only_model_is_refused_another_language_before_any_work(
        tiny_whisper_en, tiny_dataset, vocab_dir, tmp_path, caplog):
    from vocabtune.errors import VocabtuneError
    from vocabtune.modelio import load_whisper
    from vocabtune.training import train

    cfg = config(tiny_dataset, tiny_whisper_en, vocab_dir, tmp_path / "run", language="de",
                 replay=("builtin",))
    with pytest.raises(VocabtuneError, match="English-only and cannot transcribe 'de'"):
        train(cfg)
    assert "replay" not in caplog.text and not (tmp_path / "run").exists()
    for english in ("en", "English", "EN"):                 # all mean English
        load_whisper(str(tiny_whisper_en), device="cpu", language=english)


def test_a_validation_split_without_any_term_is_named_and_the_best_is_picked_by_wer(
        tiny_model, vocab_dir, tmp_path, caplog):
    """Term recall is n/a at every epoch then: the summary must not claim it picked the best."""
    from vocabtune.training import train

    plain = ["The quick brown fox jumps over the lazy dog.", "Glue the sheet to the dark blue background."]
    dataset = make_dataset(tmp_path / "plain", n_train=3, n_val=1, texts=plain)
    with caplog.at_level("WARNING", logger="vocabtune"):
        result = train(config(dataset, tiny_model, vocab_dir, tmp_path / "run", epochs=1, max_steps=1))
    assert "the validation split holds none of your 5 vocabulary terms" in caplog.text
    assert "best: checkpoint-1 (lowest validation WER" in result.summary
    assert "highest validation term recall" not in result.summary


def test_a_validation_split_with_a_term_gives_no_such_warning(tiny_dataset, vocab_dir, caplog):
    from datasets import load_from_disk

    from vocabtune.training import warn_if_no_term_in_validation

    texts = load_from_disk(str(tiny_dataset))["validation"]["text"]
    assert not warn_if_no_term_in_validation(texts, TERMS)
    assert warn_if_no_term_in_validation(["Nothing of note here."], TERMS)
    assert not warn_if_no_term_in_validation(["Nothing of note here."], [])


def test_resume_with_speed_copies_turned_on_names_the_old_setting_none(tmp_path):
    """--speed-perturb none is recorded as an empty list; it was shown as a blank."""
    from vocabtune.errors import VocabtuneError
    from vocabtune.recipe import check_resume_recipe, write_recipe

    cfg = TrainConfig(dataset=tmp_path / "data", vocab=tmp_path / "vocab", output_dir=tmp_path / "run",
                      speed_perturb=())
    write_recipe(cfg, TERMS)
    with pytest.raises(VocabtuneError, match=r"\(speed_perturb: none at the start, 0.9 1.1 now\)"):
        check_resume_recipe(replace(cfg, speed_perturb=(0.9, 1.1)))


@pytest.mark.parametrize("command", ["train", "evaluate", "merge", "export", "transcribe"])
def test_an_output_place_that_cannot_be_written_is_one_error_line_before_any_work(
        command, full_run, tiny_dataset, tiny_model, vocab_dir, tmp_path, capsys):
    """A path through a file (as a read-only folder or /proc would) was a traceback, and for
    train, merge and evaluate only after the model was loaded and the work done."""
    import wave

    import finetune

    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    out = str(blocker / "out")
    best = str(full_run[0].output_dir / "best")
    audio = tmp_path / "talk.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 1600)
    args = {"train": ["--dataset", str(tiny_dataset), "--base-model", str(tiny_model), "--vocab",
                      str(vocab_dir), "--device", "cpu", "--speed-perturb", "none", "--replay", "none",
                      "--output-dir", out],
            "evaluate": ["--model", best, "--dataset", str(tiny_dataset), "--vocab", str(vocab_dir),
                         "--device", "cpu", "--json", str(blocker / "report.json")],
            "merge": ["--adapter", best, "--out", out],
            "export": ["--model", str(tiny_model), "--out", out],
            "transcribe": ["--model", str(tiny_model), "--device", "cpu", "--out", out, str(audio)]}[command]
    capsys.readouterr()
    assert finetune.main([command] + args) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "a-file is a file" in errors[0], err
    assert "Traceback" not in err and blocker.read_text() == "mine"


def test_a_diverged_checkpoint_is_never_the_best_and_the_summary_says_why():
    """With a learning rate far too high the loss turns NaN and the model writes nothing: an
    empty transcript's WER (100%) beat the first epoch's 528%, so the NaN adapter became best/."""
    from vocabtune.train_hooks import best_evaluation
    from vocabtune.train_output import divergence_note

    nan = float("nan")
    history = [{"loss": 3.5, "step": 2},
               {"eval_wer": 5.28, "eval_term_recall": 0.0, "eval_loss": 7.59, "epoch": 1.0, "step": 2},
               {"eval_wer": 1.0, "eval_term_recall": 0.0, "eval_loss": nan, "epoch": 2.0, "step": 4},
               {"eval_wer": 1.0, "eval_term_recall": 0.0, "eval_loss": nan, "epoch": 3.0, "step": 6}]
    assert best_evaluation(history)["step"] == 2
    note = divergence_note(history, "checkpoint-2", 1e6)
    assert "training diverged: the validation loss is not a number from epoch 2.00 on" in note
    assert "checkpoint-2, from before, is kept as best/" in note and "lower --learning-rate" in note
    assert best_evaluation(history[2:]) is None
    assert "no checkpoint is usable and no best/ was written" in divergence_note(history[2:], None, 1e6)
    assert divergence_note(history[:2], "checkpoint-2", 1e-3) == ""


def test_the_summary_counts_one_step_in_the_singular():
    from vocabtune.train_output import TrainResult, summary_text

    one = summary_text(TrainResult(Path("runs/x"), None, None, global_step=1))
    many = summary_text(TrainResult(Path("runs/x"), None, None, global_step=72))
    assert "trained 1 step in" in one and "trained 72 steps in" in many
