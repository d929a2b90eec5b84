"""The CTranslate2 engine: the transcription of :mod:`vocabtune.transcribe`, run by
faster-whisper instead of transformers' long-form ``generate``.

Why: on a laptop CPU, CTranslate2's int8 Whisper decodes several times faster than PyTorch
float32 at the same WER (bench/bench_transcribe.py measures it side by side). It runs the
same algorithm as the transformers path: sequential 30 s windows moved on to the last
predicted timestamp, greedy, Whisper's temperature fallback, no conditioning on the
previous window's text, the same vocabulary prompt on every window.

The transformers model (local folder, Hub id or LoRA adapter) is converted once with
ctranslate2's own converter (through :func:`vocabtune.export.export_ctranslate2`, which
writes atomically) and cached under ``$VOCABTUNE_CACHE/ct2`` (default
``~/.cache/vocabtune/ct2``), keyed by the model's config bytes and its files' sizes and
modification times, so a re-trained or re-merged model is converted again. An adapter is
merged into its base in a temporary folder (:mod:`vocabtune.merge`) and that is converted.

Anything that keeps this engine from running (ctranslate2 missing, a failed conversion, a
device CTranslate2 does not support) raises :class:`EngineUnavailable`; the caller falls
back to transformers and logs why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterable, Sequence

import numpy as np

from .config import SAMPLE_RATE
from .cues_from_whisper import Piece, cues_from_pieces
from .errors import VocabtuneError
from .export import COPIED_FILES, MARKER, export_ctranslate2
from .fsutil import temp_dir
from .schema import Cue

if TYPE_CHECKING:                       # transcribe.py imports this module
    from .transcribe import Decoding

log = logging.getLogger(__name__)
ENGINES = ("ctranslate2", "transformers")
CACHE_ENV = "VOCABTUNE_CACHE"
DEFAULT_CACHE = Path("~/.cache/vocabtune")
# "default": int8 on CPU, float16 on CUDA (DEFAULT_COMPUTE_TYPES); the rest are CTranslate2's own names.
COMPUTE_TYPES = ("default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
                 "int16", "float16", "bfloat16", "float32")
# Files whose bytes or size+mtime decide whether a cached conversion is still current.
KEY_FILES = ("config.json", "generation_config.json", "preprocessor_config.json",
             "tokenizer.json", "adapter_config.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
CONVERTED_FILES = ("model.bin", "config.json") + COPIED_FILES + (MARKER,)
SOURCE_FILE = "vocabtune_source.txt"    # the folder it was converted from (prune_stale)
# Whisper's fallback rule on faster-whisper's scale: gzip ratio of the text over 2.4 is
# what transformers' token-ratio threshold of 1.35 stands for (both are Whisper's default).
GZIP_RATIO_THRESHOLD = 2.4
LOGPROB_THRESHOLD = -1.0
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
MIN_SAMPLES = SAMPLE_RATE // 100     # under one log-mel frame: nothing to hear


class EngineUnavailable(Exception):
    """This engine cannot run here; the message says why (logged on fallback)."""


@dataclass
class Ct2Model:
    """A loaded faster-whisper model and what transcription needs to know about it."""

    model: Any                   # faster_whisper.WhisperModel
    source: str                  # what the user named
    path: Path                   # the converted folder in the cache
    multilingual: bool
    tokenizer: "PromptTokenizer"
    compute_type: str
    language: str | None         # faster-whisper's language code; None for English-only


# ---------------------------------------------------------------- device and compute type

def resolve_device(device: str) -> tuple[str, int]:
    """CTranslate2's (device, index) for vocabtune's ``--device`` (auto, cpu, cuda, cuda:N)."""
    import ctranslate2

    name, _, index = device.partition(":")
    if name == "auto":
        return ("cuda", 0) if ctranslate2.get_cuda_device_count() > 0 else ("cpu", 0)
    if name not in ("cpu", "cuda"):
        raise EngineUnavailable(f"CTranslate2 does not run on {device!r}")
    return name, int(index or 0)


# "default": the first of these the device runs efficiently (CTranslate2 says which). CUDA:
# float16 (Volta, 7.0, and newer), else int8 with float32 (Pascal), else float32; the CPU:
# int8, fastest at equal WER (BENCHMARKS.md), else float32.
DEFAULT_COMPUTE_TYPES = {"cuda": ("float16", "int8_float32", "float32"), "cpu": ("int8", "float32")}


def resolve_compute_type(compute_type: str, device: str, supported: Collection[str]) -> str:
    """The compute type to load with on ``device`` ("cpu" or "cuda"), which runs
    ``supported`` (``ctranslate2.get_supported_compute_types``). Why check: CTranslate2
    refuses a type the device cannot run efficiently (float16 on a CPU or a GTX 10xx) only
    when the model loads, after the conversion, so the model was converted twice and then
    transcribed with the slower transformers engine instead."""
    if compute_type not in COMPUTE_TYPES:
        raise VocabtuneError(f"unknown compute type {compute_type!r}",
                             hint=f"choose one of {', '.join(COMPUTE_TYPES)}")
    if compute_type == "default":
        return next((t for t in DEFAULT_COMPUTE_TYPES[device] if t in supported), "float32")
    if compute_type != "auto" and compute_type not in supported:
        where = "the CPU" if device == "cpu" else "this GPU"
        raise VocabtuneError(f"--compute-type {compute_type} does not run on {where} (CTranslate2 "
                             f"runs {', '.join(sorted(supported))} here)",
                             hint="leave --compute-type at default, or choose one of those")
    return compute_type


def supported_compute_types(device: str, index: int) -> set[str]:
    """What CTranslate2 runs efficiently on this device; a GPU it cannot use (driver or
    CUDA libraries missing) makes the engine unavailable, not an error."""
    import ctranslate2

    try:
        return set(ctranslate2.get_supported_compute_types(device, index))
    except (RuntimeError, ValueError) as err:
        raise EngineUnavailable(f"CTranslate2 cannot use {device}:{index} ({err})") from err


def storage_quantization(compute_type: str) -> str:
    """How the weights are stored: as computed where export offers it (no conversion at
    load), else float32, which CTranslate2 turns into any compute type without loss."""
    from .export import QUANTIZATIONS

    return compute_type if compute_type in QUANTIZATIONS else "float32"


# ---------------------------------------------------------------- the conversion cache

def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser() / "ct2"


def model_folder(model: str) -> Path:
    """A local folder for ``model``: itself, or the Hub snapshot (huggingface_hub's cache)."""
    if Path(model).expanduser().is_dir():
        return Path(model).expanduser()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, allow_patterns=["*.json", "*.txt", "*.safetensors"]))
    except Exception as err:
        raise EngineUnavailable(f"cannot download {model} for conversion ({err})") from err


