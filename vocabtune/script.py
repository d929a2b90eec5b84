"""``prepare_data.py script``: reading scripts that cover every vocabulary term.

Writes ``recordings/train-script.txt`` (every term at least ``train_repeats`` times) and
``recordings/validation-script.txt`` (every term at least once), one numbered sentence per
line, from the hand-written frames in :mod:`vocabtune.sentences`.

Guarantees, by construction rather than by retrying:

* coverage: the terms to place are a queue holding each term ``repeats`` times (shuffled
  round by round, so repeats are spread over the script); sentences take terms from it
  until it is empty;
* no sentence in both files: the frames are split into a train share and a disjoint
  validation share, so a validation sentence can never equal a train sentence;
* deterministic: one ``random.Random(seed)`` drives every choice; no set ordering.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .backups import keep_backup
from .errors import VocabtuneError
from .fsutil import atomic_write_text
from .sentences import SLOTS, TEMPLATES
from .vocab import read_vocab

log = logging.getLogger(__name__)
ENGLISH = ("en", "english")     # what --language takes for English (Whisper's code and name)
TRAIN_SCRIPT = "train-script.txt"
VALIDATION_SCRIPT = "validation-script.txt"
VALIDATION_REPEATS = 1          # validation measures recognition; once per term is enough
VALIDATION_SHARE = 1 / 3        # of each kind of frame, kept for validation only
SLOT_WEIGHTS = (5, 3, 2)        # how often a sentence has 1, 2 or 3 terms: mostly one, so
#                                 each term gets a context of its own


@dataclass(frozen=True)
class Scripts:
    train: list[str]
    validation: list[str]


def split_frames(rng: random.Random) -> tuple[list[list[str]], list[list[str]]]:
    """Per slot count, a train and a disjoint validation list of frames (at least one each)."""
    train, validation = [], []
    for group in TEMPLATES:
        frames = list(group)
        rng.shuffle(frames)
        cut = max(1, round(len(frames) * VALIDATION_SHARE))
        validation.append(frames[:cut])
        train.append(frames[cut:])
    return train, validation


def term_queue(terms: Sequence[str], repeats: int, rng: random.Random) -> list[str]:
    """Each term ``repeats`` times: ``repeats`` shuffled rounds of the whole vocabulary."""
    queue: list[str] = []
    for _ in range(repeats):
        round_ = list(terms)
        rng.shuffle(round_)
        queue += round_
    return queue


def _take_distinct(queue: deque[str], left: Counter[str], k: int) -> list[str]:
    """Remove and return the first ``k`` different terms of ``queue`` (a sentence never
    names the same term twice); the repeats passed over go back in front, in order.
    ``left`` counts what the queue holds. Each call costs about ``k`` steps, not the
    queue's length, so a long script stays linear (300 terms x 100 repeats: 6 s before)."""
    picked: list[str] = []
    passed: list[str] = []
    while queue and len(picked) < k:
        term = queue.popleft()
        (passed if term in picked else picked).append(term)
    queue.extendleft(reversed(passed))
    for term in picked:
        left[term] -= 1
        if not left[term]:
            del left[term]
    return picked


class _FrameCycle:
    """Frames of one slot count in shuffled order, reshuffled after each pass, so a frame
    comes back only after all the others have been used."""

    def __init__(self, frames: list[str], rng: random.Random) -> None:
        self.frames, self.rng, self.pending = frames, rng, []

    def next(self) -> str:
        if not self.pending:
            self.pending = list(self.frames)
            self.rng.shuffle(self.pending)
        return self.pending.pop()


def compose(terms: Sequence[str], repeats: int, frames: list[list[str]],
            rng: random.Random) -> list[str]:
    """Sentences placing every term ``repeats`` times (at least) in ``frames``."""
    queue = deque(term_queue(terms, repeats, rng))
    left = Counter(queue)
    cycles = [_FrameCycle(group, rng) for group in frames]
    sentences: list[str] = []
    said: set[str] = set()
    while queue:
        sizes = [k for k in range(1, len(frames) + 1) if k <= len(left) and frames[k - 1]]
        k = rng.choices(sizes, weights=[SLOT_WEIGHTS[k - 1] for k in sizes])[0]
        picked = _take_distinct(queue, left, k)
        sentence = _fresh_sentence(cycles[k - 1], picked, said)
        sentences.append(sentence)
        said.add(sentence)
    return sentences


