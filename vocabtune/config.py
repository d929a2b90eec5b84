"""Audio and model facts as named constants with units, and one frozen config per command.

The CLIs build these from flags; library functions take them whole, so a config can be
saved next to what it produced (training saves its TrainConfig beside the adapter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 16_000            # Hz: Whisper's input rate
MAX_CHUNK_S = 30.0              # s: Whisper's window; a training chunk never exceeds it
MAX_TARGET_TOKENS = 448         # Whisper's max_target_positions (prompt + labels)
TIMESTAMP_STEP_S = 0.02         # s: resolution of Whisper's <|t.tt|> tokens
OVERLAP_WARN_S = 0.2            # s: cues overlapping by less than this only warn
PAST_END_TOLERANCE_S = 0.05     # s: MP3 encoder padding makes decoded audio a frame or two
#                                 shorter than the original; cues may end this far past it
SILENCE_PEAK_DBFS = -60.0       # dBFS: a recording whose loudest sample is quieter holds no
#                                 speech (a muted or wrong input); Whisper writes "you" over it
DEFAULT_MODEL = "openai/whisper-small"
DEFAULT_LANGUAGE = "en"
# what phones, browsers and recording apps write; the rest were silently not recordings:
# aiff/aif/caf (GarageBand, Logic, Audacity), mov (QuickTime), 3gp/amr (Android recorders),
# wma (Windows), mkv (OBS). All decode with the wheel's ffmpeg.
AUDIO_SUFFIXES = (".mp3", ".m4a", ".wav", ".flac", ".ogg", ".opus", ".webm", ".mp4", ".aac",
                  ".aiff", ".aif", ".caf", ".mov", ".3gp", ".amr", ".wma", ".mkv")
# "valid" as fairseq and ESPnet name the split: a take named as held out must not be trained on
VALIDATION_PREFIXES = ("validation", "valid", "val", "dev")


@dataclass(frozen=True)
class TranscribeConfig:
    recordings: Path = Path("recordings")     # folder of recordings (prepare_data) ...
    files: tuple[Path, ...] = ()              # ... or explicit audio files (finetune transcribe)
    out_dir: Path | None = None               # where VTTs go; None = beside each recording
    model: str = DEFAULT_MODEL                # Hub id or local directory
    language: str | None = None               # None: as the model was trained, else English
    force: bool = False                       # re-transcribe, backing up the old VTT first
    suffix: str = ".vtt"                      # ".finetuned.vtt" for a fine-tuned model
    vocab: Path | None = None                 # vocab dir for --prompt-vocab
    prompt_vocab: bool = False                # feed the vocabulary as Whisper prompt tokens
    num_beams: int = 1                        # greedy by default (PITFALLS #6)
    device: str = "auto"
    temperature_fallback: bool = True         # re-decode looping/unsure 30 s windows (Whisper's rule)
    engine: str = "ctranslate2"               # "ctranslate2" (faster-whisper on a cached conversion,
                                              # falls back to transformers) or "transformers"
    compute_type: str = "default"             # CTranslate2 only: "default" = int8 on CPU, float16 on
                                              # CUDA; or "auto", "int8", "float16", "float32", ...


@dataclass(frozen=True)
class BuildConfig:
    recordings: Path = Path("recordings")
    vocab: Path = Path("vocab")
    out: Path | None = None                   # default data/<folder name>
    validation_fraction: float = 0.0          # held-out chunks when no validation recording
    max_chunk_s: float = MAX_CHUNK_S
    seed: int = 0


@dataclass(frozen=True)
class PushConfig:
    path: Path = Path("data")                 # dataset dir or merged-model dir
    repo: str = ""
    public: bool = False                      # private unless asked: it is the person's voice
    adapter: Path | None = None               # also push this adapter ...
    adapter_repo: str | None = None           # ... to this repo
    ctranslate2: str | None = None            # also push a faster-whisper export (quantization)
    endpoint: str | None = None               # Hub URL; None = huggingface_hub's default


@dataclass(frozen=True)
class TrainConfig:
    dataset: Path = Path("data")
    vocab: Path = Path("vocab")
    base_model: str = DEFAULT_MODEL
    language: str | None = None               # None: as the dataset records, else English
    output_dir: Path = Path("runs")
    # 4: with the two speed copies (below) each epoch sees the person's audio three times;
    # on llm-lingo 4 such epochs took as long as 8 without them and spelt more terms right
    # across seeds (BENCHMARKS.md, issue 4)
    epochs: float = 4.0
    learning_rate: float = 1e-3
    batch_size: int = 3
    gradient_accumulation: int = 1
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    # The decoder's MLPs and its cross-attention queries/outputs; not its self-attention, nor
    # cross-attention keys/values (those read the 1500 encoder frames: costly, no help).
    # Measured on llm-lingo with whisper-base over 11 seeds (BENCHMARKS.md, issue 4): as many
    # of its 40 terms as with self-attention adapters too (the previous default) and about
    # half the forgetting on a 1,948-word general test; on 160 synthetic terms about 2.5 fewer
    # right (bench/synthetic_vocab.md). q_proj/v_proj alone (the seed recipe) plateaued at
    # 66-78% term recall.
    target_modules: tuple[str, ...] = ("encoder_attn.q_proj", "encoder_attn.out_proj", "fc1", "fc2")
    lora_scope: str = "decoder"               # "decoder": encoder frozen and run once per chunk;
                                              # "all": LoRA in encoder and decoder (seed recipe)
    # General speech mixed into train so the model keeps its general English (replay.py):
    # "builtin" (shipped with vocabtune), dataset folders, or ("none",)
    replay: tuple[str, ...] = ("builtin",)
    # Copies of the person's train chunks at these speeds (augment.py); () = none
    speed_perturb: tuple[float, ...] = (0.9, 1.1)
    # Loss weight of the words around the terms in chunks that hold terms (term_weights.py);
    # 1 = every token alike. 0.2 raised llm-lingo term recall at 5 of 5 seeds (BENCHMARKS.md)
    context_weight: float = 0.2
    timestamp_share: float = 0.5              # share of targets with <|t|> tokens
    prompt_share: float = 0.3                 # share of targets conditioned on previous text
    warmup_steps: float = 0.1                 # fraction of steps when < 1 (transformers 5)
    max_steps: int = -1                       # for smoke tests; -1 = use epochs
    resume: bool = False
    seed: int = 42
    device: str = "auto"
    eval_batch_size: int = 8


@dataclass(frozen=True)
class EvalConfig:
    model: str = ""
    dataset: Path = Path("data")
    vocab: Path = Path("vocab")
    base_model: str | None = None             # compare against; None = the adapter's base
    language: str | None = None               # None: as the model was trained, else English
    json_path: Path | None = None
    compare: bool = False                     # base / +prompt / fine-tuned / +prompt
    general_dataset: Path | None = None       # forgetting check
    batch_size: int = 8
    device: str = "auto"


@dataclass(frozen=True)
class MergeConfig:
    adapter: Path = Path("runs")
    out: Path | None = None                   # default models/<name>-merged
    language: str | None = None               # default: the language the adapter was trained on
