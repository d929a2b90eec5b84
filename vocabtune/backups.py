"""Timestamped backups of a person's file before we replace it (``--apply``, ``--force``).

A *copy*, not a rename: the person's file stays in place until its replacement is renamed
over it atomically, so a failure in between loses nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from .errors import VocabtuneError
from .fsutil import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)
MAX_BACKUPS_PER_SECOND = 1000


def keep_backup(path: Path, data: bytes | None = None, now: datetime | None = None) -> Path:
    """Write ``data`` (default: the file's current bytes) to
    ``<stem>.<YYYYmmdd-HHMMSS>.bak<suffix>`` beside ``path`` ("train.vtt" ->
    "train.20250101-120000.bak.vtt", the name ``recordings`` knows to skip) and return it.
    Never overwrites an earlier backup, even one made in the same second."""
    path = Path(path)
    data = path.read_bytes() if data is None else data
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    for n in range(MAX_BACKUPS_PER_SECOND):
        backup = path.with_name(f"{path.stem}.{stamp}{f'-{n}' if n else ''}.bak{path.suffix}")
        try:
            atomic_write_bytes(backup, data, overwrite=False)
        except FileExistsError:
            continue
        log.debug("kept %s as %s", path, backup)
        return backup
    raise VocabtuneError("too many backups of this file in one second", file=path,
                         hint="wait a second and run again")


def write_new(path: Path, text: str, *, force: bool = False) -> Path | None:
    """Write ``text`` to ``path`` atomically without ever losing a file the person made:
    absent, it is written (returns None); present, ``FileExistsError`` unless ``force``
    (also when another process creates it while we write); with ``force`` the old file is
    first copied to a backup (:func:`keep_backup`, returned) and the new one renamed over it."""
    path = Path(path)
    backup = keep_backup(path) if force and path.exists() else None
    atomic_write_text(path, text, overwrite=backup is not None)
    return backup
