"""Shared plumbing for the two command-line fronts (prepare_data.py, finetune.py).

Kept tiny on purpose: the scripts parse arguments, build a config and call one library
function; this module turns project errors into one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import Callable, NoReturn

from .errors import VocabtuneError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143           # 128 + SIGTERM, as a shell reports a process it ended


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's time limit, a closing terminal session) raised
    where the program is, as Ctrl-C is. Why: Python's default for SIGTERM ends the process
    on the spot, so no ``finally`` runs and a build's or a run's temporary folders (whole
    datasets' audio, the speed copies) stay on disk; as an exception, every clean-up that
    handles Ctrl-C handles this too."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults on every flag and keep the hand-wrapped epilog examples. "(default:
    None)" says nothing (a required flag, or one whose help words its own default such as
    "default runs/<dataset name>"), so it is left out, as is "(default: False)" on a switch
    such as --resume. A list default is shown as it is typed ("0.9 1.1", not "['0.9', '1.1']")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        if action.nargs == 0 and action.default is False:       # store_true: off unless given
            return action.help
        if isinstance(action.default, (list, tuple)):
            typed = " ".join(map(str, action.default)).replace("%", "%%")  # help is %-formatted
            return f"{action.help} (default: {typed})"
        return super()._get_help_string(action)


def setup_logging(verbose: bool) -> None:
    """Our own progress lines on stderr; the libraries' chatter only with --verbose."""
    if not verbose:
        # read by transformers when it is first imported (inside a command, after this)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(message)s", stream=sys.stderr)
    # torch: Ctrl-C while torch is being imported leaves its logging unconfigured, and an exit
    # handler of torch's then printed "FakeTensor cache stats: …" under "interrupted:"
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "urllib3", "filelock", "fsspec", "datasets",
                  "matplotlib", "huggingface_hub", "faster_whisper", "torch"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # huggingface_hub prints its warnings (retries, "no files have been modified") with a
    # handler of its own, added when it is imported; passed on to ours too, each came out twice
    logging.getLogger("huggingface_hub").propagate = False


def run(command: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run one subcommand; a project error becomes ``error: <file>:<line>: <what> — <fix>``."""
    import signal
    import threading

    in_main = threading.current_thread() is threading.main_thread()  # signal() works only there
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        status = command(args)
    except VocabtuneError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except RuntimeError as err:         # torch's OutOfMemoryError is one
        if not out_of_memory(err):
            raise
        print(f"error: {out_of_memory_error(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as err:
        ended = "terminated" if isinstance(err, Terminated) else "interrupted"
        print(f"{ended}: nothing half-written was kept", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(err, Terminated) else EXIT_INTERRUPTED
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_OK if status is None else int(status)


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is a GPU running out of memory: torch's OutOfMemoryError (CUDA), or
    the RuntimeError torch's MPS backend and CTranslate2 raise ("... out of memory"). torch
    is looked at only if a command imported it (importing it here would slow --help)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(err, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def out_of_memory_error(err: BaseException) -> VocabtuneError:
    """A GPU that ran out of memory, for a person. Why: ``--device auto`` picks a GPU
    however full other programs have made it, and torch's own report is a 40-line
    traceback ending in allocator advice."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return VocabtuneError(f"the GPU ran out of memory ({first.split('. ')[0]})",
                          hint="free it (nvidia-smi lists what uses it), use a smaller --batch-size "
                               "(and --eval-batch-size when training) or a smaller model, or --device cpu")


def exit_without_teardown(status: int) -> NoReturn:
    """End a script run with ``status``: every atexit handler runs, then the process ends
    without the interpreter's teardown.

    Why: after a command that imported torch and transformers, Python spends about a second
    (measured: 1.0-1.3 s after ``finetune.py train``) destroying hundreds of thousands of
    objects and modules that the OS reclaims anyway. The cleanups libraries register
    (temporary folders, logging, multiprocessing) are atexit handlers and still run; our own
    files are written atomically and closed before a command returns. Where another
    non-daemon thread is still alive we exit normally, so it is joined as usual."""
    import atexit
    import threading

    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):       # a closed pipe (`| head`): nothing left to say
            pass
    os._exit(status)


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    """--engine and --compute-type, the same on both transcribe commands."""
    from .config import TranscribeConfig
    from .ct2_engine import COMPUTE_TYPES, ENGINES

    parser.add_argument("--engine", choices=ENGINES, default=TranscribeConfig.engine,
                        help="ctranslate2: faster-whisper on a CTranslate2 copy of the model, converted "
                             "once and cached in ~/.cache/vocabtune/ct2 ($VOCABTUNE_CACHE/ct2 if set); about 5x "
                             "faster than transformers on a CPU; falls back to transformers if it cannot "
                             "run. transformers: PyTorch generate")
    parser.add_argument("--compute-type", choices=COMPUTE_TYPES, default=TranscribeConfig.compute_type,
                        metavar="TYPE",
                        help="CTranslate2 weights/compute type: default = int8 on CPU, float16 on CUDA "
                             "(int8_float32 or float32 on GPUs without fast float16); "
                             "auto = CTranslate2's fastest for the device; or int8, float16, float32, ...")
