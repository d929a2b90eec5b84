"""bench/truncate_adapter.py: the truncated adapter is the best rank-k approximation of each
update, at the same scale (BENCHMARKS.md quotes its figures as such)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import truncate_adapter  # bench/ is on sys.path (tests/conftest.py)

A = "base_model.model.model.decoder.layers.0.fc1.lora_A.weight"
B = "base_model.model.model.decoder.layers.0.fc1.lora_B.weight"


def adapter(r: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {A: torch.randn(r, 16, generator=g), B: torch.randn(24, r, generator=g)}


def test_truncation_is_the_best_rank_k_approximation():
    state = adapter()
    out, kept = truncate_adapter.truncate(state, 2)
    assert out[A].shape == (2, 16) and out[B].shape == (24, 2)
    update = (state[B] @ state[A]).double()
    u, s, vh = torch.linalg.svd(update)
    best = (u[:, :2] * s[:2]) @ vh[:2]
    torch.testing.assert_close((out[B] @ out[A]).double(), best, rtol=1e-5, atol=1e-5)
    assert not torch.allclose((out[B] @ out[A]).double(), update, atol=1e-3)
    assert kept[0] == pytest.approx(float((s[:2] ** 2).sum() / (s ** 2).sum()))


def test_a_rank_k_update_survives_truncation_to_k():
    g = torch.Generator().manual_seed(1)
    state = {A: torch.cat([torch.randn(2, 16, generator=g), torch.zeros(4, 16)]),
             B: torch.randn(24, 6, generator=g)}
    out, kept = truncate_adapter.truncate(state, 2)
    torch.testing.assert_close(out[B] @ out[A], state[B] @ state[A], rtol=1e-4, atol=1e-4)
    assert kept[0] == pytest.approx(1.0)


def test_folder_keeps_alpha_over_r_and_refuses_bad_k(tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    save_file(adapter(), src / truncate_adapter.WEIGHTS)
    (src / truncate_adapter.CONFIG).write_text(json.dumps({"r": 6, "lora_alpha": 12}))
    truncate_adapter.main(["t", str(tmp_path / "k3"), str(src), "3"])
    cfg = json.loads((tmp_path / "k3" / truncate_adapter.CONFIG).read_text())
    assert (cfg["r"], cfg["lora_alpha"]) == (3, 6)
    assert load_file(tmp_path / "k3" / truncate_adapter.WEIGHTS)[A].shape == (3, 16)
    with pytest.raises(SystemExit, match="exists"):
        truncate_adapter.main(["t", str(tmp_path / "k3"), str(src), "3"])
    with pytest.raises(SystemExit, match="between 1"):
        truncate_adapter.main(["t", str(tmp_path / "k6"), str(src), "6"])
