#!/usr/bin/env python3
"""prepare_data.py: from your recordings of your vocabulary to a train/validation dataset.

Put recordings (mp3, m4a, wav, flac, ogg, aiff…) in recordings/ and your terms, one per line, in
vocab/terms.txt; then run the commands below in order. Nothing you edit by hand is ever
overwritten.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vocabtune import config as C
from vocabtune.cli import HelpFormatter, add_engine_flags, exit_without_teardown, run, setup_logging

EPILOG = """\
the flow:
  prepare_data.py script       # optional: sentences to read, covering every term
  prepare_data.py transcribe   # recordings/*.mp3 -> recordings/*.vtt (base Whisper)
  (correct the .vtt files by hand in any editor)
  prepare_data.py suggest recordings/train.vtt   # proposes term corrections
  prepare_data.py check        # points at problems: file:line: what — how to fix
  prepare_data.py build        # -> data/<name>/ with train and validation splits
  prepare_data.py push --repo you/my-voice   # private on the Hugging Face Hub
"""


def cmd_transcribe(a: argparse.Namespace) -> int:
    from vocabtune.transcribe import transcribe_recordings
    cfg = C.TranscribeConfig(recordings=a.recordings, model=a.model, language=a.language,
                             force=a.force, vocab=a.vocab, prompt_vocab=a.prompt_vocab,
                             device=a.device, engine=a.engine,
                             compute_type=a.compute_type)
    failures: list = []
    written = transcribe_recordings(cfg, failures)
    for path in written:
        print(f"wrote {path}")
    for err in failures:
        print(f"error: {err}", file=sys.stderr)
    if not written and not failures:
        print("nothing to transcribe: every recording already has a .vtt (use --force to redo)")
    return 1 if failures else 0


def cmd_check(a: argparse.Namespace) -> int:
    from vocabtune.check import check_recordings
    report = check_recordings(a.recordings, a.vocab)
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 1 if report.errors else 0


def cmd_build(a: argparse.Namespace) -> int:
    from vocabtune.build import build_dataset
    cfg = C.BuildConfig(recordings=a.recordings, vocab=a.vocab, out=a.out,
                        validation_fraction=getattr(a, "validation_fraction", 0.0))
    result = build_dataset(cfg)
    print(result.summary)
    print(f"wrote {result.out}")
    return 0


def cmd_push(a: argparse.Namespace) -> int:
    from vocabtune.build import default_dataset_dir
    from vocabtune.hub import push_dataset
    if a.dataset is None:       # here, inside run(): "no dataset" or "several" is one line
        a.dataset = default_dataset_dir()
    url = push_dataset(C.PushConfig(path=a.dataset, repo=a.repo, public=a.public))
    print(f"pushed {a.dataset} to {url} ({'public' if a.public else 'private'})")
    return 0


def cmd_suggest(a: argparse.Namespace) -> int:
    from vocabtune.suggest import suggest_command
    return suggest_command(a.vtt, a.vocab, apply=a.apply, yes=a.yes, echo=print)


def cmd_script(a: argparse.Namespace) -> int:
    from vocabtune.script import write_scripts
    for path in write_scripts(a.vocab, a.recordings, train_repeats=a.train_repeats, seed=a.seed,
                              force=a.force, language=a.language):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prepare_data.py", description=__doc__,
                                epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
        sp.set_defaults(func=fn)
        return sp

    def recordings(sp):
        sp.add_argument("--recordings", type=Path, default=Path("recordings"),
                        help=f"folder of recordings ({', '.join(x[1:] for x in C.AUDIO_SUFFIXES)}) "
                             "and their .vtt files")

    def vocab(sp):
        sp.add_argument("--vocab", type=Path, default=Path("vocab"),
                        help="folder of vocabulary files (*.txt, one term per line)")

    t = add("transcribe", cmd_transcribe,
            "transcribe every recording that has no .vtt yet with base Whisper")
    recordings(t)
    t.add_argument("--model", default=C.DEFAULT_MODEL, help="Whisper Hub id or local directory")
    t.add_argument("--language", default=None,
                   help="spoken language (ISO code; default: the language the model was trained "
                        f"in when it is one vocabtune made, else {C.DEFAULT_LANGUAGE})")
    t.add_argument("--force", action="store_true",
                   help="re-transcribe even if a .vtt exists (the old one is kept as a timestamped backup)")
    t.add_argument("--prompt-vocab", action="store_true",
                   help="feed the vocabulary to Whisper as a prompt so terms come out spelt right")
    vocab(t)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    add_engine_flags(t)

    c = add("check", cmd_check, "check every recording/.vtt pair; exit non-zero on errors")
    recordings(c)
    vocab(c)

    b = add("build", cmd_build, "pack corrected cues into <= 30 s chunks and write the dataset")
    recordings(b)
    vocab(b)
    b.add_argument("--out", type=Path, default=None,
                   help="dataset folder (default: data/<project folder name> for a folder called "
                        "recordings, else data/<that folder's name>)")
    # SUPPRESS: the help states the real default (0.1), which applies only without a
    # validation recording; build warns when a fraction given is ignored for one
    b.add_argument("--validation-fraction", type=float, default=argparse.SUPPRESS,
                   help="share of chunks held out for validation when no recording is named "
                        f"{'*/'.join(C.VALIDATION_PREFIXES)}* (default: 0.1)")

    u = add("push", cmd_push, "push the dataset to the Hugging Face Hub (private unless --public)")
    u.add_argument("--dataset", type=Path, default=None,
                   help="dataset folder written by build (default: the only folder under data/)")
    u.add_argument("--repo", required=True, help="Hub repo id, e.g. you/my-voice-dataset")
    u.add_argument("--public", action="store_true", help="make the repo public (it is your voice)")

    s = add("suggest", cmd_suggest,
            "propose vocabulary corrections for a base .vtt (writes <name>.suggested.vtt)")
    s.add_argument("vtt", type=Path, nargs="+", help="the .vtt file(s) to read")
    vocab(s)
    s.add_argument("--apply", action="store_true",
                   help="write the suggestions into the .vtt itself (asks first; a backup is kept)")
    s.add_argument("--yes", action="store_true", help="with --apply: do not ask")

    r = add("script", cmd_script, "write reading scripts that cover every vocabulary term "
                                 "(English sentences)")
    vocab(r)
    recordings(r)
    r.add_argument("--train-repeats", type=int, default=3, help="times each term appears in train")
    r.add_argument("--language", default=C.DEFAULT_LANGUAGE,
                   help="the language you will read in (ISO code); the sentences are English, "
                        "so another language is refused")
    r.add_argument("--seed", type=int, default=0, help="random seed for sentence choice")
    r.add_argument("--force", action="store_true",
                   help="write new scripts over existing ones (the old ones are kept as .bak.txt)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run(args.func, args)


if __name__ == "__main__":
    exit_without_teardown(main())
