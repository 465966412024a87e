# What bench/run-records and bench/run-writes share (sourced): load at 64 connections for
# SECONDS_PER_RUN seconds, through wrk with bench/lua/records.lua against the caller's server, and
# through pgbench against the caller's PostgreSQL. Uses the caller's API, TOKEN, BASE, WORK and
# PG_PORT; records.lua also reads IDS_FILE, BASES_FILE and PATHS_FILE when its mode needs them.

wrk_records() {  # seconds mode [url]
  TOKEN=$TOKEN BASE=$BASE MODE=$2 IDS_FILE="${IDS_FILE:-/dev/null}" \
    BASES_FILE="${BASES_FILE:-/dev/null}" PATHS_FILE="${PATHS_FILE:-/dev/null}" \
    wrk -t2 -c64 -d"$1s" --latency -s bench/lua/records.lua "${3:-$API}"
}

# A second of the same load first, not measured: the server opens its pooled connections to
# PostgreSQL on demand, and 64 clients arriving at once make it open them all in the first half
# second (each a TCP and SCRAM handshake), which would otherwise be the measured p99. pgbench's
# latencies leave its connection setup out the same way.
run_wrk() {  # mode [url] -> "rps p50_ms p99_ms non2xx"
  wrk_records 1 "$@" >/dev/null
  wrk_records "$SECONDS_PER_RUN" "$@" |
    awk 'function ms(v) { if (v ~ /us$/) { sub(/us/, "", v); return v / 1000 }
                          if (v ~ /ms$/) { sub(/ms/, "", v); return v }
                          if (v ~ /s$/) { sub(/s/, "", v); return v * 1000 } return v }
         /Requests\/sec/ {rps=$2} /^ +50%/ {p50=ms($2)} /^ +99%/ {p99=ms($2)} /^non2xx/ {bad=$2}
         END {printf "%.0f %.2f %.2f %d", rps, p50, p99, bad}'
}

pgbench_run() {  # flags -> "tps p50_ms p99_ms"
  pgbench -n "$@" -M prepared -c 64 -j 2 -T "$SECONDS_PER_RUN" -r -l --log-prefix="$WORK/pgb" \
    -h 127.0.0.1 -p "$PG_PORT" -U liftoff liftoff 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}'
  # Per-transaction latencies from the log (microseconds, column 3).
  cat "$WORK"/pgb.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf " %.2f %.2f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}'
  rm -f "$WORK"/pgb.*
}
