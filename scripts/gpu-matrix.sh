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
    junit-*|opentest4j-*|apiguardian-*) ;;     # the reactor's classpath brings the tests' JUnit; the harness needs none
    *) [ -f "$jar" ] && cp "$jar" "$OUT/lib/" ;;
  esac
done

# the JRE: the modules the jars need (jdeps), plus the Vector API the CPU backend uses
MODS="$(jdeps --multi-release 17 --ignore-missing-deps --print-module-deps "$OUT"/lib/*.jar 2>/dev/null || true)"
MODS="java.base,java.logging,jdk.incubator.vector${MODS:+,$MODS}"
echo "gpu-matrix: jlink --add-modules $MODS" >&2
jlink --add-modules "$MODS" --strip-debug --no-header-files --no-man-pages --compress=2 --output "$OUT/jre"

# an OpenCL ICD loader, used only where the GPU machine has none (the driver's .icd files are in /etc/OpenCL/vendors)
ICD="$("$(command -v ldconfig || echo /sbin/ldconfig)" -p 2>/dev/null | awk '/libOpenCL\.so\.1 .*x86-64/ {print $NF; exit}')"
if [ -n "$ICD" ]; then
  cp -L "$ICD" "$OUT/native/libOpenCL.so.1"
else
  echo "gpu-matrix: WARNING: this machine has no libOpenCL.so.1 to bundle" >&2
fi

cat > "$OUT/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the device matrix and the portability benchmark with the bundled JRE. Arguments go to the benchmark
# (e.g. --preset tiny --batch 4 --steps 5 --gemm 1024). Results land in results/ next to this script.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RES="${BITSKIP_RESULTS:-$HERE/results}"
mkdir -p "$RES"
LDCONFIG="$(command -v ldconfig || echo /sbin/ldconfig)"
if ! "$LDCONFIG" -p 2>/dev/null | grep -q 'libOpenCL\.so\.1' && [ -f "$HERE/native/libOpenCL.so.1" ]; then
  echo "run.sh: no system OpenCL ICD loader; using the bundled one" >&2
  export LD_LIBRARY_PATH="$HERE/native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
JAVA=("$HERE/jre/bin/java" --add-modules jdk.incubator.vector -XX:+UseParallelGC -Djava.io.tmpdir="${TMPDIR:-/tmp}"
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
echo "${BITSKIP_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}" > "$OUT/COMMIT"
sed -i 's|^RES=|export BITSKIP_COMMIT="${BITSKIP_COMMIT:-$(cat "$HERE/COMMIT")}"\nRES=|' "$OUT/run.sh"

SIZE=$(du -sb "$OUT" | cut -f1)
MB=$(( (SIZE + 1048575) / 1048576 ))
echo "gpu-matrix: bundle $OUT is $MB MB (limit $LIMIT_MB MB): jre $(du -sh "$OUT/jre" | cut -f1), lib $(du -sh "$OUT/lib" | cut -f1)" >&2
if [ "$SIZE" -ge $(( LIMIT_MB * 1048576 )) ]; then
  echo "gpu-matrix: ERROR: the bundle exceeds $LIMIT_MB MB" >&2
  exit 1
fi

if [ "${1:-}" = "--test" ]; then
  shift
  echo "gpu-matrix: running the bundle here" >&2
  env -u JAVA_HOME PATH=/usr/bin:/bin "$OUT/run.sh" "$@"
fi
