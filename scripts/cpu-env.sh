# Sourced by ./bitskip and the benchmark scripts: settings the native libraries read once, when they load.

# OpenBLAS worker threads busy-wait 2^28 cycles after each sgemm by default, taking the cores from the Java
# threads that run everything between the GEMMs; 2^4 lets them sleep at once (measured in benchmarks/README.md).
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"

# OPENBLAS_CORETYPE is left as it is: unset, OpenBLAS picks its kernels for the CPU (Cooperlake's AVX-512 ones
# on the 2-core EPYC of benchmarks/README.md, 104-139 GFLOP/s per core in sgemm). Some environments set it (that
# machine's sets Haswell: AVX2 kernels, 61-62 GFLOP/s); benchmarks/README.md says how its numbers were taken.
