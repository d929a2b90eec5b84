"""``prepare_data.py build``: checked recordings -> packed chunks -> dataset on disk.

Flow: find the recordings, decode each one once, run the same checks as ``check`` with the
durations just decoded (any error stops the build before anything is written), pack the
cues into <= 30 s chunks, assign splits, slice the audio, save atomically, summarise.

Splits: recordings named ``validation*``/``valid*``/``val*``/``dev*`` form validation, the
rest train.
With no validation recording, ``--validation-fraction`` of the chunks (whole chunks,
seeded, chosen to bring the vocabulary into validation: :func:`segments.hold_out`) is held out; 0, the default, means 0.1 then — a dataset without validation cannot
measure anything, and one in ten chunks is the usual share for a few minutes of audio.
With a validation recording the fraction is ignored (logged as a warning).

Default output: ``data/<name>`` under the current folder, where ``<name>`` is the folder
holding ``recordings/`` (``~/my-voice/recordings`` -> ``data/my-voice``); when the
recordings folder is not called ``recordings`` (``--recordings ../llm-lingo``), its own
name (``data/llm-lingo``), which is what a person means by "the folder's name" there.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from tqdm import tqdm

from datasets import DatasetDict

from . import __version__
from .audio import AudioSegment, Decoded, decode_checked, segment_of, segment_seconds
from .check import (audio_problem, check_pairs, decoded_problems, load_cues, load_terms,
                    heard_in, text_hints)
from .config import SAMPLE_RATE, BuildConfig
from .cue_audio import NOTHING_HEARD
from .dataset import SPLITS, check_output, make_dataset_dict, save_dataset
from .errors import VocabtuneError
from .recordings import Recording, discover_recordings
from .schema import Chunk, Cue, Problem, Severity
from .segments import hold_out, pack_cues
from .summary import SplitStats, format_summary, split_stats

log = logging.getLogger(__name__)
DATA_ROOT = Path("data")
DEFAULT_VALIDATION_FRACTION = 0.1   # when there is no validation recording and no flag
MAX_LISTED_PROBLEMS = 5             # the rest: "run prepare_data.py check"


@dataclass(frozen=True)
class BuildResult:
    out: Path                                   # the dataset folder written
    summary: str                                # the table printed by the CLI
    stats: dict[str, SplitStats] = field(default_factory=dict)
    seconds: float = 0.0                        # wall time of the whole build


def build_dataset(cfg: BuildConfig) -> BuildResult:
    """The whole build; raises :class:`VocabtuneError` (and writes nothing) on bad input."""
    started = time.perf_counter()
    out = Path(cfg.out) if cfg.out is not None else default_out(cfg.recordings)
    _check_fraction(cfg.validation_fraction)
    check_output(out)           # before the slow part: never replace a folder of other files
    recordings, terms, audio, cues = checked_inputs(cfg)
    chunks = {rec.name: _pack(rec, cues[rec.name], cfg.max_chunk_s) for rec in recordings}
    splits, rule = assign_splits(recordings, chunks, cfg, terms)
    stats = {name: split_stats(split, terms) for name, split in splits.items()}
    dataset = _slice_all(splits, audio)
    meta = _metadata(cfg, recordings, audio, terms, splits, stats, rule)
    save_dataset(dataset, out, meta)
    seconds = time.perf_counter() - started
    log.info("built %s in %.1f s", out, seconds)
    return BuildResult(out=out, summary=format_summary(stats, terms), stats=stats,
                       seconds=seconds)


def default_out(recordings: Path) -> Path:
    """``data/<name>``: see the module docstring for how the name is chosen."""
    folder = Path(recordings).resolve()
    name = folder.parent.name if folder.name.lower() == "recordings" else folder.name
    return DATA_ROOT / (name or "dataset")


def default_dataset_dir(root: Path = DATA_ROOT) -> Path:
    """The one dataset under ``data/`` (for ``push`` without ``--dataset``)."""
    found = sorted(p for p in Path(root).glob("*/dataset_dict.json")
                   if not p.parent.name.startswith("."))
    if len(found) == 1:
        return found[0].parent
    if not found:
        raise VocabtuneError("no dataset found", file=root,
                             hint="run prepare_data.py build first, or pass --dataset DIR")
    names = ", ".join(str(p.parent) for p in found)
    raise VocabtuneError(f"several datasets found ({names})", file=root,
                         hint="choose one with --dataset DIR")


def _check_fraction(fraction: float) -> None:
    if not 0.0 <= fraction < 1.0:
        raise VocabtuneError(f"--validation-fraction {fraction:g} is not in [0, 1)",
                             hint="pass e.g. 0.1 (or 0 for the default)")


def checked_inputs(cfg: BuildConfig) -> tuple[list[Recording], list[str],
                                                dict[str, AudioSegment], dict[str, list[Cue]]]:
    """Recordings, terms, decoded audio and cues, after the same checks as ``check``.

    Layout and vocabulary problems stop the build before anything is decoded; then each
    recording is decoded once and the caption rules run with those durations (so nothing
    is decoded twice). Any error raises; warnings are logged.
    """
    recordings, layout = discover_recordings(Path(cfg.recordings))
    terms, vocab_problems, notes = load_terms(cfg.vocab)
    for note in notes:
        log.warning("%s; the build summary will have no term counts", note)
    raise_on_errors(layout + vocab_problems)
    with ThreadPoolExecutor(max_workers=1) as background:
        # ffmpeg decodes in its own processes; meanwhile this thread parses the captions and
        # runs the spelling hints (the only checks that need no audio duration)
        decoding = background.submit(decode_recordings, recordings)
        parsed = load_cues(recordings)
        hints = [p for r in recordings if r.vtt
                 for p in text_hints(parsed.cues.get(r.audio, []), terms, str(r.vtt))]
        audio, audio_problems = decoding.result()
    durations = {r.audio: segment_seconds(audio[r.name]) for r in recordings if r.name in audio}
    report = check_pairs(recordings, durations, (), parsed, hints=False)   # the rest of check's rules
    heard = {r.name: heard_in(r, parsed, audio[r.name].raw_data) if r.name in audio
             else NOTHING_HEARD for r in recordings}
    raise_on_errors(audio_problems + report.problems + hints
                    + [p for r in recordings for p in heard[r.name].problems(str(r.vtt))])
    return recordings, terms, audio, {r.name: heard[r.name].cues_to_pack(parsed.cues.get(r.audio, []))
                                      for r in recordings}


def decode_recordings(recordings: Sequence[Recording]) -> tuple[dict[str, AudioSegment],
                                                                list[Problem]]:
    """Each recording decoded exactly once, keyed by file name; chunks are sliced from
    these. An unreadable file becomes an ERROR problem, reported with the others.

    Files are decoded concurrently, one ffmpeg process per core: each process is mostly
    single-threaded on MP3, so the cores would otherwise idle while one file decodes."""
    audio: dict[str, AudioSegment] = {}
    problems: list[Problem] = []
    workers = max(1, min(len(recordings), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(_decode_one, recordings)
        for rec, result in tqdm(zip(recordings, results), total=len(recordings), desc="decoding",
                                unit="recording", disable=None):
            if isinstance(result, VocabtuneError):
                problems.append(audio_problem(rec.audio, result))
                continue
            audio[rec.name] = segment_of(result.data)
            problems += decoded_problems(rec.audio, result)
            log.debug("decoded %s (%.1f s)", rec.name, segment_seconds(audio[rec.name]))
    # one line, not one per recording: sixty voice memos logged sixty lines above the summary
    log.info("decoded %d recording%s (%.1f min)", len(audio), "" if len(audio) == 1 else "s",
             sum(map(segment_seconds, audio.values())) / 60)
    return audio, problems


def _decode_one(rec: Recording) -> Decoded | VocabtuneError:
    try:
        return decode_checked(rec.audio)
    except VocabtuneError as err:
        return err


def raise_on_errors(problems: Sequence[Problem]) -> None:
    """Warnings are logged (the first few); errors become one VocabtuneError listing the
    first few and pointing at ``check`` for the rest."""
    warnings = [p for p in problems if p.severity is not Severity.ERROR]
    for problem in warnings[:MAX_LISTED_PROBLEMS]:
        log.warning("%s", problem)
    if len(warnings) > MAX_LISTED_PROBLEMS:
        log.warning("… and %d more warnings (prepare_data.py check lists them all)",
                    len(warnings) - MAX_LISTED_PROBLEMS)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if not errors:
        return
    listed = "\n".join(f"  {p}" for p in errors[:MAX_LISTED_PROBLEMS])
    more = len(errors) - MAX_LISTED_PROBLEMS
    tail = f"\n  … and {more} more" if more > 0 else ""
    count = "1 error" if len(errors) == 1 else f"{len(errors)} errors"
    raise VocabtuneError(f"cannot build, nothing was written: {count} in the recordings — fix "
                         f"and build again (prepare_data.py check lists every problem):\n"
                         f"{listed}{tail}")


def _pack(rec: Recording, cues: Sequence[Cue], max_s: float) -> list[Chunk]:
    chunks = pack_cues(cues, rec.name, max_s, caption_file=str(rec.vtt))
    if not chunks:
        raise VocabtuneError("the captions have no cue with text", file=rec.vtt,
                             hint="transcribe it with prepare_data.py transcribe (move the empty "
                                  "file away first), or remove the recording")
    return chunks


def assign_splits(recordings: Sequence[Recording], chunks: Mapping[str, list[Chunk]],
                  cfg: BuildConfig, terms: Sequence[str] = ()) -> tuple[dict[str, list[Chunk]], dict]:
    """train/validation chunks, and how validation was chosen (for the metadata). Held-out
    chunks are chosen to bring the vocabulary into validation (:func:`hold_out`)."""
    by_split: dict[str, list[Chunk]] = {"train": [], "validation": []}
    for rec in recordings:
        by_split[rec.split].extend(chunks[rec.name])
    if not by_split["train"]:
        raise VocabtuneError("every recording is a validation recording: nothing to train on",
                             hint="add a recording not named validation*/valid*/val*/dev*")
    if by_split["validation"]:
        if cfg.validation_fraction:
            log.warning("--validation-fraction ignored: validation recording(s) found")
        _log_named_validation(by_split)
        return by_split, {"rule": "recording"}
    fraction = cfg.validation_fraction or DEFAULT_VALIDATION_FRACTION
    train, validation = hold_out(by_split["train"], fraction, cfg.seed, terms)
    log.info("no validation recording: held out %d of %d chunks (fraction %g, seed %d), from %s",
             len(validation), len(train) + len(validation), fraction, cfg.seed,
             _listed(list(dict.fromkeys(c.source for c in validation))))
    return ({"train": train, "validation": validation},
            {"rule": "fraction", "fraction": fraction, "seed": cfg.seed})


def _log_named_validation(by_split: Mapping[str, Sequence[Chunk]]) -> None:
    """Name the recordings that are validation by their name, and their share. Why: among
    sixty voice memos one called "Dev sync.m4a" became the whole validation split, and no
    chunk was held out of the others, without a word said."""
    minutes = {name: sum(c.end - c.start for c in chunks) / 60 for name, chunks in by_split.items()}
    log.info("validation: %s (named validation*/valid*/val*/dev*; %.2f of %.2f min)",
             _listed(list(dict.fromkeys(c.source for c in by_split["validation"]))),
             minutes["validation"], sum(minutes.values()))


def _listed(names: Sequence[str], most: int = 10) -> str:
    """``a, b and c``, or the first ``most`` and how many more (vocabtune.json has them all)."""
    if len(names) > most:
        return f"{', '.join(names[:most])} and {len(names) - most} more (listed in vocabtune.json)"
    return " and ".join(filter(None, (", ".join(names[:-1]), names[-1]))) if names else "nothing"


def recording_splits(splits: Mapping[str, Sequence[Chunk]]) -> dict[str, str]:
    """Recording name -> the split(s) its chunks went to ("train", "validation", or
    "train+validation" when chunks were held out of it). Why not the name's split: without a
    validation recording, held-out memos are named like all the others, and the metadata
    said "train" for the very recordings validation was made of."""
    found: dict[str, list[str]] = {}
    for name, chunks in splits.items():
        for chunk in chunks:
            if name not in found.setdefault(chunk.source, []):
                found[chunk.source].append(name)
    return {source: "+".join(sorted(names, key=SPLITS.index)) for source, names in found.items()}


def _slice_all(splits: Mapping[str, list[Chunk]],
               audio: Mapping[str, AudioSegment]) -> DatasetDict:
    total = sum(c.end - c.start for chunks in splits.values() for c in chunks)
    with tqdm(total=round(total, 3), desc="slicing", unit="s", disable=None,
              bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]") as bar:
        return make_dataset_dict(splits, audio, bar)


def _metadata(cfg: BuildConfig, recordings: Sequence[Recording], audio: Mapping[str, AudioSegment],
              terms: Sequence[str], splits: Mapping[str, Sequence[Chunk]], stats: Mapping[str, SplitStats],
              rule: dict) -> dict:
    """``vocabtune.json``: what the dataset card and the trainer need to know."""
    where = recording_splits(splits)
    return {
        "vocabtune_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sampling_rate": SAMPLE_RATE,
        "max_chunk_s": cfg.max_chunk_s,
        "validation": rule,
        "recordings": [{"file": r.name, "captions": Path(r.vtt).name, "split": where.get(r.name, r.split),
                        "duration_s": round(segment_seconds(audio[r.name]), 3)}
                       for r in recordings],
        "terms": list(terms),
        "language": spoken_language(recordings),        # None: the VTTs do not say
        "splits": {name: s.as_json() for name, s in stats.items()},
        "commands": ["prepare_data.py build" + _flags(cfg)],
    }


def spoken_language(recordings: Sequence[Recording]) -> str | None:
    """The language the caption files' headers name (``transcribe`` writes ``Language: de``),
    for ``train`` to default to; None when none names one, or they disagree (a warning)."""
    from .captions import read_language

    named = {Path(r.vtt).name: read_language(r.vtt) for r in recordings if r.vtt is not None}
    found = sorted({code for code in named.values() if code})
    if len(found) > 1:
        listed = ", ".join(f"{name}: {code}" for name, code in named.items() if code)
        log.warning("the caption files name different languages (%s); the dataset records "
                    "none, so give train --language", listed)
    return found[0] if len(found) == 1 else None


def _flags(cfg: BuildConfig) -> str:
    """The build's flags for the dataset card. Only non-default ones, and an absolute path
    only by its folder name: the card may go public and must not show a home directory."""
    flags = ""
    for flag, path, default in (("--recordings", cfg.recordings, "recordings"),
                                ("--vocab", cfg.vocab, "vocab")):
        path = Path(path)
        if path != Path(default):
            flags += f" {flag} {path.name if path.is_absolute() else path}"
    if cfg.validation_fraction:
        flags += f" --validation-fraction {cfg.validation_fraction:g}"
    return flags
