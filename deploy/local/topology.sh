#!/usr/bin/env bash
# A realistic multi-process unirec topology on one machine, all plain
# processes of the one binary: the embedded broker, 2 ingest processes, a
# trainer and a standby trainer, and 2 serving replicas with different
# use-case environments. Logs, data, pids and secrets (the snapshot key and
# the admin token, generated on the first start, mode 0600) live under one
# folder.
#
#   deploy/local/topology.sh start [DIR]    # default DIR: ./topology
#   deploy/local/topology.sh status [DIR]
#   deploy/local/topology.sh stop [DIR]     # clean stop (SIGTERM, then wait)
#   deploy/local/topology.sh kill NAME [DIR]     # SIGKILL one process (a crash)
#   deploy/local/topology.sh restart NAME [DIR]  # start one process again (stopping it first if it runs)
# NAME is broker, ingest-1, ingest-2, trainer-1, trainer-2, replica-search
# or replica-home.
#
# The search replica takes every new model version (real-time); the home
# replica keeps notifications on one version for an hour (stable caching).
#
# Environment: UNIREC_BIN (default ./bin/unirec), BASE_PORT (default 19000),
# LEASE_TIMEOUT (trainer failover, default 10s), INGEST_SESSION_TIMEOUT (how
# long a crashed ingest process keeps its partitions, default 10s instead of
# the client's 45s), HOME_UPDATE_INTERVAL (1h):
# broker BASE_PORT+92, ingest BASE_PORT+81/+83, trainers +82/+84,
# replicas +80 (search, real-time) and +90 (notifications and the others).
# BASE_PORT=0: every process listens on a port it picks itself and reports
# the address it bound in its log ("broker: listening on ADDR", ", HTTP on
# ADDR"); the broker's is kept in DIR/broker.addr for the others (and a
# restarted broker takes the same port again).
set -euo pipefail
cmd=${1:-}
if [ "$cmd" = kill ] || [ "$cmd" = restart ]; then
  name=${2:?process name}; dir=${3:-topology}
else
  dir=${2:-topology}
fi
bin=${UNIREC_BIN:-./bin/unirec}
base=${BASE_PORT:-19000}

listen() { # offset: the HTTP address of a process
  if [ "$base" = 0 ]; then echo 127.0.0.1:0; else echo "127.0.0.1:$((base + $1))"; fi
}

broker_port() { # the embedded broker's: BASE_PORT+92, or with BASE_PORT=0 the one it bound first (-1: a free one)
  if [ "$base" != 0 ]; then echo $((base + 92))
  elif [ -s "$dir/broker.addr" ]; then cut -d: -f2 "$dir/broker.addr"
  else echo -1; fi
}

args_for() { # the command line of one process
  local broker
  broker=$(cat "$dir/broker.addr" 2>/dev/null || true)
  case "$1" in
  broker) echo broker --config "$dir/common.yaml" --port "$(broker_port)" --data-dir "$dir/data/broker" ;;
  ingest-1) echo ingest --config "$dir/common.yaml" --brokers "$broker" --listen "$(listen 81)" ;;
  ingest-2) echo ingest --config "$dir/common.yaml" --brokers "$broker" --listen "$(listen 83)" ;;
  trainer-1) echo train --config "$dir/common.yaml" --brokers "$broker" --data-dir "$dir/data/trainer-1" --listen "$(listen 82)" ;;
  trainer-2) echo train --config "$dir/common.yaml" --brokers "$broker" --data-dir "$dir/data/trainer-2" --listen "$(listen 84)" ;;
  replica-search) echo serve --config "$dir/replica-search.yaml" --brokers "$broker" --data-dir "$dir/data/replica-search" --listen "$(listen 80)" ;;
  replica-home) echo serve --config "$dir/replica-home.yaml" --brokers "$broker" --data-dir "$dir/data/replica-home" --listen "$(listen 90)" ;;
  *) echo "unknown process $1" >&2; exit 2 ;;
  esac
}

