"""Peak memory and time of log-mel feature extraction on long recordings: each library's
extractor on the whole recording ("library") against vocabtune.log_mel's windows
("windowed"), for both engines, each run in a fresh process; and, once per recording and
engine, whether the two outputs are equal to the bit.

    .venv/bin/python bench/bench_log_mel.py LONG.mp3 [LONGER.mp3 ...] --repeats 3

Each recording is decoded once (vocabtune.audio.decode_audio, in a child process) to a
.npy file that every run loads, so the peak measured is the extraction's, not ffmpeg's.
(Linux gives an exec'd process the ru_maxrss of the process it replaced: a parent that had
decoded 140 minutes would add its own 1.3 GiB peak to every run's figure.) Runs are interleaved
within each repeat; times are medians. "growth" is the peak RSS (ru_maxrss) minus the
RSS just before extraction: the audio and the imports are in both.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ENGINES = ("ctranslate2", "transformers")
IMPLS = ("library", "windowed")


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _extract(engine: str, impl: str, audio: np.ndarray) -> np.ndarray:
    from vocabtune import log_mel
    from vocabtune.config import SAMPLE_RATE

    if engine == "ctranslate2":
        from faster_whisper.feature_extractor import FeatureExtractor

        from vocabtune.ct2_features import WindowedFeatureExtractor

        return (FeatureExtractor if impl == "library" else WindowedFeatureExtractor)()(audio)
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor()
    if impl == "windowed":
        return log_mel.transformers_long_inputs(fe, audio)[0].numpy()
    return fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True,
              truncation=False, padding="longest").input_features.numpy()


def one_run(engine: str, impl: str, npy: Path) -> dict:
    """In this (fresh) process: load, import both engines' extractors, extract once."""
    import faster_whisper.feature_extractor  # noqa: F401  (same imports for every run,
    import torch  # noqa: F401                  before "before": torch alone is ~0.15 GiB)
    from transformers import WhisperFeatureExtractor  # noqa: F401

    from vocabtune import ct2_features, log_mel  # noqa: F401

    audio = np.load(npy)
    before = _rss_kib()
    started = time.perf_counter()
    features = _extract(engine, impl, audio)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_kib": peak, "before_kib": before,
            "features_mib": features.nbytes / 2**20, "audio_s": len(audio) / 16000}


def check(engine: str, npy: Path) -> dict:
    audio = np.load(npy)
    old = _extract(engine, "library", audio)
    new = _extract(engine, "windowed", audio)
    return {"equal": bool(old.shape == new.shape and np.array_equal(old, new)), "shape": list(old.shape)}


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("audio", nargs="*", type=Path, help="long recordings to measure")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each extractor per recording")
    ap.add_argument("--no-check", action="store_true", help="skip the bit-for-bit comparison")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child_main(*args.child)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-log-mel-") as tmp:
        for path in args.audio:
            npy = Path(tmp) / f"{path.stem}.npy"
            _child("decode", str(path), str(npy))
            _measure(path, npy, args)


def _child_main(kind: str, *rest: str) -> dict:
    if kind == "decode":         # in a child too: a process's ru_maxrss starts at the high-water
        from vocabtune.audio import decode_audio  # mark of the one that exec'd it, so the parent
        np.save(rest[1], decode_audio(Path(rest[0])))  # must never hold a decoded recording
        return {}
    if kind == "check":
        return check(rest[0], Path(rest[1]))
    return one_run(rest[0], rest[1], Path(rest[2]))


def _measure(path: Path, npy: Path, args: argparse.Namespace) -> None:
    runs: dict[tuple[str, str], list[dict]] = {(e, i): [] for e in ENGINES for i in IMPLS}
    for _ in range(args.repeats):
        for key in runs:
            runs[key].append(_child("run", *key, str(npy)))
    minutes = runs[ENGINES[0], IMPLS[0]][0]["audio_s"] / 60
    print(f"\n{path.name}: {minutes:.1f} min")
    print("| engine | extractor | peak RSS GiB | growth GiB | s (median) | s per run | equal |")
    print("|---|---|---|---|---|---|---|")
    for engine in ENGINES:
        same = "" if args.no_check else ("yes" if _child("check", engine, str(npy))["equal"] else "NO")
        for impl in IMPLS:
            rs = runs[engine, impl]
            peak = statistics.median(r["peak_kib"] for r in rs) / 2**20
            growth = statistics.median(r["peak_kib"] - r["before_kib"] for r in rs) / 2**20
            secs = [r["seconds"] for r in rs]
            print(f"| {engine} | {impl} | {peak:.2f} | {growth:.2f} | {statistics.median(secs):.2f} | "
                  f"{', '.join(f'{s:.2f}' for s in secs)} | {same if impl == 'windowed' else ''} |")
    print(f"features: {runs[ENGINES[0], IMPLS[0]][0]['features_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
