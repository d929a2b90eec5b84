"""Memory of making the speed copies (augment.with_speed_copies) for a dataset: held in
memory ("memory", what training did before) against written to a folder as they are made
("disk", what training does now), each run in a fresh process, interleaved, several times.

    .venv/bin/python bench/bench_speed_copies.py data/<name> --repeats 3

"kept" is the resident memory after the copies are made minus before (what stays for the
whole run); "peak" is the process's peak RSS (ru_maxrss), imports and the loaded dataset
included. Both the dataset and its copies are the train split's rows; nothing is trained.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, psutil
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from vocabtune.augment import with_speed_copies
from vocabtune.dataset import load_dataset_dir
dataset, mode, folder = load_dataset_dir(Path(sys.argv[2])), sys.argv[3], Path(sys.argv[4])
before = psutil.Process().memory_info().rss
mixed = with_speed_copies(dataset, (0.9, 1.1), folder=folder if mode == "disk" else None)
after = psutil.Process().memory_info().rss
print(json.dumps({"rows": len(mixed["train"]), "kept": (after - before) / 2**30,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def one_run(dataset: Path, mode: str) -> dict:
    with tempfile.TemporaryDirectory(dir=dataset.parent, prefix=".bench-copies-") as folder:
        done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(dataset), mode, folder],
                              capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="a dataset folder from prepare_data.py build")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"memory": [], "disk": []}
    for _ in range(args.repeats):
        for mode in runs:
            runs[mode].append(one_run(args.dataset, mode))
    print(f"{args.dataset}: {runs['disk'][0]['rows']} train rows with the copies, "
          f"medians of {args.repeats}")
    print("| copies | kept (GiB) | peak RSS (GiB) |\n|---|---|---|")
    for mode, found in runs.items():
        kept = statistics.median(r["kept"] for r in found)
        peak = statistics.median(r["peak"] for r in found)
        print(f"| {mode} | {kept:.2f} | {peak:.2f} |")


if __name__ == "__main__":
    main()
