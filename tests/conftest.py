"""Shared fixtures. ``../shared`` data: skipped with a reason where absent, except under
CI=true, where its absence fails the test (CI always has it beside the clone)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "bench"))  # the bench scripts' tools, imported by name
DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(os.environ.get("VOCABTUNE_SHARED", ROOT.parent / "shared"))


def need_shared(*parts: str) -> Path:
    """Path under ../shared, or skip (fail under CI=true) with a clear reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"{path} is absent: this test needs the shared data set beside the repo"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def llm_lingo() -> Path:
    return need_shared("data", "llm-lingo")


@pytest.fixture(scope="session")
def general_data() -> Path:
    return need_shared("data", "general")


@pytest.fixture(scope="session")
def vtt_fixtures() -> Path:
    return need_shared("fixtures", "vtt")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def dead_pid() -> int:
    """The id of a process that has ended: what a folder left by a command killed with
    kill -9 is named for."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(gone.stdout)


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    """A tiny random multilingual Whisper saved like a Hub model (built offline, ~1 MB)."""
    from tiny_whisper import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="session")
def tiny_whisper_en(tmp_path_factory) -> Path:
    """The English-only variant (no language/task tokens), like openai/whisper-*.en."""
    from tiny_whisper import build_tiny_whisper

    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper-en"), multilingual=False)


@pytest.fixture
def hub_server(monkeypatch):
    """A fake Hugging Face Hub on 127.0.0.1 (tests/hubserver.py) with HF_ENDPOINT and HF_TOKEN
    pointing at it and Xet off. Assert on ``hub_server.repos[id].private``, ``.files(id)``,
    ``.repos[id].card``, ``.commits``, ``.uploads()``; seed with ``.add_repo(id, type, private)``."""
    from hubserver import serve

    hub = serve(monkeypatch)
    yield hub
    hub.stop()
