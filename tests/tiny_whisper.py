"""A tiny, randomly initialised Whisper built entirely offline, saved like a Hub model.

Tests load it with ``from_pretrained(dir)``, exactly as users load openai/whisper-small, so
every real code path (processor, tokenizer specials, timestamp tokens, generate, LoRA,
merge) runs, only fast. The tokenizer is a small byte-level BPE trained here on a few
sentences, with Whisper's special tokens laid out in Whisper's order: <|endoftext|>,
<|startoftranscript|>, the language tokens, <|translate|>, <|transcribe|>, <|startoflm|>,
<|startofprev|>, <|nospeech|>, <|notimestamps|>, then 1501 timestamp tokens <|0.00|>…<|30.00|>.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = """The quick brown fox jumps over the lazy dog. A single vLLM instance can serve many
LoRA adapters on top of one base model. I converted the model to GGUF and ran it with
llama.cpp on an old laptop. Mixtral 8x7B and Mistral 7B are open models. Phi-2 is small.
The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.
0123456789 , . ? ! - ' " : ; ( ) hello world whisper speech recognition fine tuning""".split("\n")
TIMESTAMPS = 1501


def _train_bpe(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tok


def _special_tokens(multilingual: bool) -> list[str]:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    langs = [f"<|{code}|>" for code in LANGUAGES] if multilingual else []
    return (["<|startoftranscript|>"] + langs + ["<|translate|>", "<|transcribe|>", "<|startoflm|>",
            "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"])


def build_tokenizer(out: Path, multilingual: bool = True, bpe_size: int = 400):
    """Write vocab.json, merges.txt, tokenizer.json, tokenizer_config.json; return the
    loaded WhisperTokenizerFast and the id of <|notimestamps|>."""
    from transformers import WhisperTokenizerFast
    from tokenizers import AddedToken

    tok = _train_bpe(bpe_size)
    specials = _special_tokens(multilingual)
    tok.add_special_tokens([AddedToken(s, normalized=False) for s in specials])
    tok.add_tokens([AddedToken("<|%.2f|>" % (i * 0.02), normalized=False) for i in range(TIMESTAMPS)])
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    model = json.loads(tok.to_str())["model"]
    (out / "vocab.json").write_text(json.dumps(model["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "WhisperTokenizer", "processor_class": "WhisperProcessor",
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "additional_special_tokens": specials,
        "add_prefix_space": False, "errors": "replace", "clean_up_tokenization_spaces": False,
        "model_max_length": 448, "return_attention_mask": False}))
    loaded = WhisperTokenizerFast.from_pretrained(str(out))
    return loaded, tok.get_vocab_size()


def _generation_config(tokenizer, multilingual: bool):
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    ids = tokenizer.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    cfg = GenerationConfig(
        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot, decoder_start_token_id=ids("<|startoftranscript|>"),
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50, max_length=448, is_multilingual=multilingual,
        return_timestamps=False, begin_suppress_tokens=[ids("Ġ"), eot], suppress_tokens=[],
        alignment_heads=[[0, 0], [1, 1]])
    if multilingual:
        cfg.lang_to_id = {f"<|{c}|>": ids(f"<|{c}|>") for c in LANGUAGES}
        cfg.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
    return cfg


def build_tiny_whisper(out: Path, multilingual: bool = True, seed: int = 0) -> Path:
    """Save a tiny random Whisper + processor to ``out`` (about 1 MB) and return ``out``."""
    import torch
    from transformers import (WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor)

    out = Path(out)
    tokenizer, vocab_size = build_tokenizer(out, multilingual)
    ids = tokenizer.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    config = WhisperConfig(
        vocab_size=vocab_size, num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=448, pad_token_id=eot, bos_token_id=eot,
        eos_token_id=eot, decoder_start_token_id=ids("<|startoftranscript|>"),
        begin_suppress_tokens=None, suppress_tokens=None)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = _generation_config(tokenizer, multilingual)
    model.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor.from_pretrained(out),
                     tokenizer=tokenizer).save_pretrained(out)
    return out


if __name__ == "__main__":
    import sys

    print(build_tiny_whisper(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-whisper")))
