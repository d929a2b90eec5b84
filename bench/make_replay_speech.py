#!/usr/bin/env python3
"""Regenerate vocabtune's built-in replay speech (``vocabtune/data/replay/everyday.{mp3,vtt}``)
from ``everyday.txt`` beside them: espeak-ng reads each sentence (en-us, speed and pitch
varied per sentence by a seeded RNG, as bench/synthetic_vocab.py does), and the VTT is
written from the known sentence times, one cue per sentence.

    .venv/bin/python bench/make_replay_speech.py      # needs espeak-ng (apt-get install espeak-ng)

Users never run this: the files are in the repository. The sentences were written for
vocabtune (no licence attached to them or to espeak-ng's output) and are deliberately not
from any test set: plain, everyday English.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE)), sys.path.insert(0, str(HERE.parent))

from synthetic_vocab import require_espeak, synthesise  # noqa: E402

from vocabtune.replay import BUILTIN_DIR  # noqa: E402

SEED = 7


def main() -> None:
    text = BUILTIN_DIR / "everyday.txt"
    sentences = [line.strip() for line in text.read_text(encoding="utf-8").splitlines() if line.strip()]
    stem = BUILTIN_DIR / "everyday"
    stem.with_suffix(".vtt").unlink(missing_ok=True)      # the VTT writer never overwrites
    print(synthesise(sentences, stem, random.Random(SEED), require_espeak()))


if __name__ == "__main__":
    main()
