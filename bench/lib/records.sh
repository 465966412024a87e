# What bench/run-records and bench/run-writes share (sourced): load at 64 connections for
# SECONDS_PER_RUN seconds, through wrk with bench/lua/records.lua against the caller's server, and
# through pgbench against the caller's PostgreSQL. Uses the caller's API, TOKEN, BASE, WORK and
# PG_PORT; records.lua also reads IDS_FILE, BASES_FILE and PATHS_FILE when its mode needs them.

run_wrk() {  # mode [url] -> "rps p50_ms p99_ms non2xx"
  TOKEN=$TOKEN BASE=$BASE MODE=$1 IDS_FILE="${IDS_FILE:-/dev/null}" \
    BASES_FILE="${BASES_FILE:-/dev/null}" PATHS_FILE="${PATHS_FILE:-/dev/null}" \
    wrk -t2 -c64 -d"${SECONDS_PER_RUN}s" --latency -s bench/lua/records.lua "${2:-$API}" |
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
