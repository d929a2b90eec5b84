#!/usr/bin/env bash
# The whole flow on the shared llm-lingo recordings with real whisper-base weights, on CPU.
# Usage: bash bench/demo.sh MODEL_DIR DATA_DIR OUT_DIR   (make demo passes these)
# The "hand correction" step is simulated by copying the corrected VTTs shipped with the data.
set -euo pipefail
MODEL=$(realpath "$1"); DATA=$(realpath "$2"); OUT=$3
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY="$REPO/.venv/bin/python"
# A second `make demo` starts afresh: the folder is the demo's own output (marked when it
# was made), so it is removed; a folder without the mark is never touched.
if [ -e "$OUT" ]; then
  if [ -f "$OUT/.vocabtune-demo" ]; then
    echo "removing the previous demo output in $OUT"; rm -rf "$OUT"
  else
    echo "error: $OUT exists and was not made by this demo; move it or pass another folder" >&2; exit 1
  fi
fi
mkdir -p "$OUT" && touch "$OUT/.vocabtune-demo" && cd "$OUT"
mkdir -p recordings vocab first-pass
cp "$DATA/train.mp3" "$DATA/validation.mp3" recordings/
cp "$DATA/terms.txt" vocab/terms.txt

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. transcribe with base Whisper (first pass, into first-pass/)"
cp recordings/*.mp3 first-pass/
"$PY" "$REPO/prepare_data.py" transcribe --recordings first-pass --model "$MODEL"
"$PY" "$REPO/prepare_data.py" suggest first-pass/validation.vtt --vocab vocab | tail -n 8

step "2. the person corrects the VTTs (here: the corrected files shipped with the data)"
cp "$DATA/train.vtt" "$DATA/validation.vtt" recordings/
"$PY" "$REPO/prepare_data.py" check

step "3. build the dataset"
"$PY" "$REPO/prepare_data.py" build --out data/llm-lingo
GENERAL=()
if [ -f "$DATA/../general/test.mp3" ]; then
  # plain English nobody trains on, to see what the fine-tune costs outside the vocabulary
  mkdir -p general/recordings && cp "$DATA/../general/test.mp3" "$DATA/../general/test.vtt" general/recordings/
  "$PY" "$REPO/prepare_data.py" build --recordings general/recordings --vocab vocab --out data/general \
    > general/build.log 2>&1 || { cat general/build.log >&2; exit 1; }
  echo "built data/general from ../general/test.mp3 (Harvard sentences) for the forgetting check"
  GENERAL=(--general data/general)
fi

step "4. fine-tune (LoRA) on CPU"
"$PY" "$REPO/finetune.py" train --dataset data/llm-lingo --base-model "$MODEL" --output-dir runs/llm-lingo

step "5. evaluate: base vs fine-tuned (with and without the vocabulary prompt; general English)"
"$PY" "$REPO/finetune.py" evaluate --model runs/llm-lingo/best --dataset data/llm-lingo --compare "${GENERAL[@]}"

step "6. merge, then transcribe the validation recording for side-by-side review"
"$PY" "$REPO/finetune.py" merge --adapter runs/llm-lingo/best --out models/llm-lingo-merged
"$PY" "$REPO/finetune.py" transcribe --model models/llm-lingo-merged recordings/validation.mp3
echo
echo "compare recordings/validation.vtt (yours) with recordings/validation.finetuned.vtt (the model's)"
echo "push with: $PY $REPO/finetune.py push --model $OUT/models/llm-lingo-merged --repo you/whisper-llm-lingo"
