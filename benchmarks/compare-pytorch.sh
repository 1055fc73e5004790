#!/usr/bin/env bash
# Side-by-side training throughput and peak memory: bitskip's cpu backend against the PyTorch
# implementation of the same model (pytorch/bitskip_torch.py) on this machine, same threads, same
# configuration, same batch, random tokens. One process per measurement, run one after the other.
#
#   benchmarks/compare-pytorch.sh [THREADS] [STEPS] CONFIG...      CONFIG = preset:variant:batch
#   benchmarks/compare-pytorch.sh 2 4 tiny:baseline:16 small:bitskip:16 paper-85m:baseline:16
#   WARMUP=1 benchmarks/compare-pytorch.sh 2 1 paper-85m:baseline:16   (warm-up steps, default 2)
#
# Prints one Markdown row per configuration: tokens/s and peak RSS of each, and their ratios.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
THREADS="${1:-2}"; STEPS="${2:-4}"; WARMUP="${WARMUP:-2}"; shift 2 || true
PY=/usr/bin/python3
cd "$HERE"
[ -f model/target/classpath.txt ] || ./bitskip backends >/dev/null
(mvn -B -q -o install -DskipTests -pl benchmarks -am >/dev/null 2>&1 || mvn -B -q install -DskipTests -pl benchmarks -am >&2)
CP="benchmarks/target/classes:model/target/classes:engine/target/classes:kernels-java/target/classes:parallel/target/classes"
CP="$CP:$(tr ':' '\n' < model/target/classpath.txt | grep -v '/io/github/bitskip/' | paste -sd: -)"
export OPENBLAS_NUM_THREADS="$THREADS"
# as the launcher sets it (both sides use OpenBLAS, so both get it)
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"

echo "| config | bitskip tokens/s | PyTorch tokens/s | speed ratio | bitskip peak RSS MiB | PyTorch peak RSS MiB | RSS ratio |"
echo "|---|---|---|---|---|---|---|"
for cfg in "$@"; do
  IFS=: read -r preset variant batch <<< "$cfg"
  j=$(java --add-modules jdk.incubator.vector -XX:+UseParallelGC -Dbitskip.threads="$THREADS" -Dbitskip.bench.warmup="$WARMUP" -cp "$CP" \
      bitskip.bench.TrainStepBench "$preset" "$variant" "$batch" "$STEPS" cpu 2>/dev/null | grep '^{')
  jt=$(sed -E 's/.*"tokens_per_s":([0-9.]+).*/\1/' <<< "$j"); jr=$(sed -E 's/.*"peak_rss_mb":([0-9]+).*/\1/' <<< "$j")
  p=$($PY pytorch/bitskip_torch.py train --preset "$preset" --variant "$variant" --batch "$batch" \
      --threads "$THREADS" --steps $((STEPS + WARMUP)) --warmup "$WARMUP" --log-every 1000 2>&1)
  pt=$(grep -oE 'tokens/s: [0-9.]+' <<< "$p" | awk '{print $2}'); pr=$(grep -oE 'peak RSS: [0-9.]+' <<< "$p" | awk '{print $3}')
  [ -z "$jt" ] && jt=failed; [ -z "$pt" ] && pt="failed ($(tail -1 <<< "$p" | cut -c1-60))"
  ratio=$(awk -v a="$jt" -v b="$pt" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "-" }')
  rss=$(awk -v a="$jr" -v b="$pr" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "-" }')
  echo "| $preset $variant B=$batch×ctx | $jt | $pt | $ratio | ${jr:-?} | ${pr:-?} | $rss |"
done
