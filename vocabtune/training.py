"""LoRA fine-tuning of Whisper with Seq2SeqTrainer: dataset -> adapter checkpoints -> best/.

Reads top to bottom: check every input (nothing is written before that succeeds), load the
base model and add LoRA, build the train/validation examples, run the Trainer (validation
with generation every epoch: WER and term recall), then copy the best checkpoint to
``<output_dir>/best`` with its processor and ``vocabtune_train.json``.

Several processes: run ``torchrun --nproc_per_node N finetune.py train ...`` (or
``accelerate launch``); the Trainer shards batches over processes (gloo on CPU, NCCL on
GPUs) and only the main process writes.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from .augment import check_factors
from .config import MAX_TARGET_TOKENS, TrainConfig
from .errors import VocabtuneError
from .fsutil import check_writable
from .recipe import base_name, check_resume_inputs, check_resume_recipe, write_recipe
from .modelio import check_language_fits
from .replay import for_language
from .train_output import BEST_DIR, TrainResult, check_checkpoint, finish_run, last_checkpoint

log = logging.getLogger(__name__)
SAVE_TOTAL_LIMIT = 2            # checkpoints kept: the best and the latest (for --resume)
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class TrainInputs:
    """Everything checked and loaded before training starts."""

    model: Any                  # PeftModel around WhisperForConditionalGeneration
    processor: Any
    train: Any                  # ChunkExamples (train split, mixed targets)
    validation: Any             # ChunkExamples (validation split, plain targets)
    terms: list[str]
    base_model: str             # as recorded (local folders made absolute)
    resume_from: str | None


def train(cfg: TrainConfig, *, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Fine-tune and return where the adapter went and how each epoch scored.
    ``callbacks``: extra TrainerCallbacks (tests use one to interrupt a run)."""
    _quiet_other_processes()
    cfg = with_language(cfg)
    check_language_fits(base_name(cfg.base_model), cfg.language)   # before any advice on replay
    cfg = replace(cfg, replay=for_language(cfg.replay, cfg.language))
    with _copies_folder(cfg) as copies_in:
        inputs = prepare(cfg, copies_in=copies_in)
        return _run(cfg, inputs, callbacks)


