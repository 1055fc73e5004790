#!/usr/bin/env bash
# Training under contention and decoding, on one build:
#   1. `tiny` bitskip training tokens/s (TrainStepBench, batch 4, 2 threads) alone,
#   2. the same beside one 2-thread CPU-bound process (bitskip.bench.CpuHog) started just before it,
#   3. `tiny` decode tokens/s (InferenceBench, random weights, 2 threads) alone.
# Prints one JSON line with the three numbers and the ratio contended/alone (the target: >= 0.40 on 2 cores).
#
#   benchmarks/contention.sh [STEPS]                  this checkout (built with mvn package if needed)
#   BITSKIP_CP=JARS benchmarks/contention.sh          another build's jars (e.g. main's, for an A/B)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STEPS="${1:-6}"
[ -f benchmarks/target/classes/bitskip/bench/CpuHog.class ] || mvn -B -q -o package -DskipTests >&2
[ -f model/target/classpath.txt ] || mvn -B -q -o -pl model -am dependency:build-classpath \
  -Dmdep.outputFile=target/classpath.txt >&2
THIRD="$(tr ':' '\n' < model/target/classpath.txt | grep -v '/io/github/bitskip/' | paste -sd: -)"
OWN="benchmarks/target/classes:model/target/classes:engine/target/classes:kernels-java/target/classes:parallel/target/classes"
CP="${BITSKIP_CP:-$OWN}:$THIRD"
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}" OPENBLAS_NUM_THREADS=2
JAVA=(java --add-modules jdk.incubator.vector -XX:+UseParallelGC -Xmn64m -Xmx4g -Dbitskip.threads=2)
tps() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["tokens_per_s"])'; }

alone=$("${JAVA[@]}" -cp "$CP" bitskip.bench.TrainStepBench tiny bitskip 4 "$STEPS" cpu 2>/dev/null | tps)
"${JAVA[@]}" -cp "$OWN:$THIRD" bitskip.bench.CpuHog 2 3600 &
HOG=$!
trap 'kill $HOG 2>/dev/null || true' EXIT
sleep 1
contended=$("${JAVA[@]}" -cp "$CP" bitskip.bench.TrainStepBench tiny bitskip 4 "$STEPS" cpu 2>/dev/null | tps)
kill $HOG 2>/dev/null || true
wait $HOG 2>/dev/null || true
decode=$("${JAVA[@]}" -cp "$CP" bitskip.model.infer.InferenceBench --presets tiny --tokens 64 --threads 2 --no-memory 2>&1 \
  | sed -n 's/^decode [a-z0-9-]*: float head \([0-9.]*\) tok\/s.*/\1/p' | head -1)
python3 - "$alone" "$contended" "$decode" <<'PY'
import json, sys
alone, contended = float(sys.argv[1]), float(sys.argv[2])
print(json.dumps({"train_tokens_per_s_alone": alone, "train_tokens_per_s_beside_2_thread_hog": contended,
                  "ratio": round(contended / alone, 3), "decode_tokens_per_s": sys.argv[3]}))
PY
