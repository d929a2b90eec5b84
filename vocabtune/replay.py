"""General speech mixed into training ("replay") so the model keeps its general English.

Why: a few minutes of one person's jargon is a narrow diet. LoRA on it alone shifts the
decoder's sense of ordinary English a little: on llm-lingo it turned "fall" into "ball" and
"drug store" into "drugstore" on plain sentences it had transcribed right before. Mixing
plain sentences into every epoch (rehearsal) lessens that forgetting; on llm-lingo it did,
without removing it (BENCHMARKS.md, issue 4).

Sources, in ``TrainConfig.replay``:

- ``builtin``: about four minutes of everyday sentences shipped with vocabtune
  (``vocabtune/data/replay/``: written for this project and read by espeak-ng, so there is
  no licence to worry about; ``bench/make_replay_speech.py`` regenerates them). A synthetic
  voice is not the person's, but the point is the text: ordinary English, spelt as Whisper
  spells it.
- a dataset folder written by ``prepare_data.py build``: both of its splits are used. Its
  captions need no hand correction; base Whisper's own transcript is exactly the behaviour
  replay is meant to keep. Recordings in the person's own voice are best.
- ``none``: no replay (the seed recipe; fastest).

Replay rows only ever go to the train split: validation and every reported figure stay on
the person's own recordings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from .config import MAX_CHUNK_S
from .errors import VocabtuneError

log = logging.getLogger(__name__)

BUILTIN = "builtin"
NONE = "none"
BUILTIN_DIR = Path(__file__).resolve().parent / "data" / "replay"


def replay_sources(names: Sequence[str]) -> list[str]:
    """The sources to load: ``none`` anywhere means none at all; repeats count once."""
    names = [str(n) for n in names]
    if NONE in names:
        if len(names) > 1:
            raise VocabtuneError("--replay none cannot be combined with other sources",
                                 hint="pass either none or the sources to mix in")
        return []
    return list(dict.fromkeys(names))


def for_language(names: Sequence[str], language: str) -> tuple[str, ...]:
    """``names`` minus ``builtin`` when training in another language than English. The
    built-in speech is English: trained under another language's token it keeps nothing of
    that language's general speech and teaches the model English text for it."""
    from .targets import is_english

    if is_english(language) or BUILTIN not in names:
        return tuple(names)
    log.warning("--replay builtin is English speech, left out when training in %s: pass --replay "
                "with a dataset of everyday speech in %s (prepare_data.py build on base Whisper's "
                "uncorrected transcripts is fine)", language, language)
    return tuple(n for n in names if n != BUILTIN) or (NONE,)


def load_replay(names: Sequence[str]):
    """One ``datasets.Dataset`` of every replay source's chunks, or None for no replay."""
    from datasets import concatenate_datasets

    parts = [_load_source(name) for name in replay_sources(names)]
    if not parts:
        return None
    # sources differ in how their audio column is declared (decoded or not, float widths):
    # datasets refuses to concatenate those, so each takes the first one's features
    return concatenate_datasets([parts[0], *(_like(p, parts[0].features) for p in parts[1:])])


def with_replay(dataset, names: Sequence[str]):
    """``dataset`` (train/validation) with the replay chunks appended to its train split."""
    from datasets import DatasetDict, concatenate_datasets

    replay = load_replay(names)
    if replay is None:
        return dataset
    train = dataset["train"]
    replay = _like(replay, train.features)
    seconds = sum(e - s for s, e in zip(replay["start"], replay["end"]))
    log.info("replay: %d chunks (%.1f min) of general speech from %s mixed into train "
             "(--replay none turns it off)", len(replay), seconds / 60, ", ".join(names))
    return DatasetDict({**dataset, "train": concatenate_datasets([train, replay])})


def _like(part, features):
    """``part`` with exactly ``features``; a source without a needed column is named."""
    missing = set(features) - set(part.column_names)
    if missing:
        raise VocabtuneError(f"the replay data has no {', '.join(sorted(missing))} column",
                             hint="rebuild it with prepare_data.py build")
    from .dataset import with_features

    return with_features(part, features)


def _load_source(name: str):
    from datasets import concatenate_datasets

    from .dataset import load_dataset_dir

    if name == BUILTIN:
        return builtin_split()
    path = Path(name).expanduser()
    if not path.exists():
        raise VocabtuneError("no such replay dataset folder", file=path,
                             hint="pass builtin, none, or a folder written by prepare_data.py build")
    dataset = load_dataset_dir(path)
    return concatenate_datasets([dataset["train"], dataset["validation"]])


def builtin_split():
    """The shipped recordings, packed into <= 30 s chunks the way ``build`` packs them."""
    from .audio import load_segment
    from .captions import read_vtt
    from .dataset import make_split
    from .schema import Severity
    from .segments import pack_cues

    chunks, audio = [], {}
    for mp3 in sorted(BUILTIN_DIR.glob("*.mp3")):
        cues, problems = read_vtt(mp3.with_suffix(".vtt"))
        errors = [p for p in problems if p.severity is Severity.ERROR]
        if errors:      # only if the package was damaged: the files are tested
            raise VocabtuneError(f"vocabtune's built-in replay captions are broken: {errors[0]}",
                                 hint="reinstall vocabtune, or train with --replay none")
        chunks += pack_cues(cues, mp3.name, MAX_CHUNK_S, caption_file=str(mp3.with_suffix(".vtt")))
        audio[mp3.name] = load_segment(mp3)
    if not chunks:
        raise VocabtuneError("vocabtune's built-in replay recordings are missing", file=BUILTIN_DIR,
                             hint="reinstall vocabtune, or train with --replay none")
    return make_split(chunks, audio)
