"""The one exception people see: where (file, line), what is wrong, and how to fix it.

Library code raises :class:`VocabtuneError` at the boundary where it knows the file and
line; the CLIs print ``str(err)`` without a traceback and exit non-zero.
"""

from __future__ import annotations

from pathlib import Path


class VocabtuneError(Exception):
    """A problem with the user's input or environment, phrased for a person."""

    def __init__(self, message: str, *, file: str | Path | None = None,
                 line: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.hint = hint

    def __str__(self) -> str:
        return format_location(self.file, self.line, self.message, self.hint)


def format_location(file: str | None, line: int | None, message: str,
                    hint: str | None = None) -> str:
    """``file:line: message — hint``, leaving out the parts that are unknown."""
    where = ""
    if file:
        where = f"{file}:{line}: " if line else f"{file}: "
    return f"{where}{message}" + (f" — {hint}" if hint else "")
