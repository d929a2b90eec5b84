"""Atomic file writes: a crash, a full disk or Ctrl-C never leaves a half-written file.

Every output of the project (VTT files, dataset cards, configs) goes through here. The
data is written to a temporary file in the *same* folder (so the final rename never crosses
a file system), flushed to disk, then moved into place with ``os.replace``, which is atomic
on POSIX and Windows: readers see the old file or the new one, never a mix.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
TEMP_SUFFIX = ".tmp"            # ignored by .gitignore; a stale one is safe to delete


def _umask() -> int:
    """The process umask. Read once at import: setting and restoring it is the only portable
    way to read it, and doing that later could race with threads creating files."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


NEW_FILE_MODE = 0o666 & ~_umask()   # what open() would give a new file
NEW_DIR_MODE = 0o777 & ~_umask()    # what mkdir() would give a new folder


def temp_dir(parent: Path, prefix: str, suffix: str = "") -> Path:
    """A fresh hidden folder in ``parent``, to be renamed into place when complete. Made by
    mkdtemp (a unique name, safely) but given the mode a plain mkdir would: mkdtemp's 0700
    would stay on the finished model, which other users of the machine could not read.
    The name carries our process id, and the folders of the same ``prefix`` whose process is
    gone are deleted first: a merge, an export or a run killed outright (kill -9, power loss,
    out of memory) runs no clean-up, and left a whole model's worth of hidden files behind."""
    remove_orphans(parent, prefix)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", suffix=suffix, dir=parent))
    path.chmod(NEW_DIR_MODE)
    return path


def remove_orphans(parent: Path, prefix: str) -> list[Path]:
    """Delete ``parent``'s folders named by :func:`temp_dir` with ``prefix`` whose process no
    longer runs; a live process's folder is its work in progress, and is left alone."""
    removed = []
    for path in Path(parent).glob(glob.escape(prefix) + "*"):
        pid = path.name[len(prefix):].split("-")[0]
        if path.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            log.info("removed %s, left by a command that was killed", path)
            removed.append(path)
    return removed


def fresh_name(out: Path, what: str) -> Path:
    """A hidden, unused name beside ``out`` (same file system, so renames are atomic)."""
    return out.parent / f".{out.name}.{what}-{os.getpid()}-{secrets.token_hex(4)}"


def check_writable(out: Path, what: str, hint: str) -> None:
    """Make and remove a folder where ``out`` will be written (``out`` itself if it is a
    folder, else its nearest existing parent): a path through a file, a read-only place or
    a pseudo file system (/proc, /sys) fails now, before minutes of work, as one line rather
    than a traceback at the end. Nothing is left behind. ``what`` names the output in the
    message ("cannot write the run here"), ``hint`` says what to change."""
    from .errors import VocabtuneError

    base = Path(out).absolute()
    while not base.exists() and base != base.parent:
        base = base.parent
    try:
        if not base.is_dir():
            raise NotADirectoryError(20, f"{base} is a file, not a folder")
        probe = fresh_name(base / "vocabtune", "probe")
        probe.mkdir()
        probe.rmdir()
    except OSError as e:
        raise VocabtuneError(f"cannot write {what} here ({e.strerror or e})", file=out,
                             hint=hint) from None


def swap_in(new: Path, out: Path) -> None:
    """Rename the finished ``new`` to ``out``. An existing ``out`` (a folder or a file) is
    moved aside first and deleted only once the new one is in place, and put back if that
    rename fails, so ``out`` is always whole: the old version or the new one."""
    if not out.exists():
        os.replace(new, out)
        return
    old = fresh_name(out, "old")
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)
        raise
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


# What a word processor writes when a text file is saved from it by mistake.
_WORD_PROCESSOR_FILES = ((b"{\\rtf", "rich text (RTF)"),
                         (b"PK\x03\x04", "a word-processor document (.docx, .odt or .pages)"))


