#!/usr/bin/env bash
# Builds target/gpu-bundle-tornado/: the second GPU bundle, for the TornadoVM backend. Beside the first
# (scripts/gpu-matrix.sh: cpu, opencl), it holds what a machine with a GPU driver but no Java, no TornadoVM
# and no network needs to run TornadoVM-compiled kernels: a jlinked JDK 25 runtime (with JVMCI), the TornadoVM
# SDK's runtime jars, Graal compiler jars and JNI library (only the modules its OpenCL driver resolves), the
# project's jars (without the cpu backend's OpenBLAS, the tokenizer and the charts), the equivalence harness
# (the engine's test jar) and an OpenCL ICD loader. Its run.sh runs the device matrix (java-composed, every
# OpenCL device, every TornadoVM device; cpu is the first bundle's) and the portability benchmark (per-kernel
# rows and a training step: TornadoVM against the hand-written OpenCL C on the same device).
#
#   scripts/gpu-tornado.sh            build the bundle (and check it is at most 64 MiB)
#   scripts/gpu-tornado.sh --test     build it, then run its run.sh here (PoCL) as the GPU machine would
#   then on the GPU machine:          gpu-bundle-tornado/run.sh [Portability args, e.g. --preset tiny --batch 4]
#
# Needs TornadoVM (TORNADOVM_HOME, else the SDK ../shared/tornadovm/build.sh leaves in ~/.cache/tornadovm) and a
# JDK 25 (JAVA_HOME when it is one, JDK25_HOME, else /usr/lib/jvm/*25*). Results: results/ next to run.sh
# (devices.txt, matrix.txt, portability.txt, perf-history.jsonl: the lines to append to
# benchmarks/results/perf-history.jsonl).
#
# The size, measured: 55 MiB (jre 25 MiB, tornadovm 29 MiB, lib 1.9 MiB). The JDK's libjvm.so alone is 29 MB;
# stripped and gzipped (8.5 MB) it is unpacked by run.sh on first use (bundle-lib.sh). The Graal
# compiler jar (23 MB) is most of the rest and cannot shrink without editing it; the cpu backend's OpenBLAS
# natives (20 MB), java.desktop and java.net.http (15 MB) are left out.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/bundle-lib.sh"
OUT="$ROOT/target/gpu-bundle-tornado"
LIMIT_MB=64
MVN="mvn -B -q ${BITSKIP_MVN_OPTS:-}"

TVM="${TORNADOVM_HOME:-$(ls -d "$HOME"/.cache/tornadovm/TornadoVM-5.2.0-jdk25/dist/*/tornadovm-*-opencl 2>/dev/null | head -1)}"
[ -f "$TVM/tornado-argfile.template" ] || { echo "gpu-tornado: no TornadoVM SDK (set TORNADOVM_HOME or run ../shared/tornadovm/build.sh)" >&2; exit 1; }
JDK=""
for d in "${JAVA_HOME:-}" "${JDK25_HOME:-}" /usr/lib/jvm/temurin-25-jdk-* /usr/lib/jvm/java-25-openjdk-* /usr/lib/jvm/jdk-25*; do
  [ -n "$d" ] && [ -x "$d/bin/jlink" ] && grep -qs 'JAVA_VERSION="25' "$d/release" && { JDK="$d"; break; }
done
[ -n "$JDK" ] || { echo "gpu-tornado: no JDK 25 (set JDK25_HOME)" >&2; exit 1; }

cd "$ROOT"
echo "gpu-tornado: building the jars (mvn package -DskipTests; nothing is installed in ~/.m2)" >&2
$MVN package -DskipTests >&2
TJAR="$ROOT/engine-tornado/target/bitskip-engine-tornado-0.1.0-SNAPSHOT.jar"
unzip -l "$TJAR" 2>/dev/null | grep 'bitskip/engine/tornado/TornadoBackend.class' >/dev/null \
  || { echo "gpu-tornado: $TJAR has no TornadoBackend (was TornadoVM in ~/.m2 and a JDK 25 found when it was built?)" >&2; exit 1; }
$MVN -pl benchmarks -am dependency:build-classpath -Dmdep.includeScope=runtime \
  -Dmdep.outputFile="$ROOT/target/gpu-tornado-classpath.txt" >&2

rm -rf "$OUT"
mkdir -p "$OUT/lib" "$OUT/native" "$OUT/tornadovm/share/java/tornado" "$OUT/tornadovm/share/java/graalJars" \
  "$OUT/tornadovm/lib" "$OUT/tornadovm/etc"
