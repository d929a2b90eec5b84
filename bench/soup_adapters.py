#!/usr/bin/env python3
"""Average several LoRA adapters of one base model into one adapter (a "model soup",
Wortsman et al. 2022), to measure whether averaging seeds lessens forgetting (issue 4).

    .venv/bin/python bench/soup_adapters.py OUT ADAPTER [ADAPTER ...]

The average of K adapters, (1/K) * sum_i B_i A_i, is itself a LoRA adapter of rank K*r:
A stacked row-wise, B stacked column-wise and divided by K, with alpha scaled by K so that
alpha/r stays the same. So the soup is exact (no SVD truncation) and loads, evaluates and
merges like any adapter. peft's ``add_weighted_adapter(combination_type="cat")`` builds the
same thing in memory; this works on the saved files so that no model is loaded. OUT gets the
first adapter's processor files and ``vocabtune_train.json``. It is a benchmark tool, not a
vocabtune feature: BENCHMARKS.md says why it was not kept.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"


def soup(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    k = len(states)
    out = {}
    for key in states[0]:
        parts = [s[key] for s in states]
        if ".lora_A." in key:
            out[key] = torch.cat(parts, 0).contiguous()
        elif ".lora_B." in key:
            out[key] = (torch.cat(parts, 1) / k).contiguous()
        else:
            raise SystemExit(f"error: {key} is not a LoRA A or B weight; "
                             "only plain LoRA is averaged")
    return out


def write_adapter(out: Path, like: Path, cfg: dict, state: dict[str, torch.Tensor]) -> None:
    """OUT: a copy of adapter folder LIKE (processor files, run metadata; not its weights or
    reports) with this config and these weights. Written under a temporary name and renamed,
    so a failure leaves no half-written adapter; an existing OUT is refused."""
    if out.exists():
        raise SystemExit(f"error: {out} exists")
    tmp = out.with_name(out.name + ".tmp")
    shutil.copytree(like, tmp, ignore=shutil.ignore_patterns(WEIGHTS, "report.*"))
    (tmp / CONFIG).write_text(json.dumps(cfg, indent=2))
    save_file(state, tmp / WEIGHTS)
    tmp.rename(out)


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__.split("\n\n")[1])
    out, members = Path(argv[1]), [Path(p) for p in argv[2:]]
    configs = [json.loads((m / CONFIG).read_text()) for m in members]
    if len({(c["r"], c["lora_alpha"], c["base_model_name_or_path"]) for c in configs}) != 1:
        raise SystemExit("error: the adapters differ in rank, alpha or base model")
    cfg = dict(configs[0], r=configs[0]["r"] * len(members),
               lora_alpha=configs[0]["lora_alpha"] * len(members))
    write_adapter(out, members[0], cfg, soup([load_file(m / WEIGHTS) for m in members]))
    print(f"wrote {out}: {len(members)} adapters averaged, rank {cfg['r']}")


if __name__ == "__main__":
    main(sys.argv)
