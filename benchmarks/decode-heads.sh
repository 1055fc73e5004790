#!/usr/bin/env bash
# Issue 16's measurements on one trained checkpoint, in one go: the float-head and the int8-head (+ draft head)
# exports, the int8 head with 9-bit and with 8-bit activation codes, their validation perplexity through the
# inference path, the exit × drafts sweep of the 9-bit int8 file with the float file's full model as a second
# baseline, and the self-speculative settings of the 8-bit file, on the prompt set benchmarks/prompts.txt.
#
#   benchmarks/decode-heads.sh CHECKPOINT DATA_DIR OUT_DIR [THREADS] [DRAFT_TOKENS]
#   benchmarks/decode-heads.sh runs/small-bitskip/checkpoint/model.safetensors ../shared/data/wikitext-2-raw runs/heads 2 8192
#
# Writes OUT_DIR/{f32,int8,int8a8}.bitskip, OUT_DIR/eval-{f32,int8,int8a8}.{md,json}, OUT_DIR/sweep.txt and
# OUT_DIR/sweep-int8a8.txt. Each step is skipped
# when its output exists (delete it to measure again).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CKPT="$1"; DATA="$2"; OUT="$3"; THREADS="${4:-2}"; DRAFT="${5:-8192}"
mkdir -p "$OUT"
B="$HERE/bitskip"
[ -f "$OUT/f32.bitskip" ] || "$B" export --checkpoint "$CKPT" --out "$OUT/f32.bitskip"
[ -f "$OUT/int8.bitskip" ] || "$B" export --checkpoint "$CKPT" --out "$OUT/int8.bitskip" --head int8 \
    --draft-tokens "$DRAFT" --data "$DATA"
[ -f "$OUT/int8a8.bitskip" ] || "$B" export --checkpoint "$CKPT" --out "$OUT/int8a8.bitskip" --head int8 \
    --head-activation-bits 8 --draft-tokens "$DRAFT" --data "$DATA"
for h in f32 int8 int8a8; do
  [ -f "$OUT/eval-$h.md" ] || "$B" eval --model "$OUT/$h.bitskip" --data "$DATA" --no-exits --threads "$THREADS" \
      --json "$OUT/eval-$h.json" > "$OUT/eval-$h.md"
done
CP="$HERE/model/target/classes:$HERE/engine/target/classes:$HERE/kernels-java/target/classes:$HERE/parallel/target/classes"
CP="$CP:$(tr ':' '\n' < "$HERE/model/target/classpath.txt" | grep -v '/io/github/bitskip/' | paste -sd: -)"
[ -f "$OUT/sweep.txt" ] || java --add-modules jdk.incubator.vector -Xmx4g -cp "$CP" bitskip.model.infer.InferenceBench \
    --model "$OUT/int8.bitskip" --baseline "$OUT/f32.bitskip" --prompts "$HERE/benchmarks/prompts.txt" --tokens 124 \
    --no-memory --presets "" --threads "$THREADS" > "$OUT/sweep.txt"
[ -f "$OUT/sweep-int8a8.txt" ] || java --add-modules jdk.incubator.vector -Xmx4g -cp "$CP" bitskip.model.infer.InferenceBench \
    --model "$OUT/int8a8.bitskip" --prompts "$HERE/benchmarks/prompts.txt" --tokens 124 --no-memory --presets "" \
    --threads "$THREADS" --only self-spec > "$OUT/sweep-int8a8.txt"
grep -h "deployed file" "$OUT"/eval-*.md
cat "$OUT/sweep.txt" "$OUT/sweep-int8a8.txt"
