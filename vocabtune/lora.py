"""LoRA adapters on Whisper with peft, from the training config.

``task_type`` is left unset on purpose: ``SEQ_2_SEQ_LM`` makes peft call Whisper's forward
with ``input_ids``, which Whisper does not take (PITFALLS #13). Whisper has no default target
modules in peft, so they always come from the config.
"""

from __future__ import annotations

import logging

from .config import TrainConfig
from .errors import VocabtuneError

log = logging.getLogger(__name__)


LORA_SCOPES = ("decoder", "all")


def lora_config(cfg: TrainConfig, targets: list[str] | None = None):
    from peft import LoraConfig

    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets or list(cfg.target_modules), bias="none")


def add_lora(model, cfg: TrainConfig):
    """Wrap ``model`` (a WhisperForConditionalGeneration) so only the LoRA weights train."""
    from peft import get_peft_model

    from .encoder_cache import decoder_only_targets

    _check_targets(model, cfg.target_modules)
    if cfg.lora_scope not in LORA_SCOPES:
        raise VocabtuneError(f"unknown --lora-scope {cfg.lora_scope!r}", hint="use decoder or all")
    # "decoder": full module names, so the encoder gets no adapter and can be run only once
    targets = decoder_only_targets(model, cfg.target_modules) if cfg.lora_scope == "decoder" else None
    peft_model = get_peft_model(model, lora_config(cfg, targets))
    trainable, total = count_parameters(peft_model)
    log.info("LoRA r=%d alpha=%d on %s (%s): %.2f M trainable of %.1f M parameters (%.2f%%)",
             cfg.lora_r, cfg.lora_alpha, ", ".join(cfg.target_modules), cfg.lora_scope, trainable / 1e6,
             total / 1e6, 100.0 * trainable / total)
    return peft_model


def count_parameters(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def _check_targets(model, targets) -> None:
    """peft's own error for a misspelt module lists nothing useful; name what exists."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    qualified = {".".join(name.rsplit(".", 2)[-2:]) for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names and t not in qualified]
    if missing:
        linear = sorted(n for n in names if n.endswith("proj") or n.startswith("fc"))
        raise VocabtuneError(f"no layer named {', '.join(missing)} in this Whisper model",
                             hint=f"--target-modules takes names such as {', '.join(linear)}")
