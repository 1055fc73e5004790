#!/usr/bin/env bash
# Builds target/gpu-bundle/: a jlinked JRE, the project's jars, an OpenCL ICD loader copied from this machine,
# and run.sh, which runs the device matrix (the equivalence harness: every Backend op on every backend and device,
# vs the Java reference)
# and the portability benchmark on a machine that has a GPU driver but no Java and no network.
#
#   scripts/gpu-matrix.sh            build the bundle (and check it is under 60 MB)
#   scripts/gpu-matrix.sh --test     build it, then run its run.sh here (PoCL) as the GPU machine would
#   scp -r target/gpu-bundle gpu:    then on the GPU machine:  gpu-bundle/run.sh [Portability args]
#
# run.sh writes results/ next to itself: matrix.txt, devices.txt, portability.txt, perf-history.jsonl
# (the lines to append to benchmarks/results/perf-history.jsonl).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/bundle-lib.sh"
OUT="$ROOT/target/gpu-bundle"
LIMIT_MB=60
MVN="mvn -B -q ${BITSKIP_MVN_OPTS:-}"

cd "$ROOT"
echo "gpu-matrix: building the jars (mvn package -DskipTests; nothing is installed in ~/.m2)" >&2
$MVN package -DskipTests >&2

# the classpath: the benchmarks module when it depends on engine and model, else the engine alone; resolved in
# the reactor, so this checkout's own module jars are on it, never ~/.m2 copies from another checkout
MAIN_JAR="$ROOT/benchmarks/target/bitskip-benchmarks-0.1.0-SNAPSHOT.jar"
CP_MODULE=benchmarks
if ! unzip -l "$MAIN_JAR" 2>/dev/null | grep -q 'bitskip/bench/Portability.class'; then
  echo "gpu-matrix: benchmarks has no Portability (its pom lacks engine/model): bundling the matrix only" >&2
  MAIN_JAR="$ROOT/engine/target/bitskip-engine-0.1.0-SNAPSHOT.jar"
  CP_MODULE=engine
fi
$MVN -pl "$CP_MODULE" -am package dependency:build-classpath -DskipTests -Dmdep.includeScope=runtime \
  -Dmdep.outputFile="$ROOT/target/gpu-classpath.txt" >&2

rm -rf "$OUT"
mkdir -p "$OUT/lib" "$OUT/native"
cp "$MAIN_JAR" "$OUT/lib/"
# the equivalence harness is test code: the engine's test jar (it needs no JUnit)
cp "$ROOT/engine/target/bitskip-engine-0.1.0-SNAPSHOT-tests.jar" "$OUT/lib/"
tr ':' '\n' < "$ROOT/target/gpu-classpath.txt" | while read -r jar; do
  case "$(basename "$jar")" in
    jmh-*|jopt-simple-*|commons-math3-*) ;;   # benchmark-harness jars the bundle does not run
    # the ablation report's charts (xchart, and the PDF library it pulls in with JUnit, which the root pom's
    # dependencyManagement turns into a compile dependency): 6 MB of jars, and java.desktop in the JRE
    xchart-*|VectorGraphics2D-*|graphics2d-*|pdfbox-*|fontbox-*|commons-logging-*|junit-*|opentest4j-*|apiguardian-*) ;;
    # precision bf16's oneDNN (28 MB of natives) and the OpenCL preset its API needs: a CPU-only training mode the
    # GPU bundle never runs
    dnnl-*|opencl-3*) ;;
    *) [ -f "$jar" ] && cp "$jar" "$OUT/lib/" ;;
  esac
done

# the JRE: the modules the jars need (jdeps), plus the Vector API the CPU backend uses
MODS="$(jdeps --multi-release 17 --ignore-missing-deps --print-module-deps "$OUT"/lib/*.jar 2>/dev/null || true)"
MODS="java.base,java.logging,jdk.incubator.vector${MODS:+,$MODS}"
echo "gpu-matrix: jlink --add-modules $MODS" >&2
jlink --add-modules "$MODS" --strip-debug --no-header-files --no-man-pages --compress=2 --output "$OUT/jre"
bundle_pack_jvm "$OUT"   # libjvm.so gzipped: 14 MB less (unpacked by run.sh)

bundle_icd "$OUT" gpu-matrix
bundle_run_common "$OUT" "$ROOT"

cat > "$OUT/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the device matrix and the portability benchmark with the bundled JRE. Arguments go to the benchmark
# (e.g. --preset tiny --batch 4 --steps 5 --gemm 1024). Results land in results/ next to this script.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/common.sh"
JAVA=("$HERE/jre/bin/java" --add-modules jdk.incubator.vector -XX:+UseParallelGC -Xmn64m -Djava.io.tmpdir="${TMPDIR:-/tmp}"
      -cp "$HERE/lib/*")
"${JAVA[@]}" bitskip.engine.opencl.OpenCLDevices | tee "$RES/devices.txt"
"${JAVA[@]}" bitskip.engine.Equivalence 2>&1 | grep -v '^WARNING: Using incubator' | tee "$RES/matrix.txt"
status=${PIPESTATUS[0]}
if ls "$HERE"/lib/bitskip-benchmarks-*.jar >/dev/null 2>&1; then
  "${JAVA[@]}" bitskip.bench.Portability --history "$RES/perf-history.jsonl" "$@" 2>&1 \
    | grep -v '^WARNING: Using incubator' | tee "$RES/portability.txt"
fi
exit "$status"
RUN
chmod +x "$OUT/run.sh"
bundle_finish "$OUT" gpu-matrix "$LIMIT_MB" "$@"
