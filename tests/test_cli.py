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
    assert "(default: [" not in out and "(default: (" not in out      # a list as it is typed
    assert "(default: False)" not in out                                # a switch is off unless given


def test_list_defaults_read_as_they_are_typed(capsys):
    with pytest.raises(SystemExit):
        finetune.main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.9 1.1)" in out and "(default: builtin)" in out
    assert "(default: encoder_attn.q_proj encoder_attn.out_proj fc1 fc2)" in out


def _option_help(module, command: str, option: str) -> str:
    """The help text of one option, as --help prints it (wrapping undone)."""
    sub = next(a for a in module.build_parser()._actions if a.dest == "command")
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return action.help


@pytest.mark.parametrize("command", ["transcribe", "check", "build", "script"])
def test_recordings_help_names_every_audio_format_found(command):
    """It listed mp3/m4a/wav/flac/ogg while aiff, mov, 3gp, wma, mkv ... were found too."""
    from vocabtune.config import AUDIO_SUFFIXES
    words = _option_help(prepare_data, command, "--recordings")
    words = words.replace(",", " ").replace("(", " ").replace(")", " ").split()
    assert [s for s in AUDIO_SUFFIXES if s[1:] not in words] == []


def test_validation_fraction_help_names_every_validation_name():
    from vocabtune.config import VALIDATION_PREFIXES
    text = _option_help(prepare_data, "build", "--validation-fraction")
    assert all(f"{prefix}*" in text for prefix in VALIDATION_PREFIXES)


def test_force_help_says_what_is_kept_or_replaced():
    """script --force backs the old scripts up (it said "overwrite"); export replaces an
    earlier export without --force (it said --force was needed to replace one)."""
    assert ".bak.txt" in _option_help(prepare_data, "script", "--force")
    assert "earlier export is replaced without it" in _option_help(finetune, "export", "--force")


@pytest.mark.parametrize("module,commands", [(prepare_data, PREPARE), (finetune, FINETUNE)])
def test_the_flow_in_the_epilog_names_every_command(module, commands):
    """finetune.py --help left export out of the flow, prepare_data.py script and suggest."""
    epilog = module.build_parser().epilog
    assert [c for c in commands if f".py {c}" not in epilog] == []


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


@pytest.mark.parametrize("make", [
    lambda: __import__("torch").OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 14.75 GiB"),
    lambda: RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.2 GB)"),
    lambda: RuntimeError("CUDA failed with error out of memory")],          # CTranslate2
    ids=["cuda", "mps", "ctranslate2"])
def test_a_gpu_out_of_memory_is_one_line_naming_what_to_do(make, capsys):
    import torch  # noqa: F401  (as any command that reaches a GPU has)

    def command(_args):
        raise make()

    assert run(command, None) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the GPU ran out of memory (") and err.count("\n") == 1, err
    assert "--batch-size" in err and "--device cpu" in err


def test_other_runtime_errors_keep_their_traceback():
    def command(_args):
        raise RuntimeError("expected m1 and m2 to have the same dtype")

    with pytest.raises(RuntimeError, match="same dtype"):
        run(command, None)


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


def test_torch_info_lines_stay_quiet_even_before_torch_sets_up_its_logging():
    """Ctrl-C during `import torch` left torch's loggers at the root's INFO, and its exit
    handler printed "FakeTensor cache stats: cache_hits: 0 …" after "interrupted:"."""
    code = ("import logging, sys; from vocabtune.cli import setup_logging; setup_logging(False); "
            "print(logging.getLogger('torch._subclasses.fake_tensor').isEnabledFor(logging.INFO), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


TERM_SNIPPET = """
import sys, time
from pathlib import Path
from vocabtune.augment import copies_folder
from vocabtune.cli import run

def command(_args):
    with copies_folder(Path(sys.argv[1]) / "run") as folder:
        Path(sys.argv[2]).write_text(str(folder))
        time.sleep(60)

sys.exit(run(command, None))
"""


def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    """``kill`` (or a scheduler's time limit) used to end the process on the spot, leaving a
    run's temporary folder of speed copies behind; it now unwinds as Ctrl-C does."""
    import signal
    import time

    ready = tmp_path / "ready.txt"
    proc = subprocess.Popen([sys.executable, "-c", TERM_SNIPPET, str(tmp_path), str(ready)],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    folder = Path(ready.read_text())
    assert folder.is_dir()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "terminated: nothing half-written" in err
    assert "Traceback" not in err and not folder.exists()
