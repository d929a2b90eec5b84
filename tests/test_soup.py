"""bench/soup_adapters.py: the averaged adapter is exactly the mean of the adapters' updates
(BENCHMARKS.md quotes soups as averages, so this must hold)."""

from __future__ import annotations

import pytest
import torch

import soup_adapters  # bench/ is on sys.path (tests/conftest.py)

A = "base_model.model.model.decoder.layers.0.fc1.lora_A.weight"
B = "base_model.model.model.decoder.layers.0.fc1.lora_B.weight"


def adapter(seed: int, r: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {A: torch.randn(r, 16, generator=g), B: torch.randn(24, r, generator=g)}


def test_soup_update_is_the_mean_of_the_updates():
    members = [adapter(s) for s in (1, 2, 3)]
    out = soup_adapters.soup(members)
    assert out[A].shape == (12, 16) and out[B].shape == (24, 12)
    mean = sum(m[B] @ m[A] for m in members) / 3
    torch.testing.assert_close(out[B] @ out[A], mean)
    assert not torch.allclose(members[0][B] @ members[0][A], mean)


def test_soup_refuses_other_weights():
    with pytest.raises(SystemExit, match="not a LoRA"):
        soup_adapters.soup([{"model.decoder.bias": torch.zeros(3)}])


def test_soup_folder_keeps_alpha_over_r(tmp_path):
    import json

    from safetensors.torch import save_file
    members = []
    for seed in (1, 2):
        d = tmp_path / f"run{seed}"
        d.mkdir()
        save_file(adapter(seed), d / soup_adapters.WEIGHTS)
        (d / soup_adapters.CONFIG).write_text(json.dumps(
            {"r": 4, "lora_alpha": 8, "base_model_name_or_path": "base"}))
        (d / "tokenizer.json").write_text("{}")
        members.append(str(d))
    soup_adapters.main(["soup_adapters.py", str(tmp_path / "soup"), *members])
    cfg = json.loads((tmp_path / "soup" / soup_adapters.CONFIG).read_text())
    assert (cfg["r"], cfg["lora_alpha"]) == (8, 16)
    assert (tmp_path / "soup" / "tokenizer.json").exists()
    with pytest.raises(SystemExit, match="exists"):
        soup_adapters.main(["soup_adapters.py", str(tmp_path / "soup"), *members])
