"""The two command-line fronts: help everywhere, one-line errors, no tracebacks."""

import subprocess
import sys
from pathlib import Path

import pytest

import finetune
import prepare_data
from vocabtune.cli import run
from vocabtune.errors import VocabtuneError

ROOT = Path(__file__).resolve().parent.parent
PREPARE = ["transcribe", "check", "build", "push", "suggest", "script"]
FINETUNE = ["train", "evaluate", "merge", "transcribe", "push", "export"]


@pytest.mark.parametrize("module,command", [(prepare_data, c) for c in PREPARE] +
                         [(finetune, c) for c in FINETUNE])
def test_every_subcommand_has_help_with_defaults(module, command, capsys):
    with pytest.raises(SystemExit) as exit_:
        module.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "--help" in out


def test_help_does_not_import_torch():
    """--help must be instant: the scripts import heavy libraries only inside commands."""
    code = "import sys, prepare_data, finetune; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_project_error_is_one_line_without_traceback(capsys):
    def boom(_args):
        raise VocabtuneError("end before start", file="rec/a.vtt", line=12, hint="swap the times")

    assert run(boom, None) == 1
    err = capsys.readouterr().err
    assert err == "error: rec/a.vtt:12: end before start — swap the times\n"


def test_script_exits_non_zero_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "finetune.py"), "merge", "--adapter",
                           str(tmp_path / "missing")], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")]


EXIT_SNIPPET = """
import atexit, sys, threading, time
from vocabtune.cli import exit_without_teardown
atexit.register(lambda: open(sys.argv[1], "w").write("cleaned up"))
print("last words", end="")                 # buffered: must still come out
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), print(" from a thread", end=""))).start()
exit_without_teardown(3)
"""


@pytest.mark.parametrize("thread", ["none", "thread"])
def test_exit_without_teardown_keeps_status_output_and_atexit_cleanups(tmp_path, thread):
    marker = tmp_path / "atexit.txt"
    done = subprocess.run([sys.executable, "-c", EXIT_SNIPPET, str(marker), thread],
                          capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "last words" + (" from a thread" if thread == "thread" else "")
    assert marker.read_text() == "cleaned up"


def test_huggingface_hub_warnings_are_printed_once_by_its_own_handler():
    """Passed on to the root logger too, each Hub retry warning came out twice."""
    import logging

    from vocabtune.cli import setup_logging

    logging.getLogger("huggingface_hub").propagate = True
    setup_logging(False)
    assert logging.getLogger("huggingface_hub").propagate is False
