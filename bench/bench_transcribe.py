#!/usr/bin/env python3
"""Transcription speed and quality: vocabtune's engines against faster-whisper, one run.

    .venv/bin/python bench/bench_transcribe.py [--model .cache/models/whisper-base]
        [--data ../shared/data/llm-lingo] [--repeats 3] [--transformers-repeats 1]

Systems, all greedy (beam 1), no conditioning on the previous window, language en:
  fw-int8   faster-whisper WhisperModel directly, compute int8, on a conversion made with
            ctranslate2's own TransformersConverter (the reference)
  fw-int8-tN  the same with cpu_threads=N, the thread count vocabtune picks (physical cores;
            faster-whisper's own default is 4 threads)
  fw-fp32   the same with compute float32 (a float32 conversion)
  vt-ct2    vocabtune --engine ctranslate2 (library calls: load_engine + transcribe_file,
            which includes ffmpeg decoding and the cue clean-up)
  vt-hf     vocabtune --engine transformers (PyTorch long-form generate)

Each repeat loads every system once (as one command does) and transcribes every file;
systems are interleaved within a repeat so machine-load drift hits them alike. Times are
medians over repeats: load, transcribe (sum over files) and total = load + transcribe.
RTF = total / audio seconds; "× fw-int8" = total / fw-int8's total (below 1 = faster).
Quality is from the last repeat: WER of the whole-file text against the corrected VTT
(Whisper-normalised, vocabtune.scoring.wer), term recall (vocabtune.scoring.score, one
chunk per file), and cue timing: each corrected cue is matched to the output cue that
overlaps it most; the median |start difference| over matched cues. The 1-minute load
average is printed before and after each system run: figures from a busy machine are
comparable only within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vocabtune.captions import read_vtt  # noqa: E402
from vocabtune.config import SAMPLE_RATE, TranscribeConfig  # noqa: E402
from vocabtune.schema import Cue  # noqa: E402
from vocabtune.scoring import score, wer  # noqa: E402
from vocabtune.vocab import read_vocab, term_texts  # noqa: E402

REFERENCE = "fw-int8"
COPY_FILES = ["tokenizer.json", "preprocessor_config.json"]


@dataclass
class System:
    name: str
    load: Callable[[], Any]                     # -> model
    run: Callable[[Any, Path], list[Cue]]       # (model, audio file) -> cues
    repeats: int
    files: list[str]


@dataclass
class Result:
    loads: list[float] = field(default_factory=list)
    file_times: dict[str, list[float]] = field(default_factory=dict)   # per file, per repeat
    cues: dict[str, list[Cue]] = field(default_factory=dict)
    loadavg: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- systems

def reference_conversion(model: Path, quantization: str, out_root: Path) -> Path:
    """ctranslate2's own converter, as a faster-whisper user would run it (not timed)."""
    from ctranslate2.converters import TransformersConverter

    out = out_root / f"{model.name}-ct2ref-{quantization}"
    if not (out / "model.bin").is_file():
        started = time.perf_counter()
        TransformersConverter(str(model), copy_files=COPY_FILES).convert(
            str(out), quantization=quantization, force=True)
        print(f"converted {model} -> {out} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return out


def faster_whisper_system(name: str, path: Path, compute_type: str, repeats: int,
                          files: list[str], threads: int = 0) -> System:
    def load():
        from faster_whisper import WhisperModel

        return WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def run(model, audio: Path) -> list[Cue]:
        segments, _ = model.transcribe(str(audio), language="en", beam_size=1,
                                       condition_on_previous_text=False)
        return [Cue(round(s.start, 3), round(s.end, 3), s.text.strip()) for s in segments]

    return System(name, load, run, repeats, files)


def vocabtune_system(name: str, model: Path, engine: str, repeats: int, files: list[str],
                     prompt_vocab: Path | None) -> System:
    from vocabtune.ct2_engine import Ct2Model
    from vocabtune.transcribe import decoding_for, load_engine, transcribe_file

    cfg = TranscribeConfig(model=str(model), engine=engine, device="cpu", language="en",
                           prompt_vocab=prompt_vocab is not None, vocab=prompt_vocab)

    def load():
        loaded = load_engine(cfg)
        if engine == "ctranslate2" and not isinstance(loaded, Ct2Model):
            raise SystemExit("vt-ct2 fell back to transformers: see the log above")
        return loaded, decoding_for(loaded, cfg)

    def run(state, audio: Path) -> list[Cue]:
        loaded, decoding = state
        return transcribe_file(loaded, audio, decoding)

    return System(name, load, run, repeats, files)


# ---------------------------------------------------------------- timing

def loadavg() -> str:
    return "%.2f" % os.getloadavg()[0]


def time_once(system: System, audio: dict[str, Path], result: Result) -> None:
    """One repeat of one system: load once, transcribe its files."""
    before = loadavg()
    started = time.perf_counter()
    model = system.load()
    result.loads.append(time.perf_counter() - started)
    spent = 0.0
    for name in system.files:
        started = time.perf_counter()
        result.cues[name] = system.run(model, audio[name])
        took = time.perf_counter() - started
        result.file_times.setdefault(name, []).append(took)
        spent += took
    result.loadavg.append(f"{before}→{loadavg()}")
    del model
    print(f"  {system.name}: load {result.loads[-1]:.2f} s, transcribe {spent:.1f} s "
          f"(load avg {result.loadavg[-1]})", file=sys.stderr)


def run_all(systems: list[System], audio: dict[str, Path], repeats: int) -> dict[str, Result]:
    results = {s.name: Result() for s in systems}
    for r in range(repeats):
        print(f"repeat {r + 1}/{repeats}", file=sys.stderr)
        for system in systems:
            if r < system.repeats:
                time_once(system, audio, results[system.name])
    return results


# ---------------------------------------------------------------- quality

def start_offsets(ref: list[Cue], hyp: list[Cue]) -> list[float]:
    """|start difference| of each reference cue and the output cue overlapping it most."""
    out = []
    for cue in ref:
        overlaps = [(min(cue.end, h.end) - max(cue.start, h.start), h) for h in hyp]
        best = max(overlaps, default=(0.0, None), key=lambda o: o[0])
        if best[0] > 0:
            out.append(abs(best[1].start - cue.start))
    return out


def quality(result: Result, refs: dict[str, list[Cue]], terms: list[str]) -> dict:
    names = list(result.cues)
    ref_text = {n: " ".join(c.text for c in refs[n]) for n in names}
    hyp_text = {n: " ".join(c.text for c in result.cues[n]) for n in names}
    report = score("", [ref_text[n] for n in names], [hyp_text[n] for n in names], terms)
    offsets = [d for n in names for d in start_offsets(refs[n], result.cues[n])]
    return {"wer": {n: wer([ref_text[n]], [hyp_text[n]]) for n in names},
            "all_wer": report.wer, "recall": report.term_recall,
            "start_delta": statistics.median(offsets) if offsets else None,
            "matched": f"{len(offsets)}/{sum(len(refs[n]) for n in names)}",
            "cues": sum(len(result.cues[n]) for n in names)}


# ---------------------------------------------------------------- table

def medians(result: Result, files: list[str]) -> tuple[float, float]:
    """(median load, sum over ``files`` of the median transcribe time)."""
    return (statistics.median(result.loads),
            sum(statistics.median(result.file_times[f]) for f in files))


def row(name: str, results: dict[str, Result], q: dict, seconds: dict[str, float],
        files: list[str]) -> str:
    result = results[name]
    load, trans = medians(result, files)
    ref_load, ref_trans = medians(results[REFERENCE], files)
    audio_s = sum(seconds[f] for f in files)
    wers = " / ".join(f"{q['wer'][f]:.1%}" if f in q["wer"] else "—" for f in seconds)
    recall = "—" if q["recall"] is None else f"{q['recall']:.1%}"
    delta = "—" if q["start_delta"] is None else f"{q['start_delta']:.2f}"
    return (f"| {name} | {len(result.loads)} | {'+'.join(files)} | {load:.2f} | {trans:.1f} | "
            f"{load + trans:.1f} | {(load + trans) / audio_s:.3f} | {(load + trans) / (ref_load + ref_trans):.2f} | "
            f"{wers} | {q['all_wer']:.1%} | {recall} | {delta} | {q['matched']} | {q['cues']} | "
            f"{', '.join(result.loadavg)} |")


def table(results: dict[str, Result], systems: list[System], refs: dict[str, list[Cue]],
          terms: list[str], seconds: dict[str, float]) -> str:
    head = ("| system | repeats | files | load s | transcribe s | total s | RTF | × fw-int8 | "
            f"WER {' / '.join(seconds)} | WER all | term recall | cue start Δ median s | "
            "cues matched | cues out | load avg (1 min) before→after |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for system in systems:
        q = quality(results[system.name], refs, terms)
        lines.append(row(system.name, results, q, seconds, system.files))
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / ".cache/models/whisper-base",
                   help="transformers Whisper folder")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/llm-lingo",
                   help="folder with <name>.mp3, corrected <name>.vtt and terms.txt")
    p.add_argument("--files", nargs="+", default=["train", "validation"], help="recordings to use")
    p.add_argument("--repeats", type=int, default=3, help="repeats of each fast system")
    p.add_argument("--transformers-repeats", type=int, default=1,
                   help="repeats of vt-hf (it is several times slower; 0 skips it)")
    p.add_argument("--transformers-files", nargs="+", default=None,
                   help="recordings for vt-hf (default: --files)")
    p.add_argument("--prompt-vocab", action="store_true",
                   help="vocabtune systems prompt with terms.txt (faster-whisper rows do not)")
    p.add_argument("--work", type=Path, default=ROOT / ".cache/bench",
                   help="reference conversions and vocabtune's conversion cache")
    return p.parse_args(argv)


