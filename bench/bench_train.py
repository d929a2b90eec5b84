#!/usr/bin/env python3
"""Training time and accuracy: the seed recipe vs vocabtune's default, in one run (issue 5.3).

    .venv/bin/python bench/bench_train.py --dataset DIR --base-model .cache/models/whisper-base \
        [--repeats 1] [--out bench/out/train]

Seed recipe (the reference): LoRA r=32 alpha=64 on q_proj/v_proj in encoder and decoder, a
full 30 s encoder pass every step, batch 3, 5 epochs (`--lora-scope all --replay none
--speed-perturb none`). Default: the recipe in vocabtune/config.py (decoder-only LoRA on the
decoder's fc1/fc2 and cross-attention q/out, the frozen encoder run once, built-in replay
speech mixed in, copies of the train audio at 0.9x and 1.1x speed, 4 epochs).
Each run is a separate process (`finetune.py train`), timed from outside; peak RSS is the
run's own (getrusage inside it, recorded in vocabtune_train.json). Prints the epoch at which each run first reached the
seed recipe's best term recall and how many seconds after the start of its process (the end
of that epoch's validation, read from the run's log as it comes); the `--epochs 2 --replay
none --speed-perturb none --learning-rate 2e-3` row is the quickest to get there. Repeats
are interleaved, so a machine that changes speed during the benchmark shifts every recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The seed row turns off every vocabtune default that changes what is learnt (replay, speed
# copies, the term-focused loss), so it stays the recipe as new defaults arrive.
RECIPES = {
    "seed (q,v; encoder+decoder; 5 ep)": ["--lora-scope", "all", "--target-modules", "q_proj", "v_proj",
                                         "--epochs", "5", "--replay", "none", "--speed-perturb", "none",
                                         "--context-weight", "1"],
    "vocabtune default": [],
    # the quickest run that reaches the seed's recall (issue 5.3 asks for the time to reach
    # it): the default recipe without replay (which is there for general English, not
    # speed) or speed copies (there for recall across seeds), fewer epochs, its own LR schedule.
    # At lr 1e-3 its 10 steps fell short of the seed once terms had to be spelt with their
    # capitals (61.0% vs 63.4%); lr 2e-3 is the row that reaches it. Both are kept.
    "vocabtune --epochs 2 --replay none --speed-perturb none": ["--epochs", "2", "--replay", "none",
                                                                "--speed-perturb", "none"],
    "vocabtune --epochs 2 --replay none --speed-perturb none --learning-rate 2e-3": [
        "--epochs", "2", "--replay", "none", "--speed-perturb", "none", "--learning-rate", "2e-3"],
}


VALIDATED = re.compile(r"validation at epoch ([0-9.]+):")


def run(name: str, extra: list[str], args, i: int) -> dict:
    out = args.out / f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}-{i}"
    cmd = [sys.executable, str(ROOT / "finetune.py"), "train", "--dataset", str(args.dataset),
           "--base-model", args.base_model, "--output-dir", str(out), "--vocab", str(args.vocab), *extra]
    # the log is read as it comes, to time each epoch's validation from the start of the
    # process: issue 5.3 asks how soon a run *reaches* the seed's recall, not when it ends
    validated: dict[float, float] = {}
    if out.exists():  # this benchmark's own run of an earlier invocation: start afresh
        shutil.rmtree(out)
    tail: deque[str] = deque(maxlen=15)
    started = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        for line in proc.stdout:
            tail.append(line)
            found = VALIDATED.search(line)
            if found:
                validated[float(found.group(1))] = time.perf_counter() - started
    wall = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"{name} (run {i}) failed with exit status {proc.returncode}: {' '.join(cmd)}\n"
                 + "".join(tail))
    meta = json.loads((out / "best" / "vocabtune_train.json").read_text())
    # the run's own peak RSS (getrusage of the process, recorded by finetune.py train):
    # RUSAGE_CHILDREN here would be the maximum over all runs so far
    return {"wall": wall, "rss_gib": meta["peak_rss_mib"] / 1024, "meta": meta, "validated": validated}


def reach_epoch(meta: dict, recall: float) -> float | None:
    """The first epoch whose validation term recall is at or above ``recall`` (None if none)."""
    return next((e["epoch"] for e in meta["per_epoch"] if e["term_recall"] >= recall), None)


def reach_seconds(run_: dict, recall: float) -> float | None:
    """Seconds from the start of the process to the end of the first validation at or above
    ``recall`` (None if no epoch got there)."""
    epoch = reach_epoch(run_["meta"], recall)
    return None if epoch is None else run_["validated"].get(epoch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--vocab", type=Path, default=Path("vocab"))
    ap.add_argument("--base-model", default=str(ROOT / ".cache/models/whisper-base"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/out/train")
    args = ap.parse_args()
    # repeats interleaved (every recipe once, then again): a machine that slows down or speeds
    # up during the benchmark then shifts every recipe alike instead of one recipe's runs
    results: dict[str, list[dict]] = {name: [] for name in RECIPES}
    for i in range(args.repeats):
        for name, extra in RECIPES.items():
            results[name].append(run(name, extra, args, i))
    seed_runs = results[next(iter(RECIPES))]
    seed_best = max(e["term_recall"] for r in seed_runs for e in r["meta"]["per_epoch"])
    ref_wall = statistics.median(r["wall"] for r in seed_runs)
    print("| recipe | wall s (median) | × seed | samples/s | peak RSS GiB | best term recall | best WER | "
          f"epoch reaching {seed_best:.1%} | s to reach it (median) | × seed wall |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        meta = runs[0]["meta"]
        best = max(meta["per_epoch"], key=lambda e: (e["term_recall"], -e["wer"]))
        reach = reach_epoch(meta, seed_best)
        reached = [reach_seconds(r, seed_best) for r in runs]
        to_reach = statistics.median(reached) if None not in reached else None
        wall = statistics.median(r["wall"] for r in runs)
        print(f"| {name} | {wall:.1f} | {wall / ref_wall:.3f} | {meta.get('samples_per_second', 0):.2f} | "
              f"{max(r['rss_gib'] for r in runs):.2f} | {best['term_recall']:.1%} | {best['wer']:.1%} | {reach} | "
              + (f"{to_reach:.1f} | {to_reach / ref_wall:.3f} |" if to_reach is not None else "– | – |"))
        print("  wall per run:", [round(r["wall"], 1) for r in runs])
        print("  reached per run:", [None if t is None else round(t, 1) for t in reached])
        print("  per epoch:", [(e["epoch"], round(e["term_recall"], 3), round(e["wer"], 3)) for e in meta["per_epoch"]])
    print(f"\ncommand: {' '.join(sys.argv)}  (repeats={args.repeats})")


if __name__ == "__main__":
    main()
