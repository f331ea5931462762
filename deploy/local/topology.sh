#!/usr/bin/env bash
# A realistic multi-process unirec topology on one machine, all plain
# processes of the one binary: the embedded broker, 2 ingest processes, a
# trainer and a standby trainer, and 2 serving replicas with different
# use-case environments. Logs, data and pids live under one folder.
#
#   deploy/local/topology.sh start [DIR]    # default DIR: ./topology
#   deploy/local/topology.sh status [DIR]
#   deploy/local/topology.sh stop [DIR]     # clean stop (SIGTERM, then wait)
#
# Environment: UNIREC_BIN (default ./bin/unirec), BASE_PORT (default 19000):
# broker BASE_PORT+92, ingest BASE_PORT+81/+83, trainers +82/+84,
# replicas +80 (search, real-time) and +90 (notifications and the others).
set -euo pipefail
cmd=${1:-}
dir=${2:-topology}
bin=${UNIREC_BIN:-./bin/unirec}
base=${BASE_PORT:-19000}
broker="127.0.0.1:$((base + 92))"

start_one() { # name, args...
  local name=$1; shift
  mkdir -p "$dir/logs" "$dir/pids"
  nohup "$bin" "$@" >"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/pids/$name.pid"
  echo "started $name (pid $!)"
}

write_configs() {
  mkdir -p "$dir"
  cat >"$dir/common.yaml" <<YAML
snapshot:
  interval: 1s
YAML
  cat >"$dir/replica-search.yaml" <<YAML
snapshot:
  interval: 1s
serve:
  use_cases:
    - {name: search, timeout: 50ms}
    - {name: related_items, timeout: 50ms}
YAML
  cat >"$dir/replica-home.yaml" <<YAML
snapshot:
  interval: 1s
serve:
  use_cases:
    - {name: notifications, timeout: 200ms}
    - {name: category_exploration, timeout: 100ms}
YAML
}

case "$cmd" in
start)
  [ -x "$bin" ] || { echo "no unirec binary at $bin: run make build (or set UNIREC_BIN)" >&2; exit 1; }
  write_configs
  start_one broker broker --config "$dir/common.yaml" --port $((base + 92)) --data-dir "$dir/data/broker"
  for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$((base + 92))) 2>/dev/null && break; sleep 0.1; done
  start_one ingest-1 ingest --config "$dir/common.yaml" --brokers "$broker" --listen 127.0.0.1:$((base + 81))
  start_one ingest-2 ingest --config "$dir/common.yaml" --brokers "$broker" --listen 127.0.0.1:$((base + 83))
  start_one trainer-1 train --config "$dir/common.yaml" --brokers "$broker" --data-dir "$dir/data/trainer-1" --listen 127.0.0.1:$((base + 82))
  start_one trainer-2 train --config "$dir/common.yaml" --brokers "$broker" --data-dir "$dir/data/trainer-2" --listen 127.0.0.1:$((base + 84))
  start_one replica-search serve --config "$dir/replica-search.yaml" --brokers "$broker" --listen 127.0.0.1:$((base + 80))
  start_one replica-home serve --config "$dir/replica-home.yaml" --brokers "$broker" --listen 127.0.0.1:$((base + 90))
  echo "broker $broker; replicas http://127.0.0.1:$((base + 80)) (search, related_items), http://127.0.0.1:$((base + 90)) (notifications, category_exploration)"
  ;;
status)
  for f in "$dir"/pids/*.pid; do
    name=$(basename "$f" .pid); pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then echo "$name running (pid $pid)"; else echo "$name stopped"; fi
  done
  ;;
stop)
  for f in "$dir"/pids/*.pid; do [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  echo "stopped"
  ;;
*)
  sed -n '2,14p' "$0" >&2; exit 2
  ;;
esac
