"""What a GPU user gets, checked without a GPU: the device and dtype choices are made from
the machine's capabilities (given here as a T4, an A100, an MPS Mac), and the code paths a
GPU takes run here on the CPU in the same dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch


@pytest.fixture
def cuda_gpu(monkeypatch):
    """Pretend torch sees one CUDA GPU of the compute capability passed to the returned
    function. ``is_bf16_supported`` says True whatever the GPU, as torch's does by default
    on a T4 or V100 (bf16 emulated there)."""
    def pretend(capability: tuple[int, int]) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    return pretend


@pytest.mark.parametrize("capability, flags", [((7, 5), {"fp16": True}),    # T4
                                               ((7, 0), {"fp16": True}),    # V100
                                               ((8, 0), {"bf16": True}),    # A100
                                               ((8, 9), {"bf16": True}),    # L4, RTX 40xx
                                               ((9, 0), {"bf16": True})])   # H100
def test_training_autocasts_in_the_gpus_native_half_type(capability, flags, cuda_gpu):
    from vocabtune.training import precision

    cuda_gpu(capability)
    assert precision("auto") == flags and precision("cuda") == flags
    assert precision("cpu") == {"use_cpu": True}


def test_inference_uses_float16_before_ampere_and_bfloat16_from_it(cuda_gpu):
    from vocabtune.modelio import inference_dtype

    cuda_gpu((7, 5))
    assert inference_dtype(torch.device("cuda")) is torch.float16
    cuda_gpu((8, 0))
    assert inference_dtype(torch.device("cuda")) is torch.bfloat16
    assert inference_dtype(torch.device("cpu")) is torch.float32
    assert inference_dtype(torch.device("mps")) is torch.float32


def test_without_cuda_the_trainer_gets_no_half_precision():
    from vocabtune.training import trainer_precision

    assert trainer_precision("auto", None) == {}        # CPU-only machine, or a Mac (MPS: float32)
    assert trainer_precision("mps", None) == {}


@pytest.fixture
def half_precision_upload(tiny_whisper, tmp_path):
    """The tiny Whisper saved as a float16 checkpoint, as openai/whisper-large-v3 is
    (config.json says ``"dtype": "float16"``)."""
    import json
    import shutil

    out = tmp_path / "tiny-fp16"
    shutil.copytree(tiny_whisper, out)
    cfg = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**cfg, "dtype": "float16"}))
    gen = json.loads((out / "generation_config.json").read_text())
    (out / "generation_config.json").write_text(json.dumps({**gen, "max_length": 24}))
    return out


def test_a_float16_base_trains_in_float32_with_float32_lora(half_precision_upload, tmp_path):
    """Half-precision master weights are the classic broken fine-tune (fp16 gradients the
    Trainer's scaler cannot unscale); here it failed before the first step."""
    from test_training import config, make_dataset

    from vocabtune.training import prepare

    dataset = make_dataset(tmp_path / "data" / "voice")
    (tmp_path / "vocab").mkdir()
    inputs = prepare(config(dataset, half_precision_upload, tmp_path / "vocab", tmp_path / "run"))
    assert {p.dtype for p in inputs.model.parameters()} == {torch.float32}
    assert all(p.dtype is torch.float32 for p in inputs.model.parameters() if p.requires_grad)


@pytest.mark.parametrize("device, what", [("mps", "torch sees no Apple MPS device"),
                                          ("cuda", "torch sees no CUDA GPU")])
@pytest.mark.parametrize("scope", ["decoder", "all"])
def test_train_on_a_device_this_machine_lacks_is_one_line_before_any_work(
        device, what, scope, tiny_whisper, tmp_path, monkeypatch, capsys, caplog):
    import finetune
    from test_training import make_dataset

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    caplog.set_level("INFO", logger="vocabtune")
    dataset = make_dataset(tmp_path / "data" / "voice")
    (tmp_path / "vocab").mkdir()
    out = tmp_path / "run"
    code = finetune.main(["train", "--dataset", str(dataset), "--base-model", str(tiny_whisper),
                          "--vocab", str(tmp_path / "vocab"), "--output-dir", str(out), "--replay", "none",
                          "--speed-perturb", "none", "--device", device, "--lora-scope", scope, "--max-steps", "1"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and what in errors[0], err
    assert "Traceback" not in err and not out.exists()
    assert "LoRA" not in caplog.text                # refused before the model was loaded


def test_under_torchrun_each_process_encodes_on_its_own_gpu(cuda_gpu, monkeypatch):
    from vocabtune.training import training_device

    cuda_gpu((8, 0))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert training_device("auto", {"LOCAL_RANK": "2"}) == torch.device("cuda", 2)
    assert training_device("cuda", {"LOCAL_RANK": "3"}) == torch.device("cuda", 3)
    assert training_device("auto", {}).type == "cuda"
    assert training_device("cpu", {"LOCAL_RANK": "1"}) == torch.device("cpu")


def test_an_ampere_run_on_the_cpu_trains_under_bf16_merges_to_float32_and_decodes_in_half(
        half_precision_upload, tmp_path, monkeypatch):
    """What a GPU does, in its dtypes, on the CPU (autocast in bfloat16 runs here): train a
    float16 upload with the Trainer flags an A100 gets, merge, and decode in the float16 and
    bfloat16 a GPU loads a model in. The merged weights are float32 whatever the training
    and base precision (merge loads in float32), as the README says."""
    from safetensors import safe_open
    from test_training import config, make_dataset

    from vocabtune import training
    from vocabtune.config import MergeConfig
    from vocabtune.merge import merge_adapter
    from vocabtune.modelio import load_whisper
    from vocabtune.transcribe import decode_batch

    monkeypatch.setattr(training, "precision", lambda device: {"use_cpu": True, "bf16": True})
    torch.set_num_threads(1)
    dataset = make_dataset(tmp_path / "data" / "voice")
    (tmp_path / "vocab").mkdir()
    result = training.train(config(dataset, half_precision_upload, tmp_path / "vocab", tmp_path / "run",
                                   epochs=1))
    assert all(math.isfinite(e.train_loss) and math.isfinite(e.eval_loss) for e in result.epochs)
    merged = merge_adapter(MergeConfig(adapter=result.best_dir, out=tmp_path / "merged"))
    with safe_open(str(merged / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float32}
    clip = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    for dtype in (torch.float16, torch.bfloat16):
        for name in (result.best_dir, merged):
            loaded = load_whisper(str(name), device="cpu", dtype=dtype, language="en")
            assert loaded.dtype is dtype
            [text] = decode_batch(loaded, [clip], language="en", progress=False)
            assert isinstance(text, str)
