"""Load a Whisper model + processor from a Hub id, a local directory or a LoRA adapter
directory, on the best device available, with the language set once.

One loader for every stage (transcribe, train, evaluate, merge) so that device, dtype and
language handling (PITFALLS #1, #3, #5) are decided in one place.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import VocabtuneError

log = logging.getLogger(__name__)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# The files of a model folder that decide what it computes and how it tokenises (its README,
# a converter's notes, do not)
MODEL_FILES = ("config.json", "tokenizer.json", "vocab.json", "merges.txt")
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class LoadedModel:
    model: Any                   # WhisperForConditionalGeneration or a peft PeftModel around it
    processor: Any               # WhisperProcessor
    device: Any                  # torch.device
    source: str                  # what the user named
    base_model: str              # the underlying Whisper (== source unless an adapter)
    is_adapter: bool
    multilingual: bool

    @property
    def dtype(self):
        return next(self.model.parameters()).dtype


def pick_device(name: str = "auto"):
    """``auto``: CUDA if present, else Apple MPS, else CPU. A device this machine lacks is
    a one-line error here, before any model is loaded (torch would fail later with an
    AssertionError deep inside ``.to()``)."""
    import torch

    if name != "auto":
        return _available_device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available_device(name: str):
    import torch

    hint = "use --device auto (the GPU when there is one, else the CPU) or --device cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise VocabtuneError(f"unknown --device {name!r}", hint=hint) from None
    mps = getattr(torch.backends, "mps", None)
    present = {"cpu": True, "cuda": torch.cuda.is_available(),
               "mps": bool(mps and mps.is_available())}
    if not present.get(device.type, False):
        what = {"cuda": "CUDA GPU (or this torch is its CPU build)", "mps": "Apple MPS device"}
        raise VocabtuneError(f"--device {name}: torch sees no {what.get(device.type, device.type)} "
                             "on this machine", hint=hint)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise VocabtuneError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA GPU(s)",
                             hint="count from cuda:0")
    return device


def inference_dtype(device):
    """Half precision where the hardware does it natively; float32 on CPU (CPU fp16 matmuls
    are slow and bf16 costs Whisper accuracy at inference) and on Apple MPS."""
    import torch

    if device.type == "cuda":
        return cuda_half_dtype(device)
    return torch.float32


def model_files(name: str | Path) -> list[Path] | None:
    """A local model folder's config, tokenizer and weight files, or None for a Hub id (its
    files are the Hub's to version)."""
    folder = Path(name)
    if not folder.is_dir():
        return None
    named = [folder / n for n in MODEL_FILES if (folder / n).is_file()]
    return named + sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


# Compute capability from which a CUDA GPU does bfloat16 in hardware: Ampere (A100, A10, L4,
# RTX 30xx) and newer. Before it (T4 7.5, V100 7.0, RTX 20xx) only float16 is native.
BF16_MIN_CAPABILITY = (8, 0)


def half_dtype(capability: tuple[int, int]):
    """The 16-bit float a CUDA GPU of this compute capability runs natively. Why not
    ``torch.cuda.is_bf16_supported()``: it also says True on a T4 or V100 (its default
    ``including_emulation=True`` only checks that a bf16 tensor can be made), where bf16
    is emulated and several times slower than fp16."""
    import torch

    return torch.bfloat16 if tuple(capability) >= BF16_MIN_CAPABILITY else torch.float16


def cuda_half_dtype(device=None):
    """``half_dtype`` of the CUDA GPU ``device`` (the current one if None)."""
    import torch

    return half_dtype(torch.cuda.get_device_capability(device))


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> str:
    """The base model an adapter was trained on (peft writes it into adapter_config.json)."""
    from .fsutil import load_json_object

    cfg = load_json_object(Path(path) / ADAPTER_CONFIG, hint="fix the file in an editor, or copy the "
                           "adapter folder whole again from the run that trained it")
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise VocabtuneError("adapter_config.json names no base model", file=Path(path) / ADAPTER_CONFIG,
                             hint="retrain, or add base_model_name_or_path")
    if looks_local(base) and not Path(base).expanduser().exists():
        # an adapter copied to another machine, or a base folder moved since training
        raise VocabtuneError(f"the adapter's base model {base} is not there", file=Path(path) / ADAPTER_CONFIG,
                             hint="put it back, or set base_model_name_or_path in this file to where it "
                                  "is now (a folder, or a Hub id such as openai/whisper-small)")
    return base


def looks_local(name: str) -> bool:
    """Whether ``name`` can only be a folder, not a Hub id ("owner/name"): it is absolute,
    starts with "." or "~", or has other than exactly one slash."""
    return Path(name).is_absolute() or name.startswith((".", "~")) or name.count("/") != 1


