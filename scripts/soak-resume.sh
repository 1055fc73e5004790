#!/usr/bin/env bash
# Kill/resume soak on the default path: a `tiny` training (cpu backend, Vector API on) killed with SIGKILL at
# five random moments -- one during startup, one while a checkpoint is being written, three at random points
# of training -- and resumed after each, must end bit for bit where the uninterrupted run ends: the last
# checkpoint (weights, AdamW moments, state), the best model, config.json and every metrics line but tokens/s.
#
#   scripts/soak-resume.sh [--data DIR] [--work DIR] [--seed N] [--steps N] [--kill-seed N] [--reference DIR]
#                          [-- TRAIN-ARGS...]
#
# --data: WikiText-2 raw (default: $BITSKIP_DATA, else ../shared/data/wikitext-2-raw, else the download cache).
# --work: where the two run folders go (default: runs/soak-resume-TIMESTAMP; must not exist).
# --kill-seed: seeds the random kill moments (default: from the clock; printed, so a failure can be replayed).
# --reference: the folder of an uninterrupted run made with the same settings (WORK/full of an earlier soak),
#   instead of training one first.
# Exit code 0 when the runs are identical, 1 when they differ or a step failed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BITSKIP="$HERE/bitskip"

DATA="${BITSKIP_DATA:-}"
[ -z "$DATA" ] && [ -d "$HERE/../shared/data/wikitext-2-raw" ] && DATA="$(cd "$HERE/../shared/data/wikitext-2-raw" && pwd)"
WORK="$HERE/runs/soak-resume-$(date +%Y%m%d-%H%M%S)"
SEED=7
STEPS=24
KILL_SEED="$(date +%s)"
REFERENCE=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data) DATA="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --kill-seed) KILL_SEED="$2"; shift 2 ;;
    --reference) REFERENCE="$(cd "$2" && pwd)"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "soak-resume: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done
if [ -e "$WORK" ]; then
  echo "soak-resume: --work $WORK exists; give a new folder" >&2
  exit 2
fi
mkdir -p "$WORK"
RANDOM=$KILL_SEED
DATA_ARGS=()
[ -n "$DATA" ] && DATA_ARGS=(--data "$DATA")
# Small steps (256 tokens) with a checkpoint every 6, so a soak takes minutes on two idle cores.
EVERY=6
TRAIN=(train --preset tiny --seed "$SEED" --steps "$STEPS" --batch 2 --accum 1 --eval-every "$EVERY" --eval-batches 2
       --no-progress "${DATA_ARGS[@]}" "${EXTRA[@]}")
export BITSKIP_JAVA_OPTS="${BITSKIP_JAVA_OPTS:--Xmx4g}"
LOG="$WORK/soak.log"
say() { echo "soak-resume: $*" | tee -a "$LOG" >&2; }

say "kill seed $KILL_SEED; work folder $WORK; ./bitskip ${TRAIN[*]}"
"$BITSKIP" backends >/dev/null 2>&1 || true # builds the jars once, before any timing

# ---- the uninterrupted run ------------------------------------------------------------------------
FULL="$WORK/full"
if [ -n "$REFERENCE" ]; then
  FULL="$REFERENCE"
  say "uninterrupted run: $FULL (given)"
else
  t0=$(date +%s)
  "$BITSKIP" "${TRAIN[@]}" --out "$FULL" >"$WORK/full.log" 2>&1 || { say "the uninterrupted run failed: see $WORK/full.log"; exit 1; }
  say "uninterrupted run: $(( $(date +%s) - t0 )) s"
fi