await_broker() { # until the broker accepts connections; its address in DIR/broker.addr
  local addr=""
  for _ in $(seq 1 100); do
    if [ "$base" = 0 ]; then
      # the log may not exist yet: the broker's shell opens it after it forked
      addr=$(sed -n 's/.*broker: listening on \([^ ]*\).*/\1/p' "$dir/logs/broker.log" 2>/dev/null | tail -n 1 || true)
    else
      addr="127.0.0.1:$((base + 92))"
    fi
    if [ -n "$addr" ] && (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
      echo "$addr" >"$dir/broker.addr"
      return 0
    fi
    sleep 0.1
  done
  echo "the broker did not start: see $dir/logs/broker.log" >&2
  exit 1
}

alive() { # pid: running (a zombie left unreaped by init counts as stopped)
  kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo R)" != Z ]
}

wait_gone() { # pid: wait up to 10s for it to exit; fails if it did not
  for _ in $(seq 1 100); do alive "$1" || return 0; sleep 0.1; done
  return 1
}

start_one() { # name
  local name=$1
  mkdir -p "$dir/logs" "$dir/pids"
  # shellcheck disable=SC2046
  nohup "$bin" $(args_for "$name") >>"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/pids/$name.pid"
  echo "started $name (pid $!)"
}

secret() { # file: 32 random bytes in hex, readable by its owner only; kept when it exists
  [ -s "$1" ] || (umask 077 && mkdir -p "$(dirname "$1")" && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$1")
}

write_configs() {
  mkdir -p "$dir"
  # Separate processes share one snapshot key (the trainers sign, the
  # replicas verify); the replicas' admin endpoints want the admin token.
  secret "$dir/secrets/snapshot.key"
  secret "$dir/secrets/admin.token"
  cat >"$dir/common.yaml" <<YAML
snapshot:
  interval: 1s
  hmac_key_file: $dir/secrets/snapshot.key
trainer:
  lease_session_timeout: ${LEASE_TIMEOUT:-10s}
ingest:
  session_timeout: ${INGEST_SESSION_TIMEOUT:-10s}
YAML
  cat >"$dir/replica-search.yaml" <<YAML
snapshot:
  interval: 1s
  hmac_key_file: $dir/secrets/snapshot.key
serve:
  admin_token_file: $dir/secrets/admin.token
  use_cases:
    - {name: search, timeout: 50ms, updates: realtime}
    - {name: related_items, timeout: 50ms, updates: realtime}
YAML
  cat >"$dir/replica-home.yaml" <<YAML
snapshot:
  interval: 1s
  hmac_key_file: $dir/secrets/snapshot.key
serve:
  admin_token_file: $dir/secrets/admin.token
  use_cases:
    - {name: notifications, timeout: 200ms, updates: interval, update_interval: ${HOME_UPDATE_INTERVAL:-1h}}
    - {name: category_exploration, timeout: 100ms, updates: realtime}
YAML
}

case "$cmd" in
start)
  [ -x "$bin" ] || { echo "no unirec binary at $bin: run make build (or set UNIREC_BIN)" >&2; exit 1; }
  write_configs
  rm -f "$dir/broker.addr"
  start_one broker
  await_broker
  for name in ingest-1 ingest-2 trainer-1 trainer-2 replica-search replica-home; do start_one "$name"; done
  if [ "$base" = 0 ]; then
    echo "broker $(cat "$dir/broker.addr"); each process reports its HTTP address in $dir/logs/NAME.log"
  else
    echo "broker $(cat "$dir/broker.addr"); replicas http://127.0.0.1:$((base + 80)) (search, related_items), http://127.0.0.1:$((base + 90)) (notifications, category_exploration)"
  fi
  ;;
kill)
  pid=$(cat "$dir/pids/$name.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; then
    wait_gone "$pid" || echo "$name (pid $pid) has not exited yet" >&2 # SIGKILL is asynchronous: a status right after must say stopped
    echo "killed $name"
  else
    echo "$name was not running"
  fi
  ;;
restart)
  pid=$(cat "$dir/pids/$name.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && alive "$pid"; then # never two of one process (a trainer's Pebble, a port)
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" || true; }
    echo "stopped $name (pid $pid)"
  fi
  start_one "$name"
  ;;
status)
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || { echo "nothing started in $dir"; break; }
    name=$(basename "$f" .pid); pid=$(cat "$f")
    if alive "$pid"; then echo "$name running (pid $pid)"; else echo "$name stopped"; fi
  done
  ;;
stop)
  for f in "$dir"/pids/*.pid; do [ -e "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    wait_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  echo "stopped"
  ;;
*)
  sed -n '2,29p' "$0" >&2; exit 2
  ;;
esac