def _check_source(name: str) -> None:
    path = Path(name)
    if looks_local(name) and not path.exists():
        raise VocabtuneError("model not found", file=name,
                             hint="give a local model folder or a Hub id such as openai/whisper-small")
    if path.is_dir() and (path / "model.bin").is_file():
        raise ct2_export_error(path)
    if path.is_dir() and not (path / "config.json").is_file() and not is_adapter_dir(path):
        raise VocabtuneError("not a model folder (no config.json or adapter_config.json)", file=name,
                             hint="point at a folder written by save_pretrained, merge or train")


def ct2_export_error(path: Path) -> VocabtuneError:
    """A CTranslate2 export handed to a command that reads a transformers model. Why say so:
    ``finetune.py export``'s folder is a natural thing to pass to ``transcribe --model``,
    and transformers only said "Unrecognized model ... model_type"."""
    from .fsutil import read_json_object

    source = read_json_object(path / "vocabtune_export.json").get("source") \
        if (path / "vocabtune_export.json").is_file() else None
    named = f" ({source})" if source else ""
    return VocabtuneError("a CTranslate2 export (for faster-whisper), not a transformers model",
                          file=path, hint=f"pass the merged model folder it was exported from{named}; "
                          "vocabtune converts it for CTranslate2 itself and keeps the result")


def _from_pretrained(cls, name: str, **kwargs):
    from safetensors import SafetensorError     # a truncated or damaged weights file

    try:
        return cls.from_pretrained(name, **kwargs)
    except (OSError, ValueError, SafetensorError) as err:
        if not Path(name).expanduser().exists() and _hub_unreachable(err):
            raise hub_unreachable_error(name) from err
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VocabtuneError(f"cannot load {cls.__name__} ({first})", file=name,
                             hint="check the path or Hub id; Hub ids need internet and, for private "
                                  "repos, `hf auth login`") from err


def _hub_unreachable(err: BaseException) -> bool:
    """Whether loading failed because the Hub could not be asked (no network, or offline mode)
    and the files were not in the local cache: huggingface_hub's LocalEntryNotFoundError,
    somewhere in the chain transformers wraps it in."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, LocalEntryNotFoundError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def hub_unreachable_error(name: str) -> VocabtuneError:
    """Why: transformers said "cannot load AutoConfig (We couldn't connect to ...)", after
    about 20 s of retries; a person needs to read that the Hub is out of reach."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set, so it cannot be downloaded"
        hint = "unset HF_HUB_OFFLINE, or pass a local model folder"
    else:
        why = f"the Hub ({constants.ENDPOINT}) cannot be reached to download it (no network?)"
        hint = "connect to the internet and try again, or pass a local model folder"
    return VocabtuneError(f"this Hub model is not in the local Hugging Face cache, and {why}",
                          file=name, hint=hint)


def load_processor(name: str):
    from transformers import WhisperProcessor

    return _from_pretrained(WhisperProcessor, name)


def load_base(name: str, *, device=None, dtype=None):
    """The plain Whisper model behind ``name``; refuses anything that is not Whisper.
    ``dtype`` None means float32, not the checkpoint's own: transformers 5 otherwise loads
    the dtype config.json names, float16 for openai/whisper-large-v3 and other half-precision
    uploads, and training such a base broke (float32 encoder states into float16 layers on
    a CPU; float16 master weights under the Trainer's autocast on a GPU)."""
    import torch
    from transformers import AutoConfig, WhisperForConditionalGeneration

    _check_source(name)
    _check_generation_config(name)
    config = _from_pretrained(AutoConfig, name)
    if getattr(config, "model_type", None) != "whisper":
        raise VocabtuneError(f"not a Whisper model (model_type is {getattr(config, 'model_type', None)!r})",
                             file=name, hint="use a Whisper checkpoint such as openai/whisper-small")
    model = _from_pretrained(WhisperForConditionalGeneration, name, dtype=dtype or torch.float32)
    from .vocab_head import use_fast_vocab_projection

    use_fast_vocab_projection(model)        # decoding on a CPU: see vocab_head.py
    return model.to(device) if device is not None else model


def _check_generation_config(name: str) -> None:
    """A local model's generation_config.json must be a JSON object. Why: transformers only
    logs one it cannot read and goes on with defaults made from config.json, which lack
    Whisper's timestamp and language tokens, so transcription then failed with a
    ValueError traceback about "no_timestamps_token_id" far from the file."""
    from .fsutil import load_json_object

    file = Path(name) / "generation_config.json"
    if file.is_file():
        load_json_object(file, hint="fix it in an editor, or copy it again from the model folder it "
                                    "came from (finetune.py merge writes it)")


def load_whisper(name: str, *, device: str = "auto", language: str | None = None,
                 dtype=None) -> LoadedModel:
    """Model (base, merged or base + adapter) and processor, ready for ``generate``."""
    dev = pick_device(device)
    dtype = dtype or inference_dtype(dev)
    _check_source(name)
    adapter = is_adapter_dir(name)
    base = adapter_base(name) if adapter else name
    model = load_base(base, device=dev, dtype=dtype)
    processor_src = name if adapter and (Path(name) / "preprocessor_config.json").is_file() else base
    processor = load_processor(processor_src)
    if adapter:
        model = _load_adapter(model, name, base).to(dev)
    model.eval()
    loaded = LoadedModel(model, processor, dev, name, base, adapter,
                         bool(getattr(whisper_of(model).generation_config, "is_multilingual", False)))
    if language:
        set_language(loaded, language)
    return loaded


