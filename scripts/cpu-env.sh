# Sourced by ./bitskip and the benchmark scripts: settings the native libraries read once, when they load.

# OpenBLAS worker threads busy-wait 2^28 cycles after each sgemm by default, taking the cores from the Java
# threads that run everything between the GEMMs; 2^4 lets them sleep at once (measured in benchmarks/README.md).
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"

# OpenBLAS (a DYNAMIC_ARCH build) picks its kernels by CPU model, and on AMD CPUs with AVX-512 (Zen 4, Zen 5)
# it picked the AVX2 "Haswell" kernels: single-thread sgemm at 58-60 GFLOP/s against 128 with its AVX-512
# "SkylakeX" kernels, measured side by side on the 2-core EPYC of benchmarks/README.md. Where the CPU has the
# AVX-512 subsets those kernels use, ask for them (a value already set wins; PyTorch's OpenBLAS reads it too).
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ] && grep -qm1 AuthenticAMD /proc/cpuinfo; then
  flags="$(grep -m1 '^flags' /proc/cpuinfo)"
  if [[ " $flags " == *" avx512f "* && " $flags " == *" avx512bw "* && " $flags " == *" avx512dq "* && " $flags " == *" avx512vl "* ]]; then
    export OPENBLAS_CORETYPE=SKYLAKEX
  fi
  unset flags
fi