def read_utf8(path: Path, what: str = "the file") -> str:
    """A text file a person edits (captions, vocabulary) as text, or a one-line error with
    the line of the first bad byte. Read as bytes so a BOM is dropped on every platform;
    Windows tools often save UTF-16 or a legacy code page instead of UTF-8."""
    from .errors import VocabtuneError

    hint = "save the file as UTF-8 in your editor"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise VocabtuneError(f"cannot read {what} ({e.strerror})", file=path,
                             hint="check that it exists and is readable") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise VocabtuneError("saved as UTF-16, not UTF-8", file=path, line=1, hint=hint)
    for magic, kind in _WORD_PROCESSOR_FILES:
        if data.lstrip(b"\xef\xbb\xbf").startswith(magic):
            # RTF is ASCII and would otherwise be read as text: "{\rtf1\ansi…" lines as
            # vocabulary terms, "LoRA\" for LoRA
            raise VocabtuneError(f"saved as {kind}, not plain text", file=path, line=1,
                                 hint="save it as plain text, UTF-8 (TextEdit: Format > Make "
                                      "Plain Text; Word: Save As > Plain Text)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise VocabtuneError(f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
                             file=path, line=data[:e.start].count(b"\n") + 1, hint=hint) from None


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``.

    With ``overwrite=False`` an existing file is never replaced, even one created by
    another process while we were writing: the temp file is *linked* into place, which
    fails if the name exists (``FileExistsError``), instead of checking first and racing.
    """
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.debug("wrote %s (%d bytes)", path, len(data))
    return path


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8",
                      overwrite: bool = True) -> Path:
    """Text version of :func:`atomic_write_bytes`. Newlines are written exactly as given
    (no platform translation), so a file written on Windows reads the same everywhere."""
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite)


def _write_temp(path: Path, data: bytes) -> Path:
    """A fully written, fsync'ed temp file beside ``path``; removed again on any failure."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); the result should get the mode a plain
            # open() would give it, or keep the mode of the file it replaces
            os.chmod(tmp, _mode_for(path))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return NEW_FILE_MODE


def _link_no_clobber(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` only if ``path`` does not exist."""
    try:
        os.link(tmp, path)          # atomic and fails if the name is taken
    except FileExistsError:
        raise
    except OSError:                 # file systems without hard links (FAT, some mounts)
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def files_digest(root: Path, files: list[Path]) -> str:
    """A short digest of ``files``' names (relative to ``root``) and bytes: the same for the
    same content wherever and whenever it was written, unlike a size and mtime."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(root).as_posix()}\n".encode())
        with open(file, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} when the file is absent or holds no object. Invalid
    JSON is the person's problem to fix, so it names the file and line."""
    if not path.is_file():
        return {}
    data = _json_in(path, hint="fix or delete the file")
    return data if isinstance(data, dict) else {}


def load_json_object(path: Path, hint: str) -> dict[str, Any]:
    """The JSON object in ``path``, a file another step (or tool) wrote and the person may
    have edited since, or a one-line error naming the file, the line and ``hint``. Why
    strict, unlike :func:`read_json_object`: the caller needs what is in it, and a list, a
    stray comma or a half-copied file otherwise surfaced as an AttributeError or
    JSONDecodeError traceback far from the file."""
    from .errors import VocabtuneError

    path = Path(path)
    data = _json_in(path, hint)
    if not isinstance(data, dict):
        raise VocabtuneError(f"holds a JSON {type(data).__name__}, not the object expected",
                             file=path, line=1, hint=hint)
    return data


def _json_in(path: Path, hint: str) -> Any:
    """The JSON value in ``path`` (UTF-8, a BOM allowed), or a one-line error naming it."""
    from .errors import VocabtuneError

    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as err:
        raise VocabtuneError(f"cannot read it ({err.strerror})", file=path, hint=hint) from err
    except UnicodeDecodeError as err:
        raise VocabtuneError(f"not UTF-8 JSON (byte at offset {err.start})", file=path, hint=hint) from err
    except json.JSONDecodeError as err:
        raise VocabtuneError(f"invalid JSON ({err.msg})", file=path, line=err.lineno, hint=hint) from err


def process_alive(pid: int) -> bool:
    """Whether a process still runs: a temp folder named for it is then in use."""
    if os.name == "nt":             # os.kill(pid, 0) would terminate it there: keep the folder
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # exists, owned by someone else
        return True
    return True