def _stat_lines(folder: Path) -> list[str]:
    names = [n for n in KEY_FILES if (folder / n).is_file()]
    names += sorted(p.name for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    lines = []
    for name in names:
        st = (folder / name).stat()
        lines.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return lines


def cache_key(folder: Path) -> str:
    """Digest of the config bytes and every weight/key file's size and mtime (adapter
    folders add their base's), plus the ctranslate2 version that converts."""
    import ctranslate2

    from .modelio import adapter_base, is_adapter_dir

    h = hashlib.sha256(f"ctranslate2={ctranslate2.__version__}\n".encode())
    for config in ("config.json", "adapter_config.json"):
        if (folder / config).is_file():
            h.update((folder / config).read_bytes())
    h.update("\n".join(_stat_lines(folder)).encode())
    if is_adapter_dir(folder):
        base = adapter_base(folder)
        h.update(cache_key(Path(base)).encode() if Path(base).is_dir() else base.encode())
    return h.hexdigest()[:16]


def cache_dir_for(folder: Path, compute_type: str) -> Path:
    name = folder.resolve().name or "model"
    return cache_root() / f"{name}-{cache_key(folder)}-{compute_type}"


def is_complete(converted: Path) -> bool:
    """Every file faster-whisper reads is there (the marker is written last)."""
    return all((converted / n).is_file() and (converted / n).stat().st_size > 0
               for n in CONVERTED_FILES)


def converted_model(model: str, compute_type: str, *, rebuild: bool = False) -> Path:
    """The cached CTranslate2 folder of ``model`` for ``compute_type``, converting it
    first if it is missing, incomplete, or ``rebuild`` is asked (it failed to load)."""
    folder = model_folder(model)
    out = cache_dir_for(folder, compute_type)
    if is_complete(out) and not rebuild:
        log.debug("using the cached CTranslate2 model %s", out)
        return out
    if out.exists():
        log.warning("rebuilding the CTranslate2 cache %s (it was incomplete or did not load)", out)
    started = time.perf_counter()
    try:
        convert(folder, out, storage_quantization(compute_type))
    except VocabtuneError as err:
        raise EngineUnavailable(str(err)) from err
    log.info("converted %s for CTranslate2 (%s) in %.1f s, cached in %s", model,
             compute_type, time.perf_counter() - started, out)
    (out / SOURCE_FILE).write_text(str(folder.resolve()) + "\n", encoding="utf-8")
    prune_stale(out)
    return out


def prune_stale(current: Path) -> list[Path]:
    """Delete the cached conversions that can never be used again: those of the same source
    folder as ``current`` under another key (the model was re-trained or re-merged in place;
    any compute type) and those whose source folder is gone. Each is a whole model (75 MB
    for whisper-base int8, hundreds for larger ones), and every re-train would otherwise
    leave one behind.
    Conversions that record no source (made before it was recorded) are left alone."""
    source = _source_of(current)
    removed = []
    for entry in current.parent.iterdir():
        other = _source_of(entry) if entry != current and entry.is_dir() else None
        if other is None:
            continue
        older = other == source and _key_of(entry) != _key_of(current)   # any compute type
        if older or not Path(other).is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed the stale CTranslate2 conversion %s", entry)
            removed.append(entry)
    return removed


def _key_of(converted: Path) -> str:
    return converted.name.rsplit("-", 2)[-2]          # <name>-<key>-<compute type>


def _source_of(converted: Path) -> str | None:
    try:
        return (converted / SOURCE_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def convert(folder: Path, out: Path, quantization: str) -> Path:
    """export_ctranslate2 into ``out`` (atomic); an adapter is merged into a temp folder first."""
    from .modelio import is_adapter_dir

    if not is_adapter_dir(folder):
        return export_ctranslate2(folder, out, quantization, force=True)
    from .config import MergeConfig
    from .merge import merge_adapter

    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = temp_dir(out.parent, prefix=f".{out.name}.merge.")
    try:
        merged = merge_adapter(MergeConfig(adapter=folder, out=scratch / "merged"))
        return export_ctranslate2(merged, out, quantization, force=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- loading

def load_ct2(model: str, *, device: str = "auto", compute_type: str = "default",
             language: str | None = None) -> Ct2Model:
    """Convert (once) and load ``model`` with faster-whisper; a cached folder that does not
    load (damaged after it was written) is rebuilt once."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as err:
        raise EngineUnavailable(f"faster-whisper is not installed ({err})") from err
    dev, index = resolve_device(device)
    ctype = resolve_compute_type(compute_type, dev, supported_compute_types(dev, index))
    path = converted_model(model, ctype)

    def open_model(folder: Path):
        return WhisperModel(str(folder), device=dev, device_index=index, compute_type=ctype,
                            cpu_threads=cpu_threads())

    try:
        fw = open_model(path)
    except Exception as err:        # ctranslate2 raises RuntimeError/ValueError on bad files
        log.warning("cannot load %s (%s)", path, err)
        path = converted_model(model, ctype, rebuild=True)
        try:
            fw = open_model(path)
        except Exception as again:
            raise EngineUnavailable(f"CTranslate2 cannot load {model} ({again})") from again
    from .ct2_features import use_windowed_features

    use_windowed_features(fw)        # long recordings: bounded memory, the same features
    multilingual = is_multilingual(path)
    if multilingual and not fw.model.is_multilingual:
        fw.model = _Multilingual(fw.model)
    return Ct2Model(fw, model, path, multilingual, PromptTokenizer(fw.hf_tokenizer), ctype,
                    language_code(language, multilingual, model))


def cpu_threads() -> int:
    """One CTranslate2 thread per physical core this process may use. faster-whisper's own
    default is a fixed 4, which leaves cores idle on bigger machines (on the 2-core project
    machine 4 and 2 threads measured the same, BENCHMARKS.md); hyper-threads add little to
    matrix products, so physical cores, as torch counts them."""
    import os

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or usable
    except ImportError:
        physical = usable
    return max(1, min(usable, physical))


def is_multilingual(converted: Path) -> bool:
    """The converter writes the language token ids of multilingual models only."""
    return bool(json.loads((converted / "config.json").read_text()).get("lang_ids"))


class _Multilingual:
    """A ctranslate2 Whisper that says it is multilingual. CTranslate2 guesses that from
    the vocabulary size (>= 51,865, OpenAI's); a multilingual Whisper with another
    vocabulary (our tiny test model) would lose its language and task tokens."""

    is_multilingual = True

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def language_code(language: str | None, multilingual: bool, source: str) -> str | None:
    """faster-whisper wants a code ("en"); people may write "english". English-only models
    take none (PITFALLS #1) and refuse other languages, as the transformers path does."""
    if not multilingual:
        from .modelio import refuse_for_english_only

        if language:
            refuse_for_english_only(source, language)
        return None
    if not language:
        return None                 # multilingual, no language given: Whisper detects it
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = language.lower()
    if code not in _LANGUAGE_CODES:
        from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

        code = TO_LANGUAGE_CODE.get(code, code)
    if code not in _LANGUAGE_CODES:
        raise VocabtuneError(f"unknown language {language!r}", hint="give an ISO code such as en or de")
    return code


class PromptTokenizer:
    """The faster-whisper model's own tokenizer (``tokenizers.Tokenizer``, the copied
    tokenizer.json) behind the three calls prompting.py makes, so prompting.py stays the
    one place that formats and budgets the prompt, without loading transformers."""

    def __init__(self, tok: Any) -> None:
        self._tok = tok

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": self._tok.encode(text, add_special_tokens=add_special_tokens).ids}

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i, t in self._tok.get_added_tokens_decoder().items() if t.special]

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._tok.token_to_id(token)

    def encode_text(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids


# ---------------------------------------------------------------- transcription

def transcription_options(loaded: Ct2Model, decoding: "Decoding") -> dict:
    """faster-whisper arguments equal to the transformers path's generate arguments.

    The prompt goes in as ``hotwords``, not ``initial_prompt``: with
    condition_on_previous_text=False faster-whisper drops ``initial_prompt`` after the first
    window, while transformers (and our prompt biasing) puts it before every window;
    hotwords are ``<|startofprev|> " " + text`` on every window, the same tokens as
    prompting.prompt_ids_for. No no-speech skipping: transformers' path has none either.

    No ``max_new_tokens``: faster-whisper then bounds prompt + output by Whisper's 448
    itself. Capped at 224, as the transformers path is, CTranslate2 ended a 30 s window of
    113 tokens differently (its last sentence lost, the next window started 3 s later):
    llm-lingo validation's draft had 21.1% WER against faster-whisper's own 18.6%, with the
    same model and every other option equal.
    """
    fallback = decoding.fallback
    return dict(
        language=loaded.language, task="transcribe", beam_size=decoding.num_beams, best_of=5,
        temperature=list(FALLBACK_TEMPERATURES if fallback else (0.0,)),
        compression_ratio_threshold=GZIP_RATIO_THRESHOLD if fallback else None,
        log_prob_threshold=LOGPROB_THRESHOLD if fallback else None,
        no_speech_threshold=None, condition_on_previous_text=False,
        hotwords=decoding.prompt_text or None, without_timestamps=False, vad_filter=False)


def transcribe_audio(loaded: Ct2Model, audio: np.ndarray, decoding: "Decoding",
                     bar: Any = None) -> list[Cue]:
    """Cues of 16 kHz mono float32 samples; the bar advances to each segment's end."""
    if len(audio) < MIN_SAMPLES:
        return []
    segments, _info = loaded.model.transcribe(np.asarray(audio, dtype=np.float32),
                                              **transcription_options(loaded, decoding))
    return cues_from_pieces(list(_pieces(segments, bar)), len(audio) / SAMPLE_RATE)


def transcribe_and_hear(loaded: Ct2Model, audio: np.ndarray, decoding: "Decoding",
                        bar: Any = None) -> tuple[list[Cue], tuple[str, float] | None]:
    """:func:`transcribe_audio`, and the (language code, probability) Whisper hears in the
    first 30 s (None for an English-only model or audio too short to decode), read from the
    encoder output of the transcription's first window. Why: ``detect_language`` encodes
    that window again, the costliest step of a short recording; on 8 voice memos of 5-25 s
    it took 8.5 s beside 13.5 s of transcription."""
    first: list[Any] = []
    fw = loaded.model
    own = vars(fw).get("encode")            # an instance attribute to put back, if any

    def encode(features: Any) -> Any:
        out = (own or type(fw).encode.__get__(fw))(features)
        if not first:
            first.append(out)
        return out

    fw.encode = encode
    try:
        cues = transcribe_audio(loaded, audio, decoding, bar)
    finally:
        if own is None:
            del fw.encode
        else:
            fw.encode = own
    return cues, (_language_of(loaded, first[0]) if first and loaded.multilingual else None)


def _language_of(loaded: Ct2Model, encoder_output: Any) -> tuple[str, float] | None:
    """The most likely language of one encoded window; None when detection fails (it is
    only a check)."""
    try:
        token, probability = loaded.model.model.detect_language(encoder_output)[0][0]
    except Exception as err:
        log.debug("language detection failed: %s", err)
        return None
    return token[2:-2], float(probability)      # "<|de|>" -> "de"


def _pieces(segments: Iterable[Any], bar: Any) -> Iterable[Piece]:
    for seg in segments:          # a generator: each window is decoded as we ask for it
        if bar is not None:
            bar.n = min(round(float(seg.end), 1), bar.total)
            bar.refresh()
        yield Piece(float(seg.start), float(seg.end), seg.text)


def prompt_text(terms: Sequence[str], dropped: Sequence[str]) -> str:
    """The glossary text of the terms prompting.vocab_prompt_ids kept (unique, in order,
    minus the dropped ones), formatted by prompting.format_prompt."""
    from .prompting import format_prompt

    gone = set(dropped)
    kept = [t for t in dict.fromkeys(t for t in terms if t.strip()) if t not in gone]
    return format_prompt(kept)