def build_systems(a: argparse.Namespace) -> list[System]:
    from vocabtune.ct2_engine import cpu_threads

    ref_root = a.work / "ct2-reference"
    vocab = a.data / "terms.txt" if a.prompt_vocab else None
    int8 = reference_conversion(a.model, "int8", ref_root)
    systems = [
        faster_whisper_system("fw-int8", int8, "int8", a.repeats, a.files),
        # the same, told the thread count vocabtune picks (faster-whisper's default is 4)
        faster_whisper_system(f"fw-int8-t{cpu_threads()}", int8, "int8", a.repeats, a.files,
                              threads=cpu_threads()),
        faster_whisper_system("fw-fp32", reference_conversion(a.model, "float32", ref_root), "float32",
                              a.repeats, a.files),
        vocabtune_system("vt-ct2", a.model, "ctranslate2", a.repeats, a.files, vocab),
    ]
    if a.transformers_repeats > 0:
        systems.append(vocabtune_system("vt-hf", a.model, "transformers", a.transformers_repeats,
                                        a.transformers_files or a.files, vocab))
    return systems


def warm_vocabtune_cache(model: Path) -> None:
    """vocabtune converts once per model and caches; that one-time cost is reported here,
    not inside the timed runs (a second `transcribe` never pays it)."""
    from vocabtune.ct2_engine import converted_model

    started = time.perf_counter()
    path = converted_model(str(model), "int8")
    print(f"vocabtune CTranslate2 cache: {path} ({time.perf_counter() - started:.1f} s, "
          "0 when already cached)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    os.environ.setdefault("VOCABTUNE_CACHE", str(a.work / "vocabtune-cache"))
    from vocabtune.audio import decode_audio

    audio = {n: a.data / f"{n}.mp3" for n in a.files}
    refs = {n: read_vtt(a.data / f"{n}.vtt")[0] for n in a.files}
    seconds = {n: len(decode_audio(p)) / SAMPLE_RATE for n, p in audio.items()}
    terms = term_texts(read_vocab(a.data / "terms.txt"))
    warm_vocabtune_cache(a.model)
    systems = build_systems(a)
    print(f"load average before: {loadavg()}; cores: {os.cpu_count()}", file=sys.stderr)
    results = run_all(systems, audio, max(s.repeats for s in systems))
    print(f"Audio: {', '.join(f'{n}.mp3 {s:.1f} s' for n, s in seconds.items())}; model {a.model.name}; "
          f"medians of the repeats shown; load averages per repeat.\n")
    print(table(results, systems, refs, terms, seconds))
    print("\nCommand: " + " ".join([".venv/bin/python", "bench/bench_transcribe.py"] + sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
