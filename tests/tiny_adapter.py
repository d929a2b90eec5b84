"""A LoRA adapter on the tiny Whisper, made with peft directly (as training would save it),
whose B matrices are perturbed so it really changes the model's outputs."""

from __future__ import annotations

import json
from pathlib import Path


def make_adapter(base: Path, out: Path, *, seed: int = 0, scale: float = 0.5,
                 train_meta: dict | None = None) -> Path:
    """Save a perturbed r=4 q/v LoRA adapter for ``base`` plus its processor to ``out``.

    No task_type: peft's SEQ_2_SEQ_LM wrapper breaks Whisper's forward (PITFALLS #13)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(str(base))
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  lora_dropout=0.0))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    peft_model.save_pretrained(str(out))
    processor = WhisperProcessor.from_pretrained(str(base))
    processor.save_pretrained(str(out))
    processor.feature_extractor.save_pretrained(str(out))
    processor.tokenizer.save_vocabulary(str(out))
    if train_meta is not None:
        (Path(out) / "vocabtune_train.json").write_text(json.dumps(train_meta))
    return Path(out)
