"""Find the recordings in a folder, pair each with its caption file, and assign its split.

Layout (one folder, not searched recursively; recordings in a subfolder are named in a
warning)::

    recordings/train.mp3         audio: any suffix in config.AUDIO_SUFFIXES, any case
    recordings/train.vtt         its captions: the same stem + ".vtt"
    recordings/validation.mp3    -> the validation split (see split_for)

Files this project writes beside them are not captions to pair: ``*.finetuned.vtt``
(transcripts by a fine-tuned model), ``*.suggested.vtt`` (``suggest`` output),
``*.bak.vtt`` (backups kept by ``--force``); reading scripts (``*-script.txt``) and any
other file are ignored too, as are hidden files (editor swap files, ``.DS_Store``).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .config import AUDIO_SUFFIXES, VALIDATION_PREFIXES
from .errors import VocabtuneError
from .schema import Problem, Severity

log = logging.getLogger(__name__)

TRAIN, VALIDATION = "train", "validation"
DERIVED_VTT_SUFFIXES = (".finetuned.vtt", ".suggested.vtt", ".bak.vtt")
# A prefix of config.VALIDATION_PREFIXES, then the end of the name or a non-letter: "val.mp3",
# "validation_2.mp3", "valid.wav", "dev-take3.mp3" and "Val2.m4a" are validation;
# "development.mp3", "valentine.mp3", "devices.mp3" and "validity.mp3" are ordinary words and
# stay in train. "test.mp3" stays in train too: bench/demo.sh builds the general-speech set
# from a lone test.mp3. A letter is any letter: "Validé 3.m4a" and "Valérie.m4a" are words too
# ([a-z] let the accented ones into validation).
_VALIDATION_NAME = re.compile(
    rf"(?:{'|'.join(map(re.escape, sorted(VALIDATION_PREFIXES, key=len, reverse=True)))})(?![^\W\d_])")


@dataclass(frozen=True)
class Recording:
    """One recording and its caption file (None when it has none yet)."""

    audio: Path
    vtt: Path | None
    split: str                   # "train" or "validation"

    @property
    def name(self) -> str:
        """The audio file's name: the ``source`` column of the dataset."""
        return self.audio.name


def split_for(name: str) -> str:
    """``validation`` for names starting validation/valid/val/dev (any case) followed by the end
    or a non-letter; ``train`` for the rest."""
    stem = Path(name).stem.casefold()
    return VALIDATION if _VALIDATION_NAME.match(stem) else TRAIN


def name_key(name: str) -> str:
    """A file name as pairing compares it. macOS writes accented file names decomposed
    ("U" + combining diaeresis) while editors save the text composed, so "Ünïcode talk.mp3"
    and its "Ünïcode talk.vtt" can differ in bytes though they look the same (NFC)."""
    return unicodedata.normalize("NFC", name)


def file_key(name: str) -> str:
    """A file name as :func:`same_name_in` compares it: :func:`name_key`, with the suffix in
    any case. Camera and Windows tools write "Talk.VTT"; ``is_caption`` pairs it with
    Talk.MP3, so transcribe must see it too, not write a second "Talk.vtt" beside it."""
    path = Path(name)
    return name_key(path.stem) + path.suffix.lower()


def same_name_in(folder: Path, name: str) -> Path:
    """``folder / name``, or the file already in ``folder`` whose name differs from it only
    in Unicode form or the case of its suffix, so a caption file is found (and never
    doubled) whatever the form."""
    path = folder / name
    if path.exists() or not folder.is_dir():
        return path
    key = file_key(name)
    return next((p for p in sorted(folder.iterdir()) if file_key(p.name) == key), path)


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def is_caption(path: Path) -> bool:
    """A person's caption file, not one of the files derived from it."""
    name = path.name.lower()
    return (name.endswith(".vtt") and not name.startswith(".")
            and not name.endswith(DERIVED_VTT_SUFFIXES))


