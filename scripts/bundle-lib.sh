# Shared by scripts/gpu-matrix.sh and scripts/gpu-tornado.sh (sourced): the parts of a GPU bundle that do not
# depend on what it runs. Each function takes the bundle folder first and a tag for its messages.

# An OpenCL ICD loader from this machine into OUT/native, used only where the GPU machine has none (the
# driver's .icd files are in /etc/OpenCL/vendors).
bundle_icd() {
  local out="$1" tag="$2" icd
  icd="$("$(command -v ldconfig || echo /sbin/ldconfig)" -p 2>/dev/null | awk '/libOpenCL\.so\.1 .*x86-64/ {print $NF; exit}')"
  if [ -n "$icd" ]; then
    cp -L "$icd" "$out/native/libOpenCL.so.1"
  else
    echo "$tag: WARNING: this machine has no libOpenCL.so.1 to bundle" >&2
  fi
}

# The JVM's libjvm.so (22-29 MB of a bundle) stripped and gzipped to about a third; common.sh unpacks it on
# the first run (gzip is on every Linux).
bundle_pack_jvm() {
  local libjvm="$1/jre/lib/server/libjvm.so"
  if command -v strip >/dev/null; then strip --strip-all "$libjvm"; fi
  gzip -9 "$libjvm"
}

# OUT/common.sh, which every run.sh sources after setting HERE: the JVM unpacked, the results folder RES, the
# commit the results are tagged with, and the bundled ICD loader where the machine has none.
bundle_run_common() {
  local out="$1" root="$2"
  echo "${BITSKIP_COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}" > "$out/COMMIT"
  cat > "$out/common.sh" <<'COMMON'
# sourced by run.sh (HERE = the bundle's folder)
LIBJVM="$HERE/jre/lib/server/libjvm.so"
if [ ! -f "$LIBJVM" ]; then   # shipped gzipped (the bundle's size limit): unpacked once
  gzip -dc "$LIBJVM.gz" > "$LIBJVM.tmp.$$" && mv -f "$LIBJVM.tmp.$$" "$LIBJVM" \
    || { echo "run.sh: cannot unpack $LIBJVM.gz" >&2; exit 1; }
fi
export BITSKIP_COMMIT="${BITSKIP_COMMIT:-$(cat "$HERE/COMMIT")}"
RES="${BITSKIP_RESULTS:-$HERE/results}"
mkdir -p "$RES"
LDCONFIG="$(command -v ldconfig || echo /sbin/ldconfig)"
if ! "$LDCONFIG" -p 2>/dev/null | grep -q 'libOpenCL\.so\.1' && [ -f "$HERE/native/libOpenCL.so.1" ]; then
  echo "run.sh: no system OpenCL ICD loader; using the bundled one" >&2
  export LD_LIBRARY_PATH="$HERE/native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
COMMON
}

# The bundle's size against its limit (an error above it), then with --test its run.sh here, as the GPU
# machine would run it (no JAVA_HOME, TORNADOVM_HOME or PATH beyond the system's).
bundle_finish() {
  local out="$1" tag="$2" limit_mb="$3" size mb part parts=""
  shift 3
  size=$(du -sb "$out" | cut -f1)
  mb=$(( (size + 1048575) / 1048576 ))
  for part in jre tornadovm lib; do
    [ -d "$out/$part" ] && parts="$parts, $part $(du -sh "$out/$part" | cut -f1)"
  done
  echo "$tag: bundle $out is $mb MiB (limit $limit_mb MiB)$parts" >&2
  if [ "$size" -gt $(( limit_mb * 1048576 )) ]; then
    echo "$tag: ERROR: the bundle exceeds $limit_mb MiB" >&2
    return 1
  fi
  if [ "${1:-}" = "--test" ]; then
    shift
    echo "$tag: running the bundle here" >&2
    env -u JAVA_HOME -u TORNADOVM_HOME PATH=/usr/bin:/bin "$out/run.sh" "$@"
  fi
}
