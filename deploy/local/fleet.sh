# The fleet on one machine (deploy/local/up, restart, down): its layout and the helpers each script shares.
# Sourced, not run. DIR/fleet.env (written by up) holds the layout; every process's pid is in DIR/run/NAME.pid and
# its output in DIR/log/NAME.log.

fleet_fail() {  # message: says what did not happen, with the end of each log
  echo "deploy/local: $1 (logs in $DIR/log)" >&2
  for log in "$DIR"/log/*.log; do
    [[ -s $log ]] || continue
    echo "--- the last lines of $log" >&2
    tail -n 12 "$log" >&2
  done
  exit 1
}

fleet_load() {  # reads DIR/fleet.env (up wrote it)
  [[ -f $DIR/fleet.env ]] || { echo "deploy/local: no fleet in $DIR" >&2; exit 1; }
  # shellcheck source=/dev/null
  source "$DIR/fleet.env"
}

# Whether a pid runs (a zombie, left by a parent that does not reap, has ended).
fleet_alive() {
  [[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
  local stat
  stat=$(</proc/"$1"/stat) 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

fleet_pid() { cat "$DIR/run/$1.pid" 2>/dev/null; }

# Starts a Liftoff process in a session of its own: name port command... (serve or worker). Its settings are the
# fleet's (FLEET_LIFTOFF_ENV) and its own listener.
fleet_start_liftoff() {
  local name=$1 port=$2
  shift 2
  env "${FLEET_LIFTOFF_ENV[@]}" LIFTOFF_LISTEN="127.0.0.1:$port" \
    setsid "$FLEET_BIN" "$@" >>"$DIR/log/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/run/$name.pid"
}

# Redis holds only rate-limit windows and relays events between nodes: nothing to persist.
fleet_start_redis() {
  redis-server --port $((FLEET_BASE + 21)) --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$DIR/redis" --pidfile "$DIR/run/redis.pid" --logfile "$DIR/log/redis.log"
  for _ in $(seq 50); do redis-cli -p $((FLEET_BASE + 21)) ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  fleet_fail "Redis did not start"
}

fleet_wait_ready() {  # name port seconds: until its /readyz answers 200
  local name=$1 port=$2 seconds=$3
  for _ in $(seq $((seconds * 5))); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && return 0
    fleet_alive "$(fleet_pid "$name")" || fleet_fail "$name exited before it was ready"
    sleep 0.2
  done
  fleet_fail "$name was not ready within ${seconds}s"
}

# Stops a process by its pid file: SIGTERM, then SIGKILL after `seconds`. Prints how it ended.
fleet_stop() {  # name seconds
  local name=$1 seconds=$2 pid
  pid=$(fleet_pid "$name") || return 0
  rm -f "$DIR/run/$name.pid"
  fleet_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq $((seconds * 10))); do
    fleet_alive "$pid" || return 0
    sleep 0.1
  done
  echo "deploy/local: $name did not stop within ${seconds}s; killed" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# A cluster's PostgreSQL: shard (0: the control cluster, s: shard-s), replica (0: its primary, r: its r-th replica).
fleet_url() {  # shard [replica] -> its libpq URL (every server of a cluster has its primary's password)
  local dir=$DIR/data
  [[ $1 != 0 ]] && dir=$DIR/data/shard-$1
  echo "postgresql://liftoff:$(cat "$dir/pg.password")@127.0.0.1:$((FLEET_BASE + 30 + 10 * $1 + ${2:-0}))/liftoff"
}
fleet_psql() {  # shard replica psql-arguments... (-c STATEMENT, or a script on stdin)
  local url
  url=$(fleet_url "$1" "$2")
  shift 2
  psql -X -qAt "$url" "$@"
}
fleet_records() {  # the records on every cluster's primary
  local total=0 shard
  for shard in $(seq 0 "$FLEET_SHARDS"); do
    total=$((total + $(fleet_psql "$shard" 0 -c "SELECT count(*) FROM records")))
  done
  echo "$total"
}

fleet_wait_all_ready() {  # seconds: every API node and the worker
  local i
  for i in $(seq "$FLEET_NODES"); do fleet_wait_ready "node-$i" $((FLEET_BASE + 10 + i)) "$1"; done
  fleet_wait_ready worker $((FLEET_BASE + 20)) "$1"
}

fleet_port_free() {  # port
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