def _load_adapter(model, name: str, base: str):
    """``model`` with the LoRA adapter in ``name``, or a one-line error. A size mismatch
    means the weights were made for another base (``base_model_name_or_path`` edited to
    point at whisper-small for an adapter trained on whisper-base) or another rank (``r``
    edited by hand); torch says so in a RuntimeError of one line per layer."""
    from peft import PeftModel
    from safetensors import SafetensorError

    try:
        return PeftModel.from_pretrained(model, name)
    except (OSError, ValueError, SafetensorError) as err:
        raise VocabtuneError(f"cannot load the adapter ({str(err).strip().splitlines()[0]})",
                             file=name, hint="train it again, or copy it whole") from err
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        raise VocabtuneError(f"the adapter's weights do not fit {base} (their shapes differ: made for "
                             "another base model or another LoRA rank)", file=Path(name) / ADAPTER_CONFIG,
                             hint="set base_model_name_or_path and r in this file back to those the adapter "
                                  "was trained with (the run's vocabtune_train.json records them)") from err


def whisper_of(model):
    """The WhisperForConditionalGeneration inside a PeftModel (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def set_language(loaded: LoadedModel, language: str) -> None:
    """Make a bare ``generate()`` transcribe in ``language`` (PITFALLS #3); English-only
    models take no language or task (PITFALLS #1)."""
    gen = whisper_of(loaded.model).generation_config
    if not loaded.multilingual:
        refuse_for_english_only(loaded.source, language)
        return
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    if language.lower() not in LANGUAGES and language.lower() not in TO_LANGUAGE_CODE:
        raise VocabtuneError(f"unknown language {language!r}", hint="give an ISO code such as en or de")
    gen.language = language
    gen.task = "transcribe"
    gen.forced_decoder_ids = None
    loaded.processor.tokenizer.set_prefix_tokens(language=language, task="transcribe")


def refuse_for_english_only(source: str, language: str) -> None:
    """An English-only Whisper (``*.en``) transcribes English only ("en", "English", "EN")."""
    from .targets import is_english

    if not is_english(language):
        raise VocabtuneError(f"this model is English-only and cannot transcribe {language!r}",
                             file=source, hint="use a multilingual Whisper or --language en")


def check_language_fits(model: str, language: str) -> None:
    """Refuse a language an English-only local model cannot speak before any work is done
    (``generation_config.json`` says; a Hub id is checked when it loads)."""
    from .fsutil import read_json_object

    config = Path(model) / "generation_config.json"
    if looks_local(model) and config.is_file():
        if read_json_object(config).get("is_multilingual") is False:
            refuse_for_english_only(model, language)


def language_kwargs(loaded: LoadedModel, language: str | None) -> dict:
    """``generate`` keyword arguments for the language (none for English-only models)."""
    if not loaded.multilingual or not language:
        return {}
    return {"language": language, "task": "transcribe"}


# --- the language a model was trained in ---------------------------------------------------

MERGE_META = "vocabtune_merge.json"     # written by finetune.py merge; marks a folder merge may replace
TRAIN_META = "vocabtune_train.json"     # written by training beside the adapter; merge carries it


def recorded_language(name: str | Path) -> str | None:
    """The language a vocabtune model was trained in, from the records beside it (a merge's
    record first: ``merge --language`` may have changed it), or None for any other model (a
    Hub id, plain Whisper) and for English-only merges, which record none."""
    from .fsutil import read_json_object

    folder = Path(name)
    if not folder.is_dir():
        return None
    if (folder / MERGE_META).is_file():
        found = read_json_object(folder / MERGE_META).get("language")
        return found if isinstance(found, str) and found else None
    meta = read_json_object(folder / TRAIN_META)
    for section in (meta, meta.get("config"), meta.get("train_config")):
        if isinstance(section, dict) and isinstance(section.get("language"), str) and section["language"]:
            return section["language"]
    return None


def resolve_language(model: str | Path, language: str | None) -> str:
    """``--language`` if given, else the language ``model`` was trained in, else English:
    a German model must transcribe and be scored in German without the person repeating
    ``--language de`` at every step (it translated into English before)."""
    from .config import DEFAULT_LANGUAGE

    if language:
        return language
    found = recorded_language(model)
    if found:
        log.info("language: %s, as %s was trained (--language to change)", found, model)
        return found
    return DEFAULT_LANGUAGE


def adapter_digest(adapter: Path) -> str | None:
    """sha256 of an adapter's weights, which merge records and push compares: the folder
    name says nothing once a run is trained again into it. None if it has no safetensors."""
    import hashlib

    weights = Path(adapter) / ADAPTER_WEIGHTS
    if not weights.is_file():
        return None
    with open(weights, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
