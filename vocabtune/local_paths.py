"""Keep a person's local folder names out of what is pushed to the Hub (pure).

The metadata files that travel with a model or dataset (``vocabtune_train.json``,
``report.json``, ``report.md`` …) record where things were on the person's machine, e.g.
``/home/alice/clients/acme/data/voice``. On the Hub that says nothing useful to a reader and
may say too much about the person, so uploads carry the last part of each such path only
(``voice``), as the model card already does. Relative paths and Hub ids are kept: they
name nothing outside the project.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

SCRUBBED_FILES = ("vocabtune_train.json", "vocabtune_merge.json", "vocabtune_recipe.json",
                  "vocabtune_export.json", "vocabtune.json", "report.json", "report.md",
                  "adapter_config.json")      # base_model_name_or_path: a local base is of no use there
_WINDOWS = re.compile(r"^[A-Za-z]:[\\/]")
# an absolute POSIX path or ~/… in running text: not inside a URL (after ":", "/", a word)
_IN_TEXT = re.compile(r"(?<![\w:/.~-])(?:~|/)(?:[\w.@+-]+/)*[\w.@+-]+")


def is_local_path(text: str) -> bool:
    """``~/…``, a Windows drive path, or an absolute path of two or more parts whose first
    folder exists here (/home, /Users, /tmp …). The last rule keeps terms and API routes
    that merely start with a slash ("/imagine", "/v1/chat/completions") as they are."""
    if text.startswith("~") or _WINDOWS.match(text):
        return True
    parts = PurePosixPath(text).parts
    return text.startswith("/") and len(parts) >= 3 and Path("/", parts[1]).is_dir()


def last_part(path: str) -> str:
    pure = PureWindowsPath(path) if _WINDOWS.match(path) else PurePosixPath(path)
    return pure.name or path


def hidden(text: str) -> str:
    """``text`` cut to its last part if it is a local path, else as it is."""
    return last_part(text) if is_local_path(text) else text


def hide_in_json(value: Any) -> Any:
    """``value`` with every string that is an absolute local path cut to its last part."""
    if isinstance(value, str):
        return hidden(value)
    if isinstance(value, list):
        return [hide_in_json(v) for v in value]
    if isinstance(value, dict):
        return {k: hide_in_json(v) for k, v in value.items()}
    return value


def hide_in_text(text: str) -> str:
    return _IN_TEXT.sub(lambda m: hidden(m.group()), text)


def scrubbed(name: str, data: bytes) -> bytes:
    """The bytes to upload for a file called ``name``: local paths hidden in the metadata
    files vocabtune writes, anything else (and a file that does not parse) unchanged."""
    if name not in SCRUBBED_FILES:
        return data
    try:
        text = data.decode("utf-8")
        if name.endswith(".json"):
            return (json.dumps(hide_in_json(json.loads(text)), indent=2, ensure_ascii=False)
                    + "\n").encode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return data
    return hide_in_text(text).encode("utf-8")
