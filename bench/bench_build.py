#!/usr/bin/env python3
"""Dataset build vs the floor: ffmpeg alone decoding the same recordings (issue 5 item 4).

    .venv/bin/python bench/bench_build.py [--data ../shared/data/llm-lingo] [--repeats 5]

Each repeat runs, in this order, (a) the wheel's ffmpeg decoding every recording to 16 kHz
mono s16le (the floor: what build cannot avoid) and (b) ``build_dataset`` on a fresh copy
of the recordings (checks, decode once, pack, slice, atomic save). Prints medians and the
ratio build / floor, measured in the same run.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vocabtune.audio import ffmpeg_exe  # noqa: E402
from vocabtune.build import build_dataset  # noqa: E402
from vocabtune.config import SAMPLE_RATE, BuildConfig  # noqa: E402


def ffmpeg_floor(files: list[Path]) -> float:
    started = time.perf_counter()
    for f in files:
        subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-threads", "0", "-i", str(f),
                        "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"],
                       check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def one_build(data: Path, work: Path) -> float:
    rec, vocab = work / "recordings", work / "vocab"
    rec.mkdir(parents=True)
    vocab.mkdir()
    for name in ("train", "validation"):
        for ext in ("mp3", "vtt"):
            shutil.copy(data / f"{name}.{ext}", rec)
    shutil.copy(data / "terms.txt", vocab / "terms.txt")
    started = time.perf_counter()
    build_dataset(BuildConfig(recordings=rec, vocab=vocab, out=work / "data" / "bench"))
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/llm-lingo")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    files = [args.data / "train.mp3", args.data / "validation.mp3"]
    floors, builds = [], []
    for i in range(args.repeats):
        floors.append(ffmpeg_floor(files))
        with tempfile.TemporaryDirectory() as tmp:
            builds.append(one_build(args.data, Path(tmp)))
        print(f"run {i + 1}: ffmpeg {floors[-1]:.2f} s, build {builds[-1]:.2f} s", flush=True)
    floor, build = statistics.median(floors), statistics.median(builds)
    print("\n| what | median s | runs |\n|---|---|---|")
    print(f"| ffmpeg decode only (floor) | {floor:.2f} | {args.repeats} |")
    print(f"| prepare_data build | {build:.2f} | {args.repeats} |")
    print(f"\nbuild / floor = {build / floor:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