# ---- the killed run ---------------------------------------------------------------------------------
RUN="$WORK/killed"
last_step() {  # the highest step in the run's metrics (0 when none)
  { grep -o '"type":"train","step":[0-9]*' "$RUN/metrics.jsonl" 2>/dev/null || true; } | grep -o '[0-9]*$' | sort -n | tail -1 | grep . || echo 0
}
new_step() {  # the highest step the current process logged: 0 until it has rewritten metrics.jsonl (a resume
  # truncates it to its checkpoint, a fresh start replaces it), since the lines of a killed process stay till then
  if [ -f "$RUN/metrics.jsonl" ] && [ "$(stat -c %Y "$RUN/metrics.jsonl")" -gt "$STARTED" ]; then last_step; else echo 0; fi
}
checkpoint_step() {  # the step of the newest complete checkpoint (0 when none)
  local d
  for d in last last.prev; do
    if [ -f "$RUN/$d/state.json" ]; then
      { grep -o '"step" *: *[0-9]*' "$RUN/$d/state.json" || echo 0; } | grep -o '[0-9]*$'
      return
    fi
  done
  echo 0
}
start() {  # start the run in the background (fresh the first time, then --resume); sets PID
  local resume=()
  [ -e "$RUN/config.json" ] && resume=(--resume)
  STARTED=$(date +%s)
  sleep 1 # so that a file the new process writes has a later modification time (seconds) than STARTED
  "$BITSKIP" "${TRAIN[@]}" --out "$RUN" "${resume[@]}" >>"$RUN.log" 2>&1 &
  PID=$!
}
kill_now() {  # SIGKILL the JVM (the launcher execs java, so PID is the JVM) and wait for it
  kill -KILL "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}
running() { kill -0 "$PID" 2>/dev/null; }

KILLS=("startup" "training" "checkpoint" "training" "training")
n=0
for moment in "${KILLS[@]}"; do
  n=$((n + 1))
  before=$(checkpoint_step)
  start
  case "$moment" in
    startup)  # a random moment in the first three seconds: JVM start, data loading, model setup
      sleep "$(( RANDOM % 3 )).$(( RANDOM % 10 ))"
      ;;
    training)  # a random step after the next checkpoint (so every resume starts further on), a fraction of a second into it
      target=$(( before + EVERY + 1 + RANDOM % EVERY ))
      [ "$target" -ge "$STEPS" ] && target=$(( STEPS - 1 ))
      while running && [ "$(new_step)" -lt "$target" ]; do sleep 0.05; done
      sleep "0.$(( RANDOM % 10 ))"
      ;;
    checkpoint)  # while the next checkpoint is being written: last.tmp/ exists, or a .tmp file in checkpoint/
      while running && [ "$(new_step)" -eq 0 ]; do sleep 0.05; done # (a killed write's leftovers go at start)
      while running && [ ! -d "$RUN/last.tmp" ] && ! ls "$RUN"/checkpoint/.*.tmp >/dev/null 2>&1; do sleep 0.01; done
      ;;
  esac
  if ! running; then
    rc=0; wait "$PID" || rc=$?
    say "kill $n ($moment): the run ended before the kill (exit code $rc); see $RUN.log"
    exit 1
  fi
  kill_now
  evidence=""
  if [ "$moment" = checkpoint ]; then
    evidence=" (left behind: $(cd "$RUN" && { ls -d last.tmp checkpoint/.*.tmp 2>/dev/null || true; } | tr '\n' ' '))"
  fi
  say "kill $n ($moment): SIGKILL at logged step $(last_step), newest checkpoint step $(checkpoint_step)$evidence"
  if [ -f "$RUN/config.json" ] && ! cmp -s "$FULL/config.json" "$RUN/config.json"; then
    say "the uninterrupted run in $FULL has another configuration (diff $FULL/config.json $RUN/config.json): not comparable"
    exit 1
  fi
done
start
wait "$PID" || { say "the final resume failed: see $RUN.log"; exit 1; }
say "resumed to the end; $(grep -c 'took over the stale lock' "$RUN.log" || true) stale locks taken over"

# ---- compare ----------------------------------------------------------------------------------------
status=0
for f in last/model.safetensors last/optimizer.safetensors last/state.json checkpoint/model.safetensors config.json; do
  if cmp -s "$FULL/$f" "$RUN/$f"; then
    say "identical: $f ($(stat -c %s "$RUN/$f") bytes)"
  else
    say "DIFFERENT: $f"
    status=1
  fi
done
strip() { sed -E 's/"tokens_per_s":[0-9.eE+-]+,//' "$1"; }
if diff <(strip "$FULL/metrics.jsonl") <(strip "$RUN/metrics.jsonl") >"$WORK/metrics.diff"; then
  say "identical: metrics.jsonl ($(wc -l <"$RUN/metrics.jsonl") lines, tokens_per_s aside)"
else
  say "DIFFERENT: metrics.jsonl (see $WORK/metrics.diff)"
  status=1
fi
[ "$status" = 0 ] && say "PASS: 5 SIGKILLs and resumes, bit-identical to the uninterrupted run" || say "FAIL"
exit "$status"
