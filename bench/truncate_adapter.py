#!/usr/bin/env python3
"""Keep only the K strongest directions of each LoRA update, to measure whether forgetting
lives in an adapter's weak directions while the terms live in its strong ones (issue 4).

    .venv/bin/python bench/truncate_adapter.py OUT ADAPTER K

Each module's update B·A (rank r) is replaced by its best rank-K approximation (Eckart–Young:
the top K singular values and vectors of B·A), written as a rank-K LoRA adapter with
alpha scaled so that alpha/r, and so the update's scale, stays the same. It works on the
saved files, loads no model, and the result evaluates and merges like any adapter. It is a
benchmark tool, not a vocabtune feature: BENCHMARKS.md says why it was not kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from soup_adapters import CONFIG, WEIGHTS, write_adapter  # bench/ is on sys.path: run as a script


def truncate(state: dict[str, torch.Tensor], k: int) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The rank-k adapter and, per module, the share of the update's energy (squared
    Frobenius norm) it keeps."""
    out, kept = {}, []
    for key in state:
        if ".lora_A." not in key:
            if ".lora_B." not in key:
                raise SystemExit(f"error: {key} is not a LoRA A or B weight; only plain LoRA is truncated")
            continue
        b_key = key.replace(".lora_A.", ".lora_B.")
        update = state[b_key].double() @ state[key].double()
        u, s, vh = torch.linalg.svd(update, full_matrices=False)
        root = s[:k].sqrt()
        out[key] = (root[:, None] * vh[:k]).to(state[key].dtype).contiguous()
        out[b_key] = (u[:, :k] * root[None]).to(state[b_key].dtype).contiguous()
        kept.append(float((s[:k] ** 2).sum() / (s ** 2).sum()))
    return out, kept


def main(argv: list[str]) -> None:
    if len(argv) != 4:
        raise SystemExit(__doc__.split("\n\n")[1])
    out, src, k = Path(argv[1]), Path(argv[2]), int(argv[3])
    cfg = json.loads((src / CONFIG).read_text())
    if not 0 < k < cfg["r"]:
        raise SystemExit(f"error: K must be between 1 and the adapter's rank - 1 ({cfg['r'] - 1})")
    state, kept = truncate(load_file(src / WEIGHTS), k)
    write_adapter(out, src, dict(cfg, r=k, lora_alpha=cfg["lora_alpha"] * k / cfg["r"]), state)
    kept.sort()
    print(f"wrote {out}: rank {k} of {cfg['r']}; energy kept per module: "
          f"median {kept[len(kept) // 2]:.1%}, lowest {kept[0]:.1%}")


if __name__ == "__main__":
    main(sys.argv)
