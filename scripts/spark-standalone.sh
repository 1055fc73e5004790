#!/usr/bin/env bash
# A Spark standalone cluster on this machine, on loopback, from the spark module's jars (no Spark download):
#   scripts/spark-standalone.sh start [WORKERS] [CORES] [MEMORY]   # prints the master URL: spark://127.0.0.1:7077
#   ./bitskip ablation ... --spark spark://127.0.0.1:7077
#   scripts/spark-standalone.sh stop
# What "standalone tested here" in spark/README.md ran against. Logs and pids in spark/target/standalone/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$HERE/spark/target/standalone"
CP_FILE="$HERE/spark/target/classpath.txt"
cmd="${1:-}"
case "$cmd" in
  start)
    workers="${2:-2}" cores="${3:-1}" memory="${4:-2g}"
    mkdir -p "$DIR"
    if [ ! -f "$CP_FILE" ]; then
      (cd "$HERE" && mvn -B -q -Pspark -pl spark -am dependency:build-classpath -Dmdep.outputFile=target/classpath.txt >&2)
    fi
    CP="$(tr ':' '\n' < "$CP_FILE" | grep -v '/io/github/bitskip/' | paste -sd: -)"
    # Workers start executors from SPARK_HOME/jars (found by an empty RELEASE file); the application's own jars
    # come from the driver (spark.jars: ./bitskip passes them).
    export SPARK_HOME="$DIR/home" SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_IP=127.0.0.1
    mkdir -p "$SPARK_HOME/jars" && touch "$SPARK_HOME/RELEASE"
    tr ':' '\n' <<< "$CP" | grep '\.jar$' | while read -r j; do ln -sf "$j" "$SPARK_HOME/jars/"; done
    FLAGS=(-Xmx512m $(cat "$HERE/spark/driver.args"))
    nohup java "${FLAGS[@]}" -cp "$CP" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port 7077 \
      --webui-port 8080 > "$DIR/master.log" 2>&1 &
    echo $! > "$DIR/master.pid"
    sleep 3
    for i in $(seq 1 "$workers"); do
      nohup java "${FLAGS[@]}" -cp "$CP" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores "$cores" \
        --memory "$memory" --work-dir "$DIR/work$i" --webui-port $((8080 + i)) spark://127.0.0.1:7077 > "$DIR/worker$i.log" 2>&1 &
      echo $! > "$DIR/worker$i.pid"
    done
    echo "spark://127.0.0.1:7077"
    ;;
  stop)
    for f in "$DIR"/*.pid; do
      [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    done
    ;;
  *)
    echo "usage: $0 start [WORKERS] [CORES] [MEMORY] | stop" >&2
    exit 2
    ;;
esac