def with_language(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its language settled: ``--language``, else the one the dataset's caption
    files named (``build`` records it from the ``Language:`` line transcribe writes), else
    English. A German project then trains in German without the flag at every step."""
    from .config import DEFAULT_LANGUAGE
    from .dataset import read_metadata

    if cfg.language:
        return cfg
    found = read_metadata(cfg.dataset).get("language") if Path(cfg.dataset).is_dir() else None
    if found:
        log.info("language: %s, as the dataset's caption files say (--language to change)", found)
    return replace(cfg, language=found or DEFAULT_LANGUAGE)


def _copies_folder(cfg: TrainConfig):
    """Where the speed copies are written while the run needs them (none without copies)."""
    from contextlib import nullcontext

    from .augment import copies_folder

    return copies_folder(cfg.output_dir) if check_factors(cfg.speed_perturb) else nullcontext()


def _run(cfg: TrainConfig, inputs: "TrainInputs", callbacks: Sequence[Any]) -> TrainResult:
    trainer, logger = build_trainer(cfg, inputs, callbacks)
    if not cfg.resume and trainer.is_world_process_zero():
        write_recipe(cfg, inputs.terms)
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=inputs.resume_from)
    except KeyboardInterrupt:
        if last_checkpoint(cfg.output_dir) is not None:
            log.warning("interrupted at step %d: checkpoints so far are in %s; continue with --resume",
                        trainer.state.global_step, cfg.output_dir)
        else:
            log.warning("interrupted at step %d, before the first checkpoint: nothing to resume; "
                        "run again without --resume (delete %s first)", trainer.state.global_step,
                        cfg.output_dir)
        raise
    seconds = time.perf_counter() - started
    return finish_run(cfg, inputs, trainer, seconds, logger)


def _quiet_other_processes() -> None:
    """Under torchrun every process runs this code: only the main one (RANK 0) logs info."""
    if int(os.environ.get("RANK", "0")) > 0:
        logging.getLogger("vocabtune").setLevel(logging.WARNING)


def prepare(cfg: TrainConfig, copies_in: Path | None = None) -> TrainInputs:
    """Check and load in the order that fails fastest; raises VocabtuneError, writes nothing
    (but the speed copies, into ``copies_in`` when given, else in memory)."""
    from transformers import set_seed

    from .augment import with_speed_copies
    from .dataset import load_dataset_dir
    from .language_guess import not_english_warning
    from .lora import add_lora
    from .replay import with_replay

    cfg = with_language(cfg)
    _check_config(cfg)
    resume_from = _check_output_dir(cfg)
    own = load_dataset_dir(cfg.dataset)
    warning = not_english_warning(own["train"]["text"], cfg.language)
    if warning:
        log.warning("%s", warning)
    dataset = with_replay(with_speed_copies(own, cfg.speed_perturb, copies_in), cfg.replay)
    terms = load_terms(cfg)
    warn_if_no_term_in_validation(own["validation"]["text"], terms)
    base_model = base_name(cfg.base_model)
    model, processor, multilingual = load_model(base_model, cfg.language)
    set_seed(cfg.seed)                      # LoRA's A matrices are drawn from torch's RNG
    peft_model = add_lora(model, cfg)
    states = encoder_states(peft_model, processor, dataset, cfg)
    cross_kv = cross_attention_kv(peft_model, states, cfg)
    train_examples, val_examples = make_examples(cfg, dataset, processor, multilingual, states,
                                                 cross_kv, terms)
    log.info("dataset %s: %d train and %d validation chunks; %d vocabulary terms",
             cfg.dataset, len(train_examples), len(val_examples), len(terms))
    return TrainInputs(peft_model, processor, train_examples, val_examples, terms,
                       base_model, resume_from)


def encoder_states(model, processor, dataset, cfg: TrainConfig) -> dict[str, Any]:
    """Per split, the frozen encoder's outputs (run once), or nothing when LoRA trains the
    encoder too. See encoder_cache.py for why this is exact and where they are kept."""
    from .encoder_cache import encode_split, encoder_is_frozen
    from .modelio import whisper_of

    if not encoder_is_frozen(model):
        return {}
    base = whisper_of(model)
    base.to(training_device(cfg.device))
    started = time.perf_counter()
    stores = state_stores(base, dataset, cfg)
    states = {name: encode_split(base, processor.feature_extractor, dataset[name],
                                 cfg.eval_batch_size, stores[name])
              for name in ("train", "validation")}
    log.info("encoder run once over %d chunks in %.1f s (LoRA is in the decoder only)",
             sum(len(v) for v in states.values()), time.perf_counter() - started)
    return states


def training_device(device: str, environ: Mapping[str, str] = os.environ):
    """The device this process trains on, as the Trainer will choose it: under torchrun or
    accelerate each process has the GPU its ``LOCAL_RANK`` names. Why: the encoder pass
    runs before the Trainer exists, and plain ``cuda`` is GPU 0 in every process, so
    every process put its copy of the model and its encoder pass on GPU 0."""
    import torch

    from .modelio import pick_device

    found = pick_device(device)
    rank = environ.get("LOCAL_RANK")
    if found.type == "cuda" and found.index is None and rank is not None:
        return torch.device("cuda", int(rank))
    return found


def state_stores(base, dataset, cfg: TrainConfig) -> dict[str, Any]:
    """Per split, where its encoder outputs go: lists in memory while they fit the budget,
    else unnamed files beside the run (memory stays flat however long the recordings)."""
    from .encoder_cache import (StatesOnDisk, physical_memory, spill_folder, states_bytes,
                                states_fit_in_memory)

    needed = states_bytes(base, sum(len(dataset[name]) for name in ("train", "validation")))
    if states_fit_in_memory(needed, physical_memory()):
        return {"train": [], "validation": []}
    folder = spill_folder(cfg.output_dir)
    log.info("encoder outputs (%.1f GiB) kept in a temporary file in %s, not in memory",
             needed / 2**30, folder)
    shape = (base.config.max_source_positions, base.config.d_model)
    return {name: StatesOnDisk(folder, shape) for name in ("train", "validation")}


def cross_attention_kv(model, states: dict[str, Any], cfg: TrainConfig) -> dict[str, list]:
    """Per split, the chunks' cross-attention K/V, computed once when that is exact (nothing
    upstream of them trains) and they fit the memory budget; else nothing (computed on use)."""
    from .encoder_cache import (cross_kv_bytes, cross_kv_is_frozen, cross_kv_split,
                                physical_memory, should_cache_cross_kv)
    from .modelio import whisper_of

    if not states or not cross_kv_is_frozen(model):
        return {}
    base = whisper_of(model)
    chunks = sum(len(v) for v in states.values())
    needed = cross_kv_bytes(base, chunks)
    device = training_device(cfg.device)
    if not should_cache_cross_kv(needed, device.type, physical_memory()):
        log.info("cross-attention K/V computed on use (%.1f GiB would not fit the cache "
                 "budget, or not on the CPU)", needed / 2**30)
        return {}
    started = time.perf_counter()
    found = {name: cross_kv_split(base, split_states, cfg.eval_batch_size)
             for name, split_states in states.items()}
    log.info("cross-attention K/V of %d chunks computed once in %.1f s (%.2f GiB)",
             chunks, time.perf_counter() - started, needed / 2**30)
    return found


def _check_config(cfg: TrainConfig) -> None:
    problems = [(cfg.epochs > 0 or cfg.max_steps > 0, "--epochs must be above 0"),
                (cfg.max_steps == -1 or cfg.max_steps > 0,
                 "--max-steps must be at least 1 (or -1, the default, to train --epochs)"),
                (cfg.lora_alpha > 0, "--lora-alpha must be above 0 (0 makes the adapter do nothing)"),
                (0 <= cfg.seed < 2 ** 32, "--seed must be between 0 and 4294967295"),
                (cfg.batch_size >= 1, "--batch-size must be at least 1"),
                (cfg.gradient_accumulation >= 1, "--gradient-accumulation must be at least 1"),
                (0 < cfg.learning_rate < math.inf, "--learning-rate must be above 0 and finite"),
                (cfg.lora_r >= 1, "--lora-r must be at least 1"),
                (0 <= cfg.lora_dropout < 1, "--lora-dropout must be in [0, 1)"),
                (0 <= cfg.timestamp_share <= 1, "--timestamp-share must be in [0, 1]"),
                (0 <= cfg.prompt_share <= 1, "--prompt-share must be in [0, 1]"),
                (0 <= cfg.context_weight <= 1, "--context-weight must be in [0, 1]"),
                (cfg.device in DEVICES, f"--device must be one of {', '.join(DEVICES)} "
                                        "(pick a GPU with CUDA_VISIBLE_DEVICES)")]
    for ok, message in problems:
        if not ok:
            raise VocabtuneError(message, hint="see finetune.py train --help")
    check_factors(cfg.speed_perturb)
    _check_replay_is_not_the_dataset(cfg)
    _check_device(cfg.device)


def _check_device(device: str) -> None:
    """A device this machine lacks is one line before any work. Why every device: only
    ``cuda`` was checked, so ``--device mps`` without MPS failed after the model was loaded,
    or (``--lora-scope all``) trained on whatever the Trainer found instead."""
    from .modelio import pick_device

    pick_device(device)


def _check_replay_is_not_the_dataset(cfg: TrainConfig) -> None:
    """A replay folder's splits both go to train, so replaying the dataset itself would train
    on its validation chunks and every figure measured on them would flatter the model."""
    from .replay import BUILTIN, NONE

    dataset = Path(cfg.dataset).resolve()
    for name in cfg.replay:
        if name not in (BUILTIN, NONE) and Path(name).resolve() == dataset:
            raise VocabtuneError(f"--replay {name} is the training dataset itself: its validation "
                                 "chunks would be trained on", hint="replay other speech, or builtin")


def _check_output_dir(cfg: TrainConfig) -> str | None:
    """The checkpoint to resume from, or None; refuses to mix two runs in one folder."""
    if cfg.output_dir.exists() and not cfg.output_dir.is_dir():
        raise VocabtuneError("--output-dir is a file, not a folder", file=cfg.output_dir,
                             hint="choose another --output-dir")
    check_writable(cfg.output_dir, "the run", "choose another --output-dir")
    found = last_checkpoint(cfg.output_dir)
    if found is None and any(cfg.output_dir.glob("checkpoint-*")):
        _refuse_only_partial_checkpoints(cfg.output_dir)
    if cfg.resume:
        if found is None:
            raise VocabtuneError("nothing to resume: no complete checkpoint in this folder",
                                 file=cfg.output_dir, hint="run without --resume to start training")
        check_resume_recipe(cfg)
        check_checkpoint(found)
        _refuse_finished(found)
        check_resume_inputs(cfg, load_terms(cfg))
        log.info("resuming from %s", found)
        return str(found)
    if found is not None:
        raise VocabtuneError("this folder already holds checkpoints of a training run",
                             file=cfg.output_dir,
                             hint="continue it with --resume, or choose another --output-dir")
    return None


def _refuse_only_partial_checkpoints(output_dir: Path) -> None:
    """A run killed while saving its first checkpoint leaves one without trainer_state.json:
    nothing to resume from, and not to be mixed with a new run either. Why a message of its
    own: --resume said "run without --resume" and the rerun said "continue it with --resume"."""
    names = ", ".join(sorted(p.name for p in output_dir.glob("checkpoint-*")))
    raise VocabtuneError(f"nothing to resume: {names} was not completely written (the run was "
                         "stopped while saving it)", file=output_dir,
                         hint=f"delete {output_dir} and train again without --resume, or choose "
                              "another --output-dir")


def _refuse_finished(checkpoint: Path) -> None:
    """Resuming a finished run would train no step yet rewrite its best/ (and the reports
    evaluate put there) and its timing: refuse. A run stopped after its last step but
    before best/ was written may resume: that only writes best/."""
    from .fsutil import read_json_object

    if not (Path(checkpoint).parent / BEST_DIR).is_dir():
        return
    try:
        state = read_json_object(Path(checkpoint) / "trainer_state.json")
    except VocabtuneError:
        return                  # last_checkpoint vouched for it; the Trainer will say more
    step, last = state.get("global_step", 0), state.get("max_steps", 0)
    if last and step >= last:
        raise VocabtuneError(f"this run has finished (step {step} of {last}): nothing to resume",
                             file=checkpoint.parent, hint="evaluate its best/, or train anew "
                             "with another --output-dir")


def warn_if_no_term_in_validation(texts: Sequence[str], terms: Sequence[str]) -> bool:
    """Say so when no vocabulary term occurs in the validation split. Why: term recall is then
    "n/a" at every epoch, so the best checkpoint is silently picked by WER alone while the
    summary still names term recall as the rule (a vocabulary edited after build, or a
    validation reading of other sentences). Returns whether it warned."""
    from .vocab import count_terms

    if not terms or any(sum(count_terms(terms, text).values()) for text in texts):
        return False
    log.warning("the validation split holds none of your %d vocabulary terms: term recall cannot "
                "be measured, so the best checkpoint is picked by WER alone — read your terms in the "
                "validation recording too (prepare_data.py script writes one) and build again", len(terms))
    return True


def load_terms(cfg: TrainConfig) -> list[str]:
    """The vocabulary folder if present, else the terms ``build`` stored with the dataset."""
    from .dataset import dataset_terms

    return dataset_terms(cfg.vocab, cfg.dataset)[0]


def load_model(name: str, language: str) -> tuple[Any, Any, bool]:
    """Base Whisper (refuses anything else) + its own processor (PITFALLS #12), with the
    language set on the generation config so validation transcribes in it (PITFALLS #3)."""
    from .modelio import LoadedModel, load_base, load_processor, pick_device, set_language

    model = load_base(name)
    processor = load_processor(name)
    multilingual = bool(getattr(model.generation_config, "is_multilingual", False))
    set_language(LoadedModel(model, processor, pick_device("cpu"), name, name, False, multilingual),
                 language)
    gen = model.generation_config
    gen.max_length = min(gen.max_length or MAX_TARGET_TOKENS, MAX_TARGET_TOKENS)  # PITFALLS #4
    model.config.use_cache = False          # training is teacher-forced; generate caches anyway
    return model, processor, multilingual


def make_examples(cfg: TrainConfig, dataset, processor, multilingual: bool,
                  states: dict[str, Any] | None = None, cross_kv: dict[str, list] | None = None,
                  terms: Sequence[str] = ()):
    from .targets import TokenLayout
    from .train_data import ChunkExamples

    cfg = with_language(cfg)
    tokenizer = processor.tokenizer
    layout = TokenLayout.from_tokenizer(tokenizer, cfg.language, multilingual)

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    train_examples = ChunkExamples(dataset["train"], processor.feature_extractor, layout, encode,
                                   timestamp_share=cfg.timestamp_share,
                                   prompt_share=cfg.prompt_share, seed=cfg.seed,
                                   encoder_states=(states or {}).get("train"),
                                   cross_kv=(cross_kv or {}).get("train"),
                                   terms=terms, context_weight=cfg.context_weight)
    validation = ChunkExamples(dataset["validation"], processor.feature_extractor, layout, encode,
                               encoder_states=(states or {}).get("validation"),
                               cross_kv=(cross_kv or {}).get("validation"))
    train_examples.check_targets()
    validation.check_targets()
    return train_examples, validation


def build_trainer(cfg: TrainConfig, inputs: TrainInputs, callbacks: Sequence[Any]):
    from transformers import PrinterCallback

    from .collator import WhisperCollator
    from .train_hooks import (BestCheckpoint, EpochSetter, StepLogger, TokenLoss,
                              metrics_function)
    from .trainer import trainer_class

    args = training_arguments(cfg)
    logger = StepLogger(cfg.batch_size * cfg.gradient_accumulation * args.world_size)
    trainer = trainer_class()(
        model=inputs.model, args=args, train_dataset=inputs.train, eval_dataset=inputs.validation,
        data_collator=WhisperCollator(inputs.processor.tokenizer.pad_token_id),
        processing_class=inputs.processor, compute_loss_func=TokenLoss(),
        compute_metrics=metrics_function(inputs.processor.tokenizer, inputs.terms, inputs.base_model,
                                         cfg.language),
        callbacks=[EpochSetter(inputs.train), BestCheckpoint(), logger, *callbacks])
    trainer.remove_callback(PrinterCallback)     # StepLogger prints one readable line instead
    return trainer, logger


def training_arguments(cfg: TrainConfig):
    """The recipe as Seq2SeqTrainingArguments (transformers 5 names, PITFALLS #11)."""
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments(
        output_dir=str(cfg.output_dir), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation, learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps, lr_scheduler_type="linear",
        eval_strategy="epoch", save_strategy="epoch", save_total_limit=SAVE_TOTAL_LIMIT,
        logging_strategy="steps", logging_steps=1, disable_tqdm=True, report_to="none",
        predict_with_generate=True, generation_num_beams=1,   # max length: the model's own
        label_names=["labels"],             # PeftModel.forward hides the name from the Trainer
        remove_unused_columns=False, dataloader_num_workers=0, dataloader_pin_memory=False,
        ddp_find_unused_parameters=False, seed=cfg.seed, data_seed=cfg.seed,
        **precision(cfg.device))


def precision(device: str) -> dict[str, bool]:
    """The Trainer's precision flags for ``--device`` on this machine (``trainer_precision``)."""
    import torch

    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    return trainer_precision(device, torch.cuda.get_device_capability() if cuda else None)


def trainer_precision(device: str, cuda_capability: tuple[int, int] | None) -> dict[str, bool]:
    """CPU: float32 (``use_cpu`` when asked). CUDA (``cuda_capability`` given): autocast in
    the GPU's native half type, bf16 from Ampere on, fp16 before (T4, V100). Apple MPS:
    float32 (the Trainer finds MPS itself)."""
    import torch

    from .modelio import half_dtype

    if device == "cpu":
        return {"use_cpu": True}
    if cuda_capability is None:
        return {}
    return {"bf16": True} if half_dtype(cuda_capability) is torch.bfloat16 else {"fp16": True}
