"""whisper-small-sized random model (same shapes as openai/whisper-small) for a memory measurement."""
import shutil, sys
from pathlib import Path
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration, GenerationConfig
base = Path(__file__).resolve().parent.parent / ".cache/models/whisper-base"; out = Path(sys.argv[1] if len(sys.argv) > 1 else "whisper-small-shape")
cfg = WhisperConfig.from_pretrained(base)
cfg.d_model = 768; cfg.encoder_layers = cfg.decoder_layers = 12; cfg.encoder_attention_heads = cfg.decoder_attention_heads = 12
cfg.encoder_ffn_dim = cfg.decoder_ffn_dim = 3072
torch.manual_seed(0)
m = WhisperForConditionalGeneration(cfg)
m.generation_config = GenerationConfig.from_pretrained(base)
m.generation_config.max_length = 32
m.save_pretrained(out)
for f in base.iterdir():
    if f.name not in ("model.safetensors", "config.json", "generation_config.json", "README.md", "offline_whisper.json"):
        shutil.copy(f, out / f.name)
print(sum(p.numel() for p in m.parameters()) / 1e6, "M params")