def _fresh_sentence(cycle: _FrameCycle, picked: list[str], said: set[str]) -> str:
    """The next frame filled with ``picked`` that the script does not hold yet (the same
    term in the same frame in two rounds would be a wasted line to read). Only when every
    frame has been used with these terms (a tiny vocabulary read many times) does a
    sentence come back: coverage matters more than variety."""
    sentence = ""
    for _ in range(len(cycle.frames)):
        sentence = _one_end_mark(cycle.next().format(**dict(zip(SLOTS, picked))))
        if sentence not in said:
            break
    return sentence


def _one_end_mark(sentence: str) -> str:
    """Drop the frame's full stop after a term that ends a sentence with its own mark:
    "about Acme Inc." and "about Yahoo!", not "Acme Inc.." or "Yahoo!."."""
    return sentence[:-1] if sentence.endswith(".") and sentence[-2:-1] in (".", "!", "?", "…") else sentence


def make_scripts(terms: Sequence[str], train_repeats: int = 3, seed: int = 0) -> Scripts:
    """Train and validation sentences for ``terms`` (pure; see the module doc)."""
    if not terms:
        raise ValueError("no terms to write a script for")
    if train_repeats < 1:
        raise ValueError(f"train_repeats must be at least 1, not {train_repeats}")
    rng = random.Random(seed)
    train_frames, validation_frames = split_frames(rng)
    return Scripts(train=compose(terms, train_repeats, train_frames, rng),
                   validation=compose(terms, VALIDATION_REPEATS, validation_frames, rng))


def format_script(sentences: Sequence[str], audio_name: str, repeats: int) -> str:
    """The text a person reads from: what to do, then one numbered sentence per line."""
    times = "once" if repeats == 1 else f"{repeats} times"
    header = [
        f"# Read each numbered sentence aloud, naturally, at your usual pace, as if talking to "
        f"a colleague (do not read the numbers). Save the recording as recordings/{audio_name}.",
        f"# {len(sentences)} sentence{'s' if len(sentences) != 1 else ''}; every vocabulary term "
        f"appears at least {times}. "
        "If you stumble, just say the sentence again.",
        "",
    ]
    width = len(str(len(sentences)))
    body = [f"{n:>{width}}. {s}" for n, s in enumerate(sentences, start=1)]
    return "\n".join(header + body) + "\n"


def write_scripts(vocab: Path, recordings: Path, train_repeats: int = 3, seed: int = 0,
                  force: bool = False, language: str = "en") -> list[Path]:
    """Write both scripts into ``recordings`` and return their paths. Existing scripts are
    kept unless ``force`` (then each is first copied to a timestamped ``.bak.txt``); both
    are checked before either is written, so a refusal changes nothing. The frames are
    English, so another ``language`` is refused rather than given English to read."""
    _refuse_other_language(language)
    if train_repeats < 1:
        raise VocabtuneError(f"--train-repeats must be at least 1, not {train_repeats}",
                             hint="each term must be read at least once for training")
    terms = [t.text for t in read_vocab(vocab)]
    if not terms:
        raise VocabtuneError("the vocabulary has no terms", file=vocab,
                             hint="add one term per line, e.g. vocab/terms.txt")
    scripts = make_scripts(terms, train_repeats, seed)
    outputs = [(Path(recordings) / TRAIN_SCRIPT, scripts.train, "train.mp3", train_repeats),
               (Path(recordings) / VALIDATION_SCRIPT, scripts.validation, "validation.mp3",
                VALIDATION_REPEATS)]
    _refuse_existing([path for path, *_ in outputs], force)
    Path(recordings).mkdir(parents=True, exist_ok=True)
    for path, sentences, audio, repeats in outputs:
        if path.exists():
            log.info("kept the old %s as %s", path.name, keep_backup(path).name)
        atomic_write_text(path, format_script(sentences, audio, repeats))
    log.info("%d terms: %d train sentences, %d validation sentences (English)",
             len(terms), len(scripts.train), len(scripts.validation))
    return [path for path, *_ in outputs]


def _refuse_other_language(language: str) -> None:
    """Read aloud, English frames around French terms make English recordings: Whisper
    trained on them under ``--language fr`` learns English speech as French."""
    if language.strip().lower() not in ENGLISH:
        raise VocabtuneError(f"script writes English sentences only, not {language!r} ones",
                             hint="write your own reading script in your language, each term in "
                                  "several sentences (at least 3 for train, 1 for validation), "
                                  "and record that (README, \"Other languages\")")


def _refuse_existing(paths: list[Path], force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise VocabtuneError("reading script already exists; not overwriting it", file=existing[0],
                             hint="you may be reading from it: use --force to write new scripts "
                                  "(the old ones are kept as .bak.txt)")
