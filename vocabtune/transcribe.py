"""Step 1: Whisper turns each recording into a WebVTT file of timed cues.

Two engines run the same decoding (``TranscribeConfig.engine``): ``ctranslate2`` (the
default: faster-whisper on a cached CTranslate2 conversion of the model, several times
faster on CPU at equal WER, see :mod:`vocabtune.ct2_engine` and bench/bench_transcribe.py)
and ``transformers``, described here. When the CTranslate2 engine cannot run (not
installed, conversion failed, a device it does not support) the transformers engine is
used and the reason logged.

Long recordings use transformers' sequential long-form ``generate`` (the algorithm of
Whisper's paper, section 3.8): 30 s windows, each moved on to the last timestamp Whisper
predicted, so no sentence is cut at a window edge. Recordings of 30 s or less go through
the feature extractor's default (audio zero-padded to 30 s), the convention training and
evaluation use too (PITFALLS #7). Decoding is greedy, with Whisper's temperature fallback
(below), and with no conditioning on the previous window's text: that conditioning is what
lets one hallucination repeat through a whole file.

Whisper's segments become cues through :mod:`vocabtune.cues_from_whisper`, which makes
any output (including a random test model's) a valid caption file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from . import log_mel
from .audio import decode_audio, is_silent, silent_error
from .ct2_engine import (MIN_SAMPLES, Ct2Model, EngineUnavailable, ENGINES, load_ct2, prompt_text)
from .ct2_engine import transcribe_and_hear as ct2_transcribe_and_hear
from .ct2_engine import transcribe_audio as ct2_transcribe_audio
from .config import DEFAULT_LANGUAGE, MAX_CHUNK_S, SAMPLE_RATE, TranscribeConfig
from .cues_from_whisper import Piece, cues_from_pieces, pieces_from_tokens
from .errors import VocabtuneError
from .fsutil import check_writable
from .modelio import LoadedModel, language_kwargs, load_whisper, whisper_of
from .prompting import log_dropped, max_new_tokens_for, vocab_prompt_ids
from .quiet_cues import find_quiet_cues
from .schema import Cue, Severity
from .speech_gaps import frame_levels
from .vocab import read_vocab, term_texts

log = logging.getLogger(__name__)
FRAMES_PER_S = 100               # log-mel frames per second (hop 160 samples at 16 kHz)
# Warnings transformers 5.23 logs on every window of Whisper's own long-form loop, about
# arguments that loop sets itself: they say nothing the person can act on.
# Whisper's temperature fallback (paper, section 4.5): a window whose text repeats itself
# (token compression ratio over 1.35, transformers' scale) or whose mean log-probability
# is under -1 is decoded again with sampling at rising temperatures. It costs nothing on
# windows that pass, and it stops the loops a glossary prompt can trigger ("Mixtral 8x4B,
# Mixtral 8x4B, ..." over 30 s of speech).
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
FALLBACK_THRESHOLDS = {"compression_ratio_threshold": 1.35, "logprob_threshold": -1.0}
HARMLESS_WARNINGS = ("Both `max_new_tokens`", "Passing `generation_config` together with",
                     "The attention mask is not set")


class _DropHarmless(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(HARMLESS_WARNINGS)


for _name in ("transformers.generation.utils", "transformers.generation.configuration_utils",
              "transformers.models.whisper.generation_whisper"):
    logging.getLogger(_name).addFilter(_DropHarmless())


@dataclass(frozen=True)
class Decoding:
    """How to decode: one object so every caller decodes the same way."""

    language: str | None
    prompt_ids: tuple[int, ...] = ()
    num_beams: int = 1
    fallback: bool = True        # re-decode a window that loops or is unsure (see below)
    prompt_text: str = ""        # the text of prompt_ids (the CTranslate2 engine takes text)


# ---------------------------------------------------------------- the two commands

def transcribe_recordings(cfg: TranscribeConfig,
                          failures: list[VocabtuneError] | None = None) -> list[Path]:
    """``prepare_data.py transcribe``: a ``<stem>.vtt`` for every recording that has none
    (with ``cfg.force``: for every recording, the old file kept as a backup). Returns the
    files written; recordings that already have captions are logged and skipped.

    With a ``failures`` list, a recording that cannot be decoded is added to it and the
    others are still transcribed (one bad file among twenty should not cost a rerun per
    file); without one, the first such error is raised."""
    todo, skipped = [], []
    for audio in audio_files(cfg.recordings):
        out = output_path(audio, cfg)
        (skipped if out.exists() and not cfg.force else todo).append((audio, out))
    _log_skipped(skipped)
    if not todo:
        return []
    cfg = with_language(cfg)
    loaded = load_engine(cfg)
    decoding = decoding_for(loaded, cfg)
    written = []
    languages = OtherLanguages()
    for n, (audio, out) in enumerate(todo, 1):
        try:
            cues = transcribe_file(loaded, audio, decoding, _count(n, len(todo)), languages)
        except VocabtuneError as err:
            if failures is None:
                raise
            failures.append(err)
            continue
        written.append(write_cues(out, cues, force=cfg.force, language=decoding.language))
    languages.summarise(decoding)
    return written


def _log_skipped(skipped: Sequence[tuple[Path, Path]], listed: int = 3) -> None:
    """One line for the recordings that have captions, however many: adding a day's voice
    memos to fifty transcribed ones logged fifty "skipped" lines before the new ones."""
    if len(skipped) == 1:
        audio, out = skipped[0]
        log.info("skipped %s: %s exists (your corrections stay; --force redoes it)", audio.name, out.name)
    elif skipped:
        names = ", ".join(a.name for a, _ in skipped[:listed]) + (", …" if len(skipped) > listed else "")
        log.info("skipped %d recordings that have a .vtt already (%s): your corrections stay; "
                 "--force redoes them", len(skipped), names)


def transcribe_files(cfg: TranscribeConfig) -> list[str]:
    """``finetune.py transcribe``: ``<stem><cfg.suffix>`` (``.finetuned.vtt``) for each file,
    never touching the person's ``<stem>.vtt``, and ``<stem>.review.md`` beside it, the two
    side by side (review.py; also for a transcript kept from an earlier run). Returns lines
    to print: what was written and, where the person's VTT and a vocabulary exist, how the
    term counts differ."""
    from .review import review_path, write_review     # a later stage's: scoring the result

    if not cfg.files:
        raise VocabtuneError("no audio files given", hint="name one or more recordings")
    check_audio_args(cfg.files)
    plan = planned_outputs(cfg)
    for folder in dict.fromkeys(out.parent for out in plan.values()):
        check_writable(folder, "the transcript", "choose a folder you can write to with --out")
    for audio, out in plan.items():
        if out == Path(audio).with_suffix(".vtt"):
            raise VocabtuneError("output would replace your caption file", file=out,
                                 hint="use a suffix such as .finetuned.vtt")
    cfg = with_language(cfg)
    todo = [audio for audio, out in plan.items() if cfg.force or not out.exists()]
    # only when something is to be transcribed: whisper-small takes seconds to load, and a
    # rerun that only refreshes the reviews needs no model
    loaded = load_engine(cfg) if todo else None
    decoding = decoding_for(loaded, cfg) if loaded else None
    language = (decoding.language if decoding else cfg.language) or DEFAULT_LANGUAGE
    terms = _terms_if_any(cfg.vocab)
    lines: list[str] = []
    languages = OtherLanguages()
    for n, (audio, out) in enumerate(plan.items(), 1):
        mine = Path(audio).with_suffix(".vtt")
        if audio not in todo:
            lines.append(f"skipped {out} (exists; --force redoes it, keeping a backup)")
        else:
            cues = transcribe_file(loaded, Path(audio), decoding, _count(n, len(plan)), languages)
            lines.append(f"wrote {write_cues(out, cues, force=cfg.force, language=decoding.language)}")
            lines.extend(term_diff(mine, out, terms))
        lines.append(write_review(mine, out, review_path(out, Path(audio).stem), terms, force=cfg.force,
                                  language=language))
    if decoding:
        languages.summarise(decoding)
    return lines


# ---------------------------------------------------------------- pieces of the commands

def planned_outputs(cfg: TranscribeConfig) -> dict[Path, Path]:
    """Each audio file's transcript path, a file named twice taken once. Two recordings of
    one name (``a/talk.mp3`` and ``b/talk.mp3`` with one ``--out``) are refused. Why: the
    second was "skipped (exists; --force redoes it)" on the file this very run had just
    written for the first, and with --force it replaced it."""
    plan: dict[Path, Path] = {}
    by_output: dict[Path, Path] = {}
    for audio in map(Path, cfg.files):
        out = output_path(audio, cfg)
        first = by_output.setdefault(out.parent.resolve() / out.name, audio)
        if first.resolve() == audio.resolve():
            plan.setdefault(first, out)
            continue
        raise VocabtuneError(f"{first} and {audio} would both be transcribed into this file", file=out,
                             hint="transcribe them into different --out folders, or rename one")
    return plan


def check_audio_args(files: Sequence[Path]) -> None:
    """Every named file exists and is a file, checked before the model is loaded. Why: loading
    (and, the first time, converting it for CTranslate2) takes up to minutes, and a folder was
    reported as "audio file not found" only after that."""
    for path in map(Path, files):
        if path.is_dir():
            raise VocabtuneError("this is a folder; transcribe takes audio files", file=path,
                                 hint=f"name the recordings, e.g. {path / '*.mp3'}")
        if not path.is_file():
            raise VocabtuneError("audio file not found", file=path, hint="check the path")


def with_language(cfg: TranscribeConfig) -> TranscribeConfig:
    """``cfg`` with its language settled (modelio.resolve_language)."""
    from .modelio import resolve_language

    return replace(cfg, language=resolve_language(cfg.model, cfg.language))


def audio_files(folder: Path) -> list[Path]:
    """Every recording in ``folder`` (recordings.py's rules), sorted by name. Two recordings
    with one name (train.mp3 + train.wav) would share one caption file: refused."""
    from .recordings import discover_recordings, name_key

    recordings, problems = discover_recordings(Path(folder))   # unpaired files are what we fix
    for problem in problems:
        if problem.severity is Severity.WARNING:      # e.g. recordings left in a subfolder
            log.warning("%s", problem)
    if not recordings:      # discovery's own error: it knows whether subfolders hold some
        empty = next(p for p in problems if p.severity is Severity.ERROR and p.file == str(folder))
        raise VocabtuneError(empty.message, file=folder, hint=empty.hint)
    seen: dict[str, Path] = {}
    for rec in recordings:
        first = seen.setdefault(name_key(rec.audio.stem), rec.audio)
        if first != rec.audio:
            raise VocabtuneError(f'two recordings are named "{rec.audio.stem}" ({first.name} and '
                                 f"{rec.audio.name}); they would share one caption file",
                                 file=rec.audio, hint="rename or remove one of them")
    return [rec.audio for rec in recordings]


def output_path(audio: Path, cfg: TranscribeConfig) -> Path:
    from .recordings import same_name_in

    folder = Path(cfg.out_dir) if cfg.out_dir is not None else audio.parent
    return same_name_in(folder, f"{audio.stem}{cfg.suffix}")


def write_cues(path: Path, cues: Sequence[Cue], *, force: bool, language: str | None = None) -> Path:
    """Write through captions.write_new_vtt: atomic, never clobbering, backup on force; the
    header names the language it was transcribed in (what ``build`` records)."""
    from .captions import write_new_vtt
    from .targets import language_code

    path.parent.mkdir(parents=True, exist_ok=True)
    write_new_vtt(path, cues, force=force, language=language_code(language) if language else None)
    log.debug("wrote %s (%d cues)", path, len(cues))
    return path


def load_engine(cfg: TranscribeConfig) -> "LoadedModel | Ct2Model":
    """The model on the engine ``cfg.engine`` names; CTranslate2 falls back to
    transformers (logged) when it cannot run here. Bad model names fail on either."""
    from .modelio import _check_source, pick_device

    if cfg.engine not in ENGINES:
        raise VocabtuneError(f"unknown engine {cfg.engine!r}", hint=f"choose one of {', '.join(ENGINES)}")
    pick_device(cfg.device)          # a device this machine lacks: one clear error, for both engines
    if cfg.engine == "ctranslate2":
        _check_source(cfg.model)
        try:
            return load_ct2(cfg.model, device=cfg.device, compute_type=cfg.compute_type,
                            language=cfg.language)
        except EngineUnavailable as why:
            log.warning("CTranslate2 engine unavailable (%s); using transformers", why)
    return load_whisper(cfg.model, device=cfg.device, language=cfg.language)


def decoding_for(loaded: "LoadedModel | Ct2Model", cfg: TranscribeConfig) -> Decoding:
    """The decoding settings of one command, with the vocabulary prompt if asked for."""
    prompt: list[int] = []
    text = ""
    if cfg.prompt_vocab:
        terms = term_texts(read_vocab(Path(cfg.vocab or "vocab")))
        tokenizer = loaded.tokenizer if isinstance(loaded, Ct2Model) else loaded.processor
        prompt, dropped = vocab_prompt_ids(tokenizer, terms)
        log_dropped(dropped, len(terms) - len(dropped))
        text = prompt_text(terms, dropped) if prompt else ""
        if not prompt:
            log.warning("--prompt-vocab: the vocabulary is empty, transcribing without a prompt")
    return Decoding(cfg.language, tuple(prompt), cfg.num_beams, cfg.temperature_fallback, text)


def _terms_if_any(vocab: Path | None) -> list[str]:
    if vocab is None or not Path(vocab).exists():
        return []
    return term_texts(read_vocab(Path(vocab)))


def term_diff(person_vtt: Path, new_vtt: Path, terms: Sequence[str]) -> list[str]:
    """Per term, how often it occurs in the person's VTT and how often the new one spells
    it exactly (capitals included, as the term metrics count); only the rows that differ,
    or one line saying they all match."""
    from .captions import read_vtt, unreadable

    if not terms or not person_vtt.is_file() or unreadable(person_vtt):    # the review line says why
        return []
    from .vocab import count_terms

    mine = count_terms(terms, " ".join(c.text for c in read_vtt(person_vtt)[0]))
    new = count_terms(terms, " ".join(c.text for c in read_vtt(new_vtt)[0]), exact=True)
    rows = [t for t in terms if mine[t] != new[t]]
    if not rows:
        return [f"  all {len(terms)} terms match {person_vtt.name}"]
    width = max(len(t) for t in rows)
    head = f"  {'term':<{width}}  {person_vtt.name:>{len(person_vtt.name)}}  {new_vtt.name}"
    return [head] + [f"  {t:<{width}}  {mine[t]:>{len(person_vtt.name)}}  {new[t]:>{len(new_vtt.name)}}"
                     for t in rows]


# ---------------------------------------------------------------- one recording

def _count(n: int, total: int) -> str:
    """``[3/51] `` before a file's progress and log line when there are several: sixty
    voice memos gave sixty lines that did not say how many were left."""
    return f"[{n}/{total}] " if total > 1 else ""


def transcribe_file(loaded: "LoadedModel | Ct2Model", audio_path: Path, decoding: Decoding,
                    count: str = "", languages: OtherLanguages | None = None) -> list[Cue]:
    """Decode one recording and return its cues, with a progress bar in audio seconds;
    ``count`` (``[3/51] ``) goes before its name; ``languages`` collects the run's
    recordings in another language (without it, each is warned of)."""
    audio = decode_audio(audio_path)
    if is_silent(audio):        # Whisper would write "you" over it, a cue to train on
        raise silent_error(audio_path)
    seconds = len(audio) / SAMPLE_RATE
    with tqdm(total=round(seconds, 1), unit="s", desc=count + audio_path.name, disable=None,
              bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]") as bar:
        cues, heard = _decode_and_hear(loaded, audio, decoding, bar)
        bar.n = bar.total
        bar.refresh()
    (languages or OtherLanguages()).note(heard, audio_path, decoding)
    cues = without_unheard_cues(rescue_sparse_spans(loaded, audio, decoding, cues), audio, audio_path)
    log.info("%s%s: %.1f s of audio, %d cue%s", count, audio_path.name, seconds, len(cues),
             "" if len(cues) == 1 else "s")
    return cues


def without_unheard_cues(cues: list[Cue], audio: np.ndarray, path: Path) -> list[Cue]:
    """Cues with no speech under them left out, each one a cue the person had to find and
    delete or it became training text. Over digital silence whisper-base wrote "you" for
    each 30 s window of a silent lead-in; over 30 s of a quiet room it wrote twenty cues of
    made-up dialogue (:mod:`vocabtune.quiet_cues` tells the room from the voice). Should a
    soft real cue go too, check reports its speech as having no cue."""
    quiet = set(find_quiet_cues(cues, frame_levels(audio * 32768.0, SAMPLE_RATE)))
    unheard = [c in quiet or is_silent(audio[round(c.start * SAMPLE_RATE): round(c.end * SAMPLE_RATE)])
               for c in cues]
    dropped = [c for c, gone in zip(cues, unheard) if gone]
    if dropped:
        log.info("%s: left out %d cue(s) with no speech under them (%s)", path.name, len(dropped),
                 ", ".join(f'"{c.text}" at {c.start:.1f} s' for c in dropped[:3]))
    return [c for c, gone in zip(cues, unheard) if not gone]


OTHER_LANGUAGE_MIN_P = 0.8      # how sure Whisper must be before we say it is another language


def other_language(heard: tuple[str, float] | None, language: str | None) -> tuple[str, float] | None:
    """``heard`` when it is, with confidence, another language than ``language``. Why: told
    "en" (the default), Whisper *translates* German speech into English without a word of
    complaint, and the person would correct a translation."""
    from .targets import language_code

    if heard is None or not language:
        return None
    code, probability = heard
    return heard if code != language_code(language) and probability >= OTHER_LANGUAGE_MIN_P else None


@dataclass
class OtherLanguages:
    """The recordings of one run heard in another language than asked, by language code.
    Each language is warned of at its first recording, so the person can stop the run, and
    summed up at the end; a German speaker who forgot ``--language`` got the same warning
    once per voice memo, sixty times."""

    found: dict[str, list[str]] = field(default_factory=dict)

    def note(self, heard: tuple[str, float] | None, path: Path, decoding: Decoding) -> None:
        other = other_language(heard, decoding.language)
        if other is None:
            return
        names = self.found.setdefault(other[0], [])
        names.append(path.name)
        if len(names) == 1:
            log.warning("%s sounds like %s (%.0f%% sure) but is transcribed as %s, which makes Whisper "
                        "translate it: pass --language %s", path.name, other[0], 100 * other[1],
                        decoding.language, other[0])

    def summarise(self, decoding: Decoding) -> None:
        """One line per language heard in more than one recording."""
        for code, names in self.found.items():
            if len(names) > 1:
                listed = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
                log.warning("%d recordings sound like %s (%s) but were transcribed as %s: pass "
                            "--language %s (with --force to redo them)", len(names), code, listed,
                            decoding.language, code)


def _heard_language(loaded: LoadedModel, audio: np.ndarray) -> tuple[str, float] | None:
    """The (language, probability) heard in the first 30 s, for the transformers engine (as
    ct2_engine.transcribe_and_hear, on a pass of its own): the first decoder step's
    probabilities over the language tokens (what ``detect_language`` takes the argmax of)."""
    import torch

    model = whisper_of(loaded.model)
    lang_to_id = getattr(model.generation_config, "lang_to_id", None)
    if not loaded.multilingual or not lang_to_id or len(audio) < MIN_SAMPLES:
        return None
    features = loaded.processor.feature_extractor(
        audio[: int(MAX_CHUNK_S * SAMPLE_RATE)], sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    start = torch.tensor([[model.generation_config.decoder_start_token_id]], device=loaded.device)
    with torch.inference_mode():
        logits = model(input_features=features.to(loaded.device, loaded.dtype), decoder_input_ids=start,
                       use_cache=False).logits[0, -1]
    probs = logits[list(lang_to_id.values())].float().softmax(-1)
    best = int(probs.argmax())
    return list(lang_to_id)[best].strip("<|>"), float(probs[best])


DECODING_SEED = 0              # temperature fallback samples: the same draws every run


def _decode_cues(loaded: "LoadedModel | Ct2Model", audio: np.ndarray, decoding: Decoding,
                 bar: Any = None) -> list[Cue]:
    """Cues of one recording or span. The random generators are seeded first: a window
    that falls back to sampling (Whisper's temperature fallback) otherwise came out
    differently on every run, so the same recording gave another first draft each time."""
    _seed_sampling(loaded)
    if isinstance(loaded, Ct2Model):
        return ct2_transcribe_audio(loaded, audio, decoding, bar)
    return transcribe_array(loaded, audio, decoding, bar)


def _decode_and_hear(loaded: "LoadedModel | Ct2Model", audio: np.ndarray, decoding: Decoding,
                     bar: Any) -> tuple[list[Cue], tuple[str, float] | None]:
    """:func:`_decode_cues` of a whole recording, and the language heard in its first 30 s;
    CTranslate2 reads that from the transcription's own encoder pass (no second one)."""
    if isinstance(loaded, Ct2Model):
        _seed_sampling(loaded)
        return ct2_transcribe_and_hear(loaded, audio, decoding, bar)
    heard = _heard_language(loaded, audio)
    return _decode_cues(loaded, audio, decoding, bar), heard


def _seed_sampling(loaded: "LoadedModel | Ct2Model") -> None:
    if isinstance(loaded, Ct2Model):
        import ctranslate2

        ctranslate2.set_random_seed(DECODING_SEED)
    else:
        import torch

        torch.manual_seed(DECODING_SEED)


SPARSE_MIN_S = 10.0            # a cue (or a gap between cues) at least this long ...
SPARSE_WORDS_PER_S = 1.0       # ... with fewer words per second than this (under half the
#                                2-3 of read speech) looks like speech the prompt lost
DENSE_WORDS_PER_S = 6.0        # more than twice read speech's rate: text from outside the cue
DENSE_MIN_S = 5.0              # ... over at least this long
RESCUE_MIN_GAIN = 2.0          # keep the unprompted text only if it has this many times the words
LOOP_REPEATS = 4               # a phrase of 1-4 words said this many times in a row is a loop
_LOOP = re.compile(r"\b((?:\w+\W+){0,3}\w+)(?:\W+\1\b){%d,}" % (LOOP_REPEATS - 1), re.IGNORECASE)


def loops(text: str) -> bool:
    """Whether Whisper got stuck repeating itself ("V2, V3, V3, V3, V3, ...")."""
    return _LOOP.search(text) is not None


def rescue_sparse_spans(loaded: "LoadedModel | Ct2Model", audio: np.ndarray, decoding: Decoding,
                        cues: list[Cue]) -> list[Cue]:
    """Prompted decoding sometimes loses speech: a stock phrase ("Thanks for watching!")
    or one sentence over a whole window, windows skipped (a gap with no cue), a loop on a
    term, or a cue holding far more words than its time allows (text from elsewhere). Such
    a span is re-decoded without the prompt, and the unprompted cues replace it only when
    they are clearly better (``_rescued``): a real pause or a slow speaker keeps what the
    prompted pass wrote."""
    if not decoding.prompt_ids:
        return cues
    plain = replace(decoding, prompt_ids=(), prompt_text="")
    out: list[Cue] = []
    for cue in with_gaps(cues, len(audio) / SAMPLE_RATE):
        why = _suspect(cue)
        redo = None
        if why:
            span = audio[int(cue.start * SAMPLE_RATE): int(cue.end * SAMPLE_RATE)]
            redo = _rescued(why, cue, _decode_cues(loaded, span, plain))
        if redo is None:
            out.extend([cue] if cue.text else [])
            continue
        log.info("re-decoded %.1f-%.1f s without the prompt (%s: %r)", cue.start, cue.end, why,
                 cue.text[:80])
        out.extend(replace(c, start=c.start + cue.start, end=min(c.end + cue.start, cue.end))
                   for c in redo)
    return out


def with_gaps(cues: list[Cue], seconds: float) -> list[Cue]:
    """``cues`` with an empty cue in every stretch of ``SPARSE_MIN_S`` or more that none covers."""
    out: list[Cue] = []
    at = 0.0
    for cue in cues:
        if cue.start - at >= SPARSE_MIN_S:
            out.append(Cue(at, cue.start, ""))
        out.append(cue)
        at = max(at, cue.end)
    if seconds - at >= SPARSE_MIN_S:
        out.append(Cue(at, seconds, ""))
    return out


def _suspect(cue: Cue) -> str | None:
    words = len(cue.text.split())
    if loops(cue.text):
        return "a loop"
    if cue.duration >= DENSE_MIN_S and words > DENSE_WORDS_PER_S * cue.duration:
        return "too many words"
    if cue.duration >= SPARSE_MIN_S and words < SPARSE_WORDS_PER_S * cue.duration:
        return "too few words" if words else "no cue"
    return None


def _rescued(why: str, cue: Cue, redo: list[Cue]) -> list[Cue] | None:
    """The unprompted cues when they are clearly better than ``cue``, else None."""
    words = sum(len(c.text.split()) for c in redo)
    if why in ("a loop", "too many words"):
        fine = words and not any(loops(c.text) or _suspect(c) == "too many words" for c in redo)
        return redo if fine and words <= DENSE_WORDS_PER_S * cue.duration else None
    if not cue.text:             # a gap: only speech-like text, not "Thank you." over a pause
        return redo if words >= SPARSE_WORDS_PER_S * cue.duration else None
    return redo if words >= RESCUE_MIN_GAIN * len(cue.text.split()) else None


def transcribe_array(loaded: LoadedModel, audio: np.ndarray, decoding: Decoding,
                     bar: Any = None) -> list[Cue]:
    """Cues of 16 kHz mono samples: long-form generate, then segment -> cue clean-up."""
    segments = generate_segments(loaded, audio, decoding, bar)
    tokenizer = loaded.processor.tokenizer
    tb = timestamp_begin(loaded)

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=True)

    pieces: list[Piece] = []
    for seg in segments:
        tokens = [int(t) for t in seg["tokens"]]
        pieces += pieces_from_tokens(tokens, float(seg["start"]), float(seg["end"]), tb, decode)
    return cues_from_pieces(pieces, len(audio) / SAMPLE_RATE)


def timestamp_begin(loaded: LoadedModel) -> int:
    """Id of ``<|0.00|>``: Whisper's timestamp tokens follow ``<|notimestamps|>``."""
    return int(whisper_of(loaded.model).generation_config.no_timestamps_token_id) + 1


def generate_segments(loaded: LoadedModel, audio: np.ndarray, decoding: Decoding,
                      bar: Any = None) -> list[dict]:
    """transformers' segments for one recording: dicts with ``start``/``end`` (s, from the
    recording start) and ``tokens`` (generated ids incl. timestamp tokens, no prompt)."""
    import torch

    if len(audio) < SAMPLE_RATE // FRAMES_PER_S:        # under one frame: nothing to hear
        return []
    kwargs = _generate_kwargs(loaded, decoding, timestamps=True)
    kwargs.update(return_segments=True, condition_on_prev_tokens=False)
    if decoding.fallback:
        kwargs.update(temperature=FALLBACK_TEMPERATURES, **FALLBACK_THRESHOLDS)
    if bar is not None:
        kwargs["monitor_progress"] = lambda p: _advance(bar, p)
    features, mask = _long_features(loaded, audio)
    with torch.inference_mode():
        out = whisper_of(loaded.model).generate(features, attention_mask=mask, **kwargs)
    return list(out["segments"][0])


def _long_features(loaded: LoadedModel, audio: np.ndarray):
    """Features for the whole recording: the default 30 s padding when it fits one window
    (the training convention), else the full length for sequential long-form decoding,
    computed window by window for long recordings (:mod:`vocabtune.log_mel`: the same
    features without the extractor's 3.4 GB of intermediates per hour of audio)."""
    fe = loaded.processor.feature_extractor
    fits = len(audio) <= MAX_CHUNK_S * SAMPLE_RATE
    if not fits and log_mel.is_long(len(audio)) and log_mel.transformers_windowable(fe):
        features, mask = log_mel.transformers_long_inputs(fe, audio)
    else:
        extra = {} if fits else {"truncation": False, "padding": "longest"}
        inp = fe(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True, **extra)
        features, mask = inp.input_features, inp.attention_mask
    return features.to(loaded.device, loaded.dtype), mask.to(loaded.device)


def _generate_kwargs(loaded: LoadedModel, decoding: Decoding, *, timestamps: bool) -> dict:
    """Greedy (or beam) decoding, language, prompt and a max_new_tokens that keeps
    prompt + start tokens + new tokens within Whisper's 448 (PITFALLS #4)."""
    import torch

    lang = language_kwargs(loaded, decoding.language)
    start_tokens = 1 + (2 if lang else 0) + (0 if timestamps else 1)   # sot, lang, task, notimestamps
    kwargs: dict = dict(num_beams=decoding.num_beams, return_timestamps=timestamps, **lang)
    kwargs["max_new_tokens"] = max_new_tokens_for(len(decoding.prompt_ids) + start_tokens)
    if decoding.prompt_ids:
        kwargs["prompt_ids"] = torch.tensor(decoding.prompt_ids, device=loaded.device)
    return kwargs


def _advance(bar: Any, progress) -> None:
    """generate's monitor_progress gives (frames done, frames total) per item."""
    done = float(progress[0, 0]) / FRAMES_PER_S
    bar.n = min(round(done, 1), bar.total)
    bar.refresh()


# ---------------------------------------------------------------- short clips, batched

def decode_batch(loaded: LoadedModel, arrays: Sequence[np.ndarray], *, language: str | None,
                 prompt_ids: list[int] | None = None, batch_size: int = 8,
                 progress: bool = True) -> list[str]:
    """Plain text of many clips of at most 30 s each (greedy), in input order.

    Clips are decoded longest first so each batch holds clips of similar length, which
    finish decoding at about the same step (less padding work). Features use the feature
    extractor's default 30 s padding, as training does (PITFALLS #7).
    """
    for i, arr in enumerate(arrays):
        if len(arr) > MAX_CHUNK_S * SAMPLE_RATE + 1:
            raise VocabtuneError(f"clip {i} is {len(arr) / SAMPLE_RATE:.1f} s; decode_batch takes "
                                 f"at most {MAX_CHUNK_S:.0f} s", hint="split it, or use transcribe_array")
    decoding = Decoding(language, tuple(prompt_ids or ()))
    order = sorted(range(len(arrays)), key=lambda i: -len(arrays[i]))
    texts = [""] * len(arrays)
    total = round(sum(len(a) for a in arrays) / SAMPLE_RATE, 1)
    with tqdm(total=total, unit="s", desc="decoding", disable=None if progress else True) as bar:
        for at in range(0, len(order), max(1, batch_size)):
            idx = order[at: at + max(1, batch_size)]
            batch = [arrays[i] for i in idx]
            for i, text in zip(idx, _decode_short(loaded, batch, decoding)):
                texts[i] = text
            bar.update(round(sum(len(a) for a in batch) / SAMPLE_RATE, 1))
    return texts


def _decode_short(loaded: LoadedModel, arrays: Sequence[np.ndarray], decoding: Decoding) -> list[str]:
    import torch

    fe = loaded.processor.feature_extractor
    clips = [a if len(a) else np.zeros(1, dtype=np.float32) for a in arrays]
    features = fe(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    kwargs = _generate_kwargs(loaded, decoding, timestamps=False)
    with torch.inference_mode():
        out = whisper_of(loaded.model).generate(features.to(loaded.device, loaded.dtype), **kwargs)
    sequences = out.sequences if hasattr(out, "sequences") else out
    sot = whisper_of(loaded.model).generation_config.decoder_start_token_id
    rows = [_after_last(row.tolist(), sot) for row in sequences]
    return [t.strip() for t in loaded.processor.tokenizer.batch_decode(rows, skip_special_tokens=True)]


def _after_last(ids: list[int], token: int) -> list[int]:
    """Drop a prompt if generate returned one: everything up to the last start token
    (5.23 returns only the new tokens, PITFALLS #2; other versions returned the prompt)."""
    return ids[len(ids) - ids[::-1].index(token):] if token in ids else ids
