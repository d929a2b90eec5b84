#!/usr/bin/env python3
"""Does the faster-whisper export transcribe like the merged model? (issue 5 item 2)

    .venv/bin/python bench/export_parity.py --model MERGED_DIR \
        --audio ../shared/data/llm-lingo/validation.mp3 [--vtt .../validation.vtt] \
        [--terms .../terms.txt] [--out .cache/bench/export-parity]

Transcribes the recording greedily with the merged model on vocabtune's transformers engine
(what `finetune.py transcribe --engine transformers` does), then exports the merged model
with `finetune.py export` at float32 and int8 and transcribes the same recording with plain
faster-whisper on each export, as a faster-whisper user would (beam 1, language en, no
conditioning on previous text, no VAD). Prints, per export: whether the text is identical,
the word difference to the merged model's text (WER of one against the other), and the WER
and term recall of each against the corrected VTT.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vocabtune.captions import read_vtt  # noqa: E402
from vocabtune.config import TranscribeConfig  # noqa: E402
from vocabtune.scoring import score, wer  # noqa: E402
from vocabtune.vocab import read_vocab, term_texts  # noqa: E402


def merged_text(model: Path, audio: Path) -> tuple[str, float]:
    from vocabtune.transcribe import decoding_for, load_engine, transcribe_file

    cfg = TranscribeConfig(model=str(model), engine="transformers", device="cpu", language="en")
    started = time.perf_counter()
    loaded = load_engine(cfg)
    cues = transcribe_file(loaded, audio, decoding_for(loaded, cfg))
    return " ".join(c.text for c in cues), time.perf_counter() - started


def export_text(model: Path, audio: Path, quantization: str, out_root: Path) -> tuple[str, float]:
    from faster_whisper import WhisperModel

    from vocabtune.export import export_ctranslate2

    out = out_root / f"{model.name}-ct2-{quantization}"
    if not (out / "model.bin").is_file():
        export_ctranslate2(model, out, quantization)
    started = time.perf_counter()
    fw = WhisperModel(str(out), device="cpu", compute_type=quantization)
    segments, _ = fw.transcribe(str(audio), language="en", beam_size=1, condition_on_previous_text=False)
    text = " ".join(s.text.strip() for s in segments)
    return text, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="merged model folder (finetune.py merge)")
    ap.add_argument("--audio", type=Path, required=True)
    ap.add_argument("--vtt", type=Path, help="corrected VTT of the recording (default: beside it)")
    ap.add_argument("--terms", type=Path, help="vocabulary file for term recall (default: beside it)")
    ap.add_argument("--out", type=Path, default=ROOT / ".cache/bench/export-parity")
    a = ap.parse_args()
    vtt = a.vtt or a.audio.with_suffix(".vtt")
    terms_file = a.terms or a.audio.parent / "terms.txt"
    reference = " ".join(c.text for c in read_vtt(vtt)[0])
    terms = term_texts(read_vocab(terms_file)) if terms_file.is_file() else []

    base, seconds = merged_text(a.model, a.audio)
    rows = [("merged (transformers)", base, seconds)]
    for q in ("float32", "int8"):
        text, seconds = export_text(a.model, a.audio, q, a.out)
        rows.append((f"export {q} (faster-whisper)", text, seconds))

    print("| system | seconds | identical to merged | word diff vs merged | WER vs corrected | term recall |")
    print("|---|---|---|---|---|---|")
    for name, text, seconds in rows:
        report = score(name, [reference], [text], terms)
        recall = "—" if report.term_recall is None else f"{report.term_recall:.1%}"
        print(f"| {name} | {seconds:.1f} | {'yes' if text == base else 'no'} | {wer([base], [text]):.1%} | "
              f"{report.wer:.1%} | {recall} |")


if __name__ == "__main__":
    main()