# this checkout's module jars (never ~/.m2 copies from another checkout), the harness, and the third-party jars
# the matrix and the benchmark load: JOCL (the opencl backend, for the side-by-side rows) and the Java half of
# JavaCPP/OpenBLAS, without their 20 MB of natives (the cpu backend then reports itself absent: the first
# bundle checks it)
for m in benchmarks model engine kernels-java parallel engine-tornado; do
  cp "$ROOT/$m/target/bitskip-$m-0.1.0-SNAPSHOT.jar" "$OUT/lib/"
done
cp "$ROOT/engine/target/bitskip-engine-0.1.0-SNAPSHOT-tests.jar" "$OUT/lib/"
tr ':' '\n' < "$ROOT/target/gpu-tornado-classpath.txt" | while read -r jar; do
  case "$(basename "$jar")" in
    *-linux-*|*-macosx-*|*-windows-*) ;;
    jocl-*|javacpp-*|openblas-*) cp "$jar" "$OUT/lib/" ;;
  esac
done

# TornadoVM: the modules its OpenCL driver resolves (tornado-argfile adds tornado.runtime, .annotation,
# .drivers.common, .drivers.opencl; their requires), the Graal compiler it upgrades the JDK's with, its JNI library
SDKJ="$TVM/share/java"
for j in tornado-api tornado-runtime tornado-annotation tornado-drivers-common tornado-drivers-opencl; do
  cp "$SDKJ/tornado/$j-5.2.0-jdk25.jar" "$OUT/tornadovm/share/java/tornado/"
done
for j in commons-math3 snmp4j asm collections word; do
  cp "$SDKJ"/tornado/$j-[0-9]*.jar "$OUT/tornadovm/share/java/tornado/"
done
for j in compiler collections word truffle-compiler; do
  cp "$SDKJ"/graalJars/$j-[0-9]*.jar "$OUT/tornadovm/share/java/graalJars/"
done
cp "$TVM"/lib/*.so "$OUT/tornadovm/lib/"
cp "$TVM"/etc/tornado.backend "$TVM"/etc/tornado.properties "$TVM"/etc/tornado.release "$OUT/tornadovm/etc/" 2>/dev/null || true
cp "$TVM/tornado-argfile.template" "$OUT/tornadovm/"
cp "$TVM"/LICENSE_* "$OUT/tornadovm/" 2>/dev/null || true

# the JRE: JDK 25's modules that TornadoVM needs (JVMCI, management) and the backends' (the Vector API the cpu
# classes link against), without the JDK's own jdk.graal.compiler (a trimmed libgraal build that TornadoVM
# cannot use: the SDK's jar upgrades it) and without what only the command line uses (java.desktop for the
# charts, java.net.http for the download): jdeps of the jars would add those 15 MB
MODS="java.base,java.logging,java.management,jdk.management,jdk.unsupported,jdk.internal.vm.ci,jdk.incubator.vector"
echo "gpu-tornado: jlink --add-modules $MODS" >&2
"$JDK/bin/jlink" --add-modules "$MODS" --strip-debug --no-header-files --no-man-pages --compress=zip-9 \
  --output "$OUT/jre" 2>&1 | grep -v '^WARNING: Using incubator' >&2 || true
bundle_pack_jvm "$OUT"

bundle_icd "$OUT" gpu-tornado
bundle_run_common "$OUT" "$ROOT"

cat > "$OUT/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs TornadoVM's device list, the device matrix and the portability benchmark with the bundled JDK 25 and
# TornadoVM. Arguments go to the benchmark (e.g. --preset tiny --batch 4 --steps 5 --gemm 1024). Results land in
# results/ next to this script.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/common.sh"
# the SDK's JVM flags with this bundle's paths (an argument file cannot expand variables)
export TORNADOVM_HOME="$HERE/tornadovm"
sed "s|\${TORNADOVM_HOME}|$TORNADOVM_HOME|g" "$TORNADOVM_HOME/tornado-argfile.template" > "$RES/tornado-argfile"
cd "$RES"   # tornado-argfile's module path starts with ".": a folder without jars
JAVA=("$HERE/jre/bin/java" @"$RES/tornado-argfile" -Dtornado.recover.bailout=False -Djava.io.tmpdir="${TMPDIR:-/tmp}"
      -cp "$HERE/lib/*")
"${JAVA[@]}" bitskip.engine.tornado.TornadoDevices 2>&1 | grep -v '^WARNING' | tee "$RES/devices.txt"
"${JAVA[@]}" bitskip.engine.Equivalence 2>&1 | grep -v '^WARNING' | tee "$RES/matrix.txt"
status=${PIPESTATUS[0]}
"${JAVA[@]}" bitskip.bench.Portability --history "$RES/perf-history.jsonl" "$@" 2>&1 | grep -v '^WARNING' \
  | tee "$RES/portability.txt"
exit "$status"
RUN
chmod +x "$OUT/run.sh"
bundle_finish "$OUT" gpu-tornado "$LIMIT_MB" "$@"
