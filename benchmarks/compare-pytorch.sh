#!/usr/bin/env bash
# Side-by-side training throughput, achieved FLOP/s and peak memory: bitskip's cpu backend against PyTorch
# running the same model and step (pytorch/bitskip_fast.py, the fast comparator; PYTORCH_IMPL=oracle runs the
# readable golden-file oracle pytorch/bitskip_torch.py instead) on this machine, same threads, same
# configuration, same batch, random tokens. One process per measurement, run one after the other.
#
#   benchmarks/compare-pytorch.sh [THREADS] [STEPS] CONFIG...      CONFIG = preset:variant:batch
#   benchmarks/compare-pytorch.sh 2 3 small:baseline:8 small:bitskip:8 paper-85m:baseline:4
#   WARMUP=1 benchmarks/compare-pytorch.sh 2 2 paper-85m:bitskip:4   (warm-up steps, default 2)
#   PRECISION=bf16 TORCH_PRECISION=bf16 …   (each side's number format, default fp32; TORCH_PRECISION=bf16 is
#   PyTorch's torch.autocast(cpu, bfloat16), fast comparator only)
#
# Prints one Markdown row per configuration: tokens/s of each and their ratio; each side's achieved GFLOP/s
# (the step's GEMM FLOPs per token, from `bitskip_fast.py flops`, times its tokens/s) as a fraction of the
# sgemm peak measured in the same run (torch.mm on the same threads at the LM head's shape: rows = batch x
# ctx, K = d_model, N = vocab; the step's dominant GEMM; best of 5, before and after the row's two runs); peak RSS of each; the 1-minute load average before
# the row's runs (the machine is shared).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
THREADS="${1:-2}"; STEPS="${2:-4}"; WARMUP="${WARMUP:-2}"; shift 2 || true
IMPL="${PYTORCH_IMPL:-fast}"
case "$IMPL" in
  fast) PYSCRIPT=pytorch/bitskip_fast.py ;;
  oracle) PYSCRIPT=pytorch/bitskip_torch.py ;;
  *) echo "PYTORCH_IMPL must be fast or oracle" >&2; exit 2 ;;
esac
PY=/usr/bin/python3
cd "$HERE"
# build the classes without installing anything into ~/.m2 (its SNAPSHOT jars are shared)
(mvn -B -q -o package -DskipTests -pl benchmarks -am dependency:build-classpath -Dmdep.outputFile=target/classpath.txt >/dev/null 2>&1 \
  || mvn -B -q package -DskipTests -pl benchmarks -am dependency:build-classpath -Dmdep.outputFile=target/classpath.txt >&2)
CP="benchmarks/target/classes:model/target/classes:engine/target/classes:kernels-java/target/classes:parallel/target/classes"
CP="$CP:$(tr ':' '\n' < model/target/classpath.txt | grep -v '/io/github/bitskip/' | paste -sd: -)"
export OPENBLAS_NUM_THREADS="$THREADS"
# OpenBLAS's thread timeout and kernels as the launcher sets them (both sides use OpenBLAS, so both get them)
. scripts/cpu-env.sh
# the engine side's number format: PRECISION=bf16 runs its products in bf16 (oneDNN, on one OpenMP thread per call)
PRECISION="${PRECISION:-fp32}"
TORCH_PRECISION="${TORCH_PRECISION:-fp32}"
TORCH_ARGS=()
if [ "$TORCH_PRECISION" != fp32 ]; then
  [ "$IMPL" = fast ] || { echo "TORCH_PRECISION=$TORCH_PRECISION needs PYTORCH_IMPL=fast" >&2; exit 2; }
  TORCH_ARGS=(--precision "$TORCH_PRECISION")
fi

echo "bitskip side: precision $PRECISION; both sides: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset, OpenBLAS detects the CPU} (OpenBLAS core: $(OPENBLAS_VERBOSE=2 $PY -c 'import torch; torch.ones(2, 2) @ torch.ones(2, 2)' 2>&1 | grep -m1 -o 'Core: .*'))"
echo "PyTorch side: $PYSCRIPT, precision $TORCH_PRECISION; $THREADS threads; $STEPS measured steps after $WARMUP warm-up; $(getconf _NPROCESSORS_ONLN) cores (online); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
echo "| config | bitskip tokens/s | PyTorch tokens/s | speed ratio | sgemm peak GFLOP/s (head shape) | bitskip GFLOP/s (of peak) | PyTorch GFLOP/s (of peak) | bitskip peak RSS MiB | PyTorch peak RSS MiB | RSS ratio | load before |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for cfg in "$@"; do
  IFS=: read -r preset variant batch <<< "$cfg"
  load=$(cut -d' ' -f1 /proc/loadavg)
  f=$($PY pytorch/bitskip_fast.py flops --preset "$preset" --variant "$variant" --batch "$batch")
  fpt=$(awk '/^flops_per_token:/ {print $2}' <<< "$f")
  read -r rows k n <<< "$(awk '/^head_shape:/ {print $2, $3, $4}' <<< "$f")"
  sg() { $PY pytorch/bitskip_fast.py sgemm --rows "$rows" --k "$k" --n "$n" --threads "$THREADS" --reps 5 | awk '{print $3}'; }
  peak1=$(sg)
  j=$(OMP_NUM_THREADS=1 java --add-modules jdk.incubator.vector -XX:+UseParallelGC -Xmn64m -Dbitskip.threads="$THREADS" \
      -Dbitskip.bench.warmup="$WARMUP" -Dbitskip.bench.precision="$PRECISION" -cp "$CP" \
      bitskip.bench.TrainStepBench "$preset" "$variant" "$batch" "$STEPS" cpu 2>/dev/null | grep '^{')
  jt=$(sed -E 's/.*"tokens_per_s":([0-9.]+).*/\1/' <<< "$j"); jr=$(sed -E 's/.*"peak_rss_mb":([0-9]+).*/\1/' <<< "$j")
  p=$($PY "$PYSCRIPT" train --preset "$preset" --variant "$variant" --batch "$batch" \
      --threads "$THREADS" --steps $((STEPS + WARMUP)) --warmup "$WARMUP" --log-every 1000 ${TORCH_ARGS[@]+"${TORCH_ARGS[@]}"} 2>&1)
  pt=$(grep -oE 'tokens/s: [0-9.]+' <<< "$p" | awk '{print $2}'); pr=$(grep -oE 'peak RSS: [0-9.]+' <<< "$p" | awk '{print $3}')
  peak2=$(sg)   # the machine may be shared: the better of a measurement before and one after the two runs
  peak=$(awk -v a="$peak1" -v b="$peak2" 'BEGIN { print (a + 0 > b + 0) ? a : b }')
  [ -z "$jt" ] && jt=failed; [ -z "$pt" ] && pt="failed ($(tail -1 <<< "$p" | cut -c1-60))"
  ratio=$(awk -v a="$jt" -v b="$pt" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "-" }')
  rss=$(awk -v a="$jr" -v b="$pr" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "-" }')
  gf() { awk -v t="$1" -v f="$fpt" -v pk="$peak" 'BEGIN { if (t+0 > 0 && pk+0 > 0) printf "%.1f (%.0f%%)", t * f / 1e9, 100 * t * f / 1e9 / pk; else print "-" }'; }
  echo "| $preset $variant B=$batch×ctx | $jt | $pt | $ratio | ${peak:-?} | $(gf "$jt") | $(gf "$pt") | ${jr:-?} | ${pr:-?} | $rss | $load |"
done
