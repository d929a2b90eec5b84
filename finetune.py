#!/usr/bin/env python3
"""finetune.py: teach Whisper your vocabulary (LoRA), score it, merge it, use it, share it.

Takes the dataset written by prepare_data.py build. Runs on a CPU; uses a CUDA GPU (with
mixed precision) or Apple MPS when there is one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vocabtune import config as C
from vocabtune.cli import HelpFormatter, add_engine_flags, exit_without_teardown, run, setup_logging

EPILOG = """\
the flow:
  finetune.py train --dataset data/my-voice            # -> runs/my-voice/ (adapter, checkpoints)
  finetune.py evaluate --model runs/my-voice/best --dataset data/my-voice
  finetune.py merge --adapter runs/my-voice/best       # -> models/my-voice-merged/
  finetune.py transcribe --model models/my-voice-merged recordings/validation.mp3
  finetune.py export --model models/my-voice-merged    # -> models/my-voice-merged-ct2-int8/
  finetune.py push --model models/my-voice-merged --repo you/whisper-my-voice
"""


def cmd_train(a: argparse.Namespace) -> int:
    from vocabtune.training import train
    cfg = C.TrainConfig(
        dataset=a.dataset, vocab=a.vocab, base_model=a.base_model, language=a.language,
        output_dir=a.output_dir or Path("runs") / a.dataset.resolve().name, epochs=a.epochs,
        learning_rate=a.learning_rate, batch_size=a.batch_size,
        gradient_accumulation=a.gradient_accumulation, lora_r=a.lora_r, lora_alpha=a.lora_alpha,
        lora_dropout=a.lora_dropout, target_modules=tuple(a.target_modules), lora_scope=a.lora_scope,
        replay=tuple(a.replay), speed_perturb=speed_factors(a.speed_perturb),
        context_weight=a.context_weight, timestamp_share=a.timestamp_share,
        prompt_share=a.prompt_share, max_steps=a.max_steps,
        resume=a.resume, seed=a.seed, device=a.device)
    result = train(cfg)
    if result.summary:          # empty on all but the main process under torchrun
        print(result.summary)
    return 0


def speed_factors(words: list[str]) -> tuple[float, ...]:
    """``--speed-perturb 0.9 1.1`` or ``--speed-perturb none``."""
    from vocabtune.augment import check_factors
    from vocabtune.errors import VocabtuneError

    if words == ["none"]:
        return ()
    try:
        return check_factors([float(w) for w in words])
    except ValueError:
        raise VocabtuneError(f"--speed-perturb takes numbers such as 0.9 1.1, or none, not "
                             f"{' '.join(words)}", hint="see finetune.py train --help") from None


def cmd_evaluate(a: argparse.Namespace) -> int:
    from vocabtune.evaluation import evaluate
    cfg = C.EvalConfig(model=a.model, dataset=a.dataset, vocab=a.vocab, base_model=a.base_model,
                       language=a.language, json_path=a.json, compare=a.compare,
                       general_dataset=a.general, batch_size=a.batch_size, device=a.device)
    result = evaluate(cfg)
    print(result.table)
    for path in result.written:
        print(f"wrote {path}")
    return 0


def cmd_merge(a: argparse.Namespace) -> int:
    from vocabtune.merge import merge_adapter
    out = merge_adapter(C.MergeConfig(adapter=a.adapter, out=a.out, language=a.language))
    print(f"wrote {out}")
    return 0


def cmd_transcribe(a: argparse.Namespace) -> int:
    from vocabtune.transcribe import transcribe_files
    cfg = C.TranscribeConfig(files=tuple(a.audio), out_dir=a.out, model=a.model,
                             language=a.language, suffix=".finetuned.vtt", force=a.force,
                             vocab=a.vocab, prompt_vocab=a.prompt_vocab,
                             device=a.device, engine=a.engine,
                             compute_type=a.compute_type)
    for line in transcribe_files(cfg):
        print(line)
    return 0


def cmd_push(a: argparse.Namespace) -> int:
    from vocabtune.hub import push_model
    url = push_model(C.PushConfig(path=a.model, repo=a.repo, public=a.public,
                                  adapter=a.adapter, adapter_repo=a.adapter_repo,
                                  ctranslate2=a.ctranslate2))
    print(f"pushed {a.model} to {url} ({'public' if a.public else 'private'})")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from vocabtune.export import export_ctranslate2
    out = export_ctranslate2(a.model, a.out, quantization=a.quantization, force=a.force)
    print(f"wrote {out} (load it with faster_whisper.WhisperModel({str(out)!r}))")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="finetune.py", description=__doc__, epilog=EPILOG,
                                formatter_class=HelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
        sp.set_defaults(func=fn)
        return sp

    def common(sp, batch: int | None = 8, devices: str = "auto, cpu, cuda, cuda:1, mps",
               vocab: str = "vocabulary folder (if absent or empty: the terms the dataset was built with)",
               trained: bool = True):
        sp.add_argument("--vocab", type=Path, default=Path("vocab"), help=vocab)
        if trained:         # a model vocabtune trained knows its language
            sp.add_argument("--language", default=None,
                            help="spoken language (ISO code; default: the language the model was "
                                 f"trained in, else {C.DEFAULT_LANGUAGE})")
        else:
            sp.add_argument("--language", default=None,
                            help="spoken language (ISO code; default: the one the dataset's caption "
                                 f"files name, as transcribe writes them, else {C.DEFAULT_LANGUAGE})")
        sp.add_argument("--device", default="auto", help=devices)
        if batch is not None:       # long-form transcription decodes one window after another
            sp.add_argument("--batch-size", type=int, default=batch, help="examples per batch")

    d = C.TrainConfig()
    t = add("train", cmd_train, "LoRA fine-tune Whisper on a dataset written by prepare_data.py build")
    t.add_argument("--dataset", type=Path, required=True, help="dataset folder (data/<name>)")
    t.add_argument("--base-model", default=d.base_model, help="Whisper Hub id or local directory")
    t.add_argument("--output-dir", type=Path, default=None, help="run folder (default runs/<dataset name>)")
    t.add_argument("--epochs", type=float, default=d.epochs, help="passes over the train split")
    t.add_argument("--learning-rate", type=float, default=d.learning_rate, help="peak learning rate")
    t.add_argument("--gradient-accumulation", type=int, default=d.gradient_accumulation,
                   help="batches per optimiser step")
    t.add_argument("--lora-r", type=int, default=d.lora_r, help="LoRA rank")
    t.add_argument("--lora-alpha", type=int, default=d.lora_alpha, help="LoRA alpha")
    t.add_argument("--lora-dropout", type=float, default=d.lora_dropout, help="LoRA dropout")
    t.add_argument("--target-modules", nargs="+", default=list(d.target_modules),
                   help="linear layers that get LoRA adapters")
    t.add_argument("--lora-scope", choices=["decoder", "all"], default=d.lora_scope,
                   help="decoder: adapters in the decoder only, the frozen encoder runs once per chunk "
                        "(fast); all: encoder and decoder")
    t.add_argument("--replay", nargs="+", default=list(d.replay), metavar="SOURCE",
                   help="general speech mixed into training so the model keeps its general English: "
                        "builtin (4 min of everyday sentences shipped with vocabtune), dataset folders "
                        "from prepare_data.py build (uncorrected transcripts are fine), or none")
    t.add_argument("--speed-perturb", nargs="+", default=[f"{f:g}" for f in d.speed_perturb] or ["none"],
                   metavar="FACTOR",
                   help="also train on copies of your train audio played at these speeds, or none")
    t.add_argument("--context-weight", type=float, default=d.context_weight,
                   help="loss weight of the other words in a chunk that holds vocabulary terms "
                        "(1: every word counts alike; lower makes training dwell on the terms)")
    t.add_argument("--timestamp-share", type=float, default=d.timestamp_share,
                   help="share of targets that carry Whisper timestamp tokens (keeps captions working)")
    t.add_argument("--prompt-share", type=float, default=d.prompt_share,
                   help="share of targets conditioned on the previous chunk's text as a prompt")
    t.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N steps (-1: use --epochs)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the last checkpoint (with the same flags as the interrupted run)")
    t.add_argument("--seed", type=int, default=d.seed, help="random seed")
    common(t, batch=d.batch_size, devices="auto, cpu, cuda, mps (pick a GPU with CUDA_VISIBLE_DEVICES=1)",
           trained=False)

    e = add("evaluate", cmd_evaluate, "score a model (adapter, merged dir or Hub id) on the validation split")
    e.add_argument("--model", required=True, help="adapter folder, merged model folder or Hub id")
    e.add_argument("--dataset", type=Path, required=True, help="dataset folder (data/<name>)")
    e.add_argument("--base-model", default=None, help="model to compare against (default: the adapter's base)")
    e.add_argument("--json", type=Path, default=None, help="also write the report JSON here")
    e.add_argument("--compare", action="store_true",
                   help="score base, base + prompt, fine-tuned and fine-tuned + prompt")
    e.add_argument("--general", type=Path, default=None,
                   help="a second dataset of general speech to measure forgetting")
    common(e)

    m = add("merge", cmd_merge, "merge a LoRA adapter into its base model (safetensors + processor)")
    m.add_argument("--adapter", type=Path, required=True, help="adapter folder (a checkpoint or runs/<name>/best)")
    m.add_argument("--out", type=Path, default=None, help="output folder (default models/<name>-merged)")
    m.add_argument("--language", default=None, help="default transcription language (default: as trained)")

    r = add("transcribe", cmd_transcribe, "transcribe audio with a fine-tuned model into <name>.finetuned.vtt, "
            "and <name>.review.md beside your <name>.vtt")
    r.add_argument("audio", type=Path, nargs="+", help="audio files")
    r.add_argument("--model", required=True, help="merged model folder, adapter folder or Hub id")
    r.add_argument("--out", type=Path, default=None, help="output folder (default: beside each audio file)")
    r.add_argument("--force", action="store_true", help="redo an existing .finetuned.vtt and .review.md (kept as backups)")
    r.add_argument("--prompt-vocab", action="store_true", help="also feed the vocabulary as a prompt")
    common(r, batch=None, vocab="vocabulary folder, for the terms that differ from your "
           "VTT, in the table and the review (absent: not checked)")
    add_engine_flags(r)

    u = add("push", cmd_push, "push a merged model to the Hugging Face Hub (private unless --public)")
    u.add_argument("--model", type=Path, required=True, help="merged model folder")
    u.add_argument("--repo", required=True, help="Hub repo id, e.g. you/whisper-my-voice")
    u.add_argument("--public", action="store_true", help="make the repo public")
    u.add_argument("--adapter", type=Path, default=None, help="adapter folder to push too")
    u.add_argument("--adapter-repo", default=None, help="repo for the adapter (with --adapter; "
                   "default <repo>-lora)")
    u.add_argument("--ctranslate2", nargs="?", const="int8", default=None, metavar="QUANTIZATION",
                   help="also push a faster-whisper (CTranslate2) export under ctranslate2-<q>/ "
                        "(int8 if no quantization is given)")

    x = add("export", cmd_export, "export a merged model for faster-whisper (CTranslate2)")
    x.add_argument("--model", type=Path, required=True, help="merged model folder")
    x.add_argument("--format", choices=["ctranslate2"], default="ctranslate2", help="export format")
    x.add_argument("--quantization", default="int8",
                   help="int8 (CPU), float16 (GPU), int8_float16, int8_float32 or float32")
    x.add_argument("--out", type=Path, default=None, help="output folder (default <model>-ct2-<quantization>)")
    x.add_argument("--force", action="store_true",
                   help="also replace an output folder that is not an earlier export (an earlier "
                        "export is replaced without it)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run(args.func, args)


if __name__ == "__main__":
    exit_without_teardown(main())