def discover_recordings(folder: Path) -> tuple[list[Recording], list[Problem]]:
    """Recordings in ``folder`` sorted by name, and the problems of the folder's layout.

    Raises :class:`VocabtuneError` only when the folder itself is missing; everything
    else (no recordings, captions without audio, audio without captions, two recordings
    with one name) comes back as ERROR problems so ``check`` can list them all at once.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VocabtuneError("recordings folder not found", file=folder,
                             hint="put your recordings there or pass --recordings DIR")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    audio = [p for p in files if is_audio(p)]
    captions: dict[str, Path] = {}
    problems = _duplicate_stems(audio) + _duplicate_captions(
        [p for p in files if is_caption(p)], captions)
    recordings = [Recording(a, captions.get(name_key(a.stem)), split_for(a.name)) for a in audio]
    nested = _in_subfolders(folder)
    problems += _unpaired(recordings, captions, folder, [p.name for p in files], bool(nested)) + nested
    for rec in recordings:
        log.debug("%s: %s, captions %s", rec.name, rec.split, rec.vtt.name if rec.vtt else "none")
    return recordings, problems


def _duplicate_stems(audio: list[Path]) -> list[Problem]:
    """train.mp3 + train.wav would share train.vtt, and one would be used twice."""
    seen: dict[str, Path] = {}
    problems = []
    for path in audio:
        first = seen.setdefault(name_key(path.stem), path)
        if first is not path:
            problems.append(Problem(Severity.ERROR, str(path), None,
                                    f'two recordings are named "{path.stem}" ({first.name} and {path.name})',
                                    "rename or remove one of them"))
    return problems


def _duplicate_captions(paths: list[Path], captions: dict[str, Path]) -> list[Problem]:
    """Fill ``captions`` (stem -> file) and refuse two files for one stem: "Talk.VTT" and
    "Talk.vtt" are both captions of Talk.mp3, and silently using one could build from the
    uncorrected draft."""
    problems = []
    for path in paths:
        first = captions.setdefault(name_key(path.stem), path)
        if first is not path:
            problems.append(Problem(Severity.ERROR, str(path), None,
                                    f'two caption files are named "{path.stem}" ({first.name} and '
                                    f"{path.name})",
                                    "keep the one you corrected and move the other out of this folder"))
    return problems


def _in_subfolders(folder: Path) -> list[Problem]:
    """A WARNING per subfolder holding recordings: takes sorted into ``recordings/day2/``
    were silently left out of the dataset. Not searched for real: a recording's name is
    its identity (the ``source`` column, its split, its caption file) and subfolders would
    make two "train.mp3" possible; hidden folders (``__MACOSX`` holds only ``._*``) are
    skipped."""
    problems = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found = sorted(p for p in sub.rglob("*") if p.is_file() and is_audio(p)
                       and not any(part.startswith(".") for part in p.relative_to(sub).parts))
        if found:
            names = ", ".join(p.name for p in found[:3]) + (", …" if len(found) > 3 else "")
            problems.append(Problem(Severity.WARNING, str(sub), None,
                                    f"not used: {len(found)} recording(s) in this subfolder ({names}); "
                                    "subfolders are not searched",
                                    f"move the ones you want used into {folder}, each with its .vtt"))
    return problems


def _unpaired(recordings: list[Recording], captions: dict[str, Path],
              folder: Path, names: list[str], nested: bool = False) -> list[Problem]:
    """ERRORs for recordings without captions and captions without recordings, or for no
    recordings at all. ``nested``: subfolders hold recordings (a phone's export of voice
    memos in a folder per day); "add audio files to this folder" then sent the person
    looking for files they had already added."""
    if not recordings and nested:
        return [Problem(Severity.ERROR, str(folder), None,
                        "no recordings directly in this folder, only in subfolders (not searched)",
                        f"move them, each with its .vtt, into {folder} itself (each subfolder "
                        "is named in a warning)")]
    if not recordings:
        return [Problem(Severity.ERROR, str(folder), None, "no recordings found",
                        f"add audio files ({', '.join(AUDIO_SUFFIXES[:5])} …) to this folder")]
    problems = [_no_captions(r.audio, names) for r in recordings if r.vtt is None]
    stems = {name_key(r.audio.stem) for r in recordings}
    problems += [Problem(Severity.ERROR, str(path), None, "caption file has no recording",
                         f"name it after its recording ({stem}.vtt beside {stem}.mp3) "
                         "or move it out of this folder")
                 for stem, path in sorted(captions.items()) if stem not in stems]
    return problems


def _no_captions(audio: Path, names: list[str]) -> Problem:
    """A recording without ``<stem>.vtt``. Where a file of the same stem is there, it is
    most likely the person's corrected captions under another name — saved as SRT by a
    subtitle editor, or as ``train.vtt.txt`` by Notepad — and running ``transcribe`` as
    told would have made a fresh draft beside it, their corrections unused."""
    stem = audio.stem
    other = next((n for n in names if name_key(n).startswith(name_key(stem) + ".")
                  and (n.lower().endswith(".srt") or ".vtt" in n.lower())), None)
    if other is None:
        return Problem(Severity.ERROR, str(audio), None, "recording has no caption file",
                       f"run prepare_data.py transcribe to create {stem}.vtt")
    if other.lower().endswith(".srt"):
        hint = (f"vocabtune reads WebVTT: save it as {stem}.vtt, or convert it with python -c "
                f"\"import webvtt; webvtt.from_srt('{(audio.parent / other).as_posix()}').save()\"")
    else:
        hint = f"if it holds your corrections, rename it to {stem}.vtt"
    return Problem(Severity.ERROR, str(audio), None,
                   f"recording has no caption file {stem}.vtt (there is {other})", hint)
