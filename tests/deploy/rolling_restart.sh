#!/usr/bin/env bash
# The fleet on one machine (deploy/local), run by CTest as deploy_fleet with the build under test: brought up with
# both balancers, then restarted node by node (deploy/local/restart) while liftoff-bench's mix runs through nginx
# and through HAProxy at once. Checked:
#   - every request of both loads is answered correctly: no refusal, reset, 502 or 503 on the way (0 errors);
#   - every record create answered 201 during the run is in the database afterwards (the records of both clusters,
#     counted before and after, differ by exactly the creates acknowledged);
#   - Prometheus scrapes every node and the worker again once the restart is over;
#   - deploy/local/down leaves no process of the fleet running.
# Usage: tests/deploy/rolling_restart.sh BIN_DIR (liftoff and liftoff-bench)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=$(realpath "${1:?usage: rolling_restart.sh BIN_DIR}")
DIR=$(mktemp -d /tmp/liftoff-fleet-test-XXXXXX)
# shellcheck source=deploy/local/fleet.sh
source "$ROOT/deploy/local/fleet.sh"
# A base port whose 60 ports are free (other tests run beside this one).
BASE=
for candidate in 28400 28500 28600 28700 28800 28900; do
  free=1
  for port in $(seq "$candidate" $((candidate + 59))); do fleet_port_free "$port" || { free=0; break; }; done
  if ((free)); then BASE=$candidate; break; fi
done
[[ -n $BASE ]] || { echo "FAIL: no free range of ports"; exit 1; }
LOADS=()
finish() {
  local code=$?
  for pid in "${LOADS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if ((code != 0)); then
    for log in "$DIR"/log/*.log "$DIR"/load-*.out; do
      [[ -s $log ]] && { echo "--- the last lines of $log"; tail -n 15 "$log"; }
    done
  fi
  "$ROOT/deploy/local/down" --dir "$DIR"
  exit "$code"
}
trap finish EXIT
fail() { echo "FAIL: $1"; exit 1; }

# One load generator plays every user from one address. Statements and requests get 30 s: this test is about
# the drain and the balancers, and runs under ASan beside the other suites on two cores, where a restarted node's
# first statements (new PostgreSQL backends, cold caches) once took longer than the default 5 s and answered 504.
# bench/run-rolling-restart measures with the defaults, in a release build.
export LIFTOFF_RATE_LIMITS=false LIFTOFF_DB_QUERY_TIMEOUT=30s LIFTOFF_HANDLING_TIMEOUT=30s
"$ROOT/deploy/local/up" --dir "$DIR" --base-port "$BASE" --balancer both --binary "$BIN_DIR/liftoff"
fleet_load
DATA=(--run fleet --users 100 --big-orgs 0)
"$BIN_DIR/liftoff-bench" seed --database-url "$(fleet_url 0)" \
  "${DATA[@]}" >"$DIR/seed.out" 2>&1 || { cat "$DIR/seed.out"; fail "seeding"; }
before=$(fleet_records)

# The mix through each balancer, in runs of 15 s, until the restart is over.
load() {  # name port
  local run=0
  until [[ -e $DIR/restarted ]]; do
    run=$((run + 1))
    "$BIN_DIR/liftoff-bench" run --url "http://127.0.0.1:$2" --scenario mix "${DATA[@]}" -c 8 --rate 40 -d 15 --timeout 40 \
      --json "$DIR/load-$1-$run.json" >>"$DIR/load-$1.out" 2>&1 || true
  done
}
load nginx "$BASE" &
LOADS+=($!)
load haproxy $((BASE + 1)) &
LOADS+=($!)
sleep 3
"$ROOT/deploy/local/restart" --dir "$DIR"
touch "$DIR/restarted"
for pid in "${LOADS[@]}"; do wait "$pid"; done
LOADS=()
after=$(fleet_records)

/usr/bin/python3 - "$DIR" "$before" "$after" <<'PY'
import glob, json, sys
d, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
created, failed = 0, False
for balancer in ("nginx", "haproxy"):
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{d}/load-{balancer}-*.json"))]
    answers = sum(r["answers"] for r in runs)
    errors = {}
    for r in runs:
        for kind, n in r["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    created += sum(r["ok_by_kind"].get("create", 0) for r in runs)
    print(f"{balancer}: {len(runs)} runs, {answers} answers, errors {errors or 0}")
    if not runs or answers == 0:
        print(f"FAIL: no load went through {balancer}"); failed = True
    if errors:
        examples = [r["error_examples"] for r in runs if r["errors"]]
        print(f"FAIL: {balancer}'s load saw errors during the rolling restart: {examples}"); failed = True
print(f"records: {before} before, {after} after, {created} creates acknowledged")
if after - before != created:
    print(f"FAIL: {after - before} records more, {created} creates acknowledged"); failed = True
sys.exit(1 if failed else 0)
PY

# Prometheus scrapes every node and the worker again (a scrape every 5 s).
expected=4
for _ in $(seq 60); do
  up=$(curl -sf "http://127.0.0.1:$((BASE + 22))/api/v1/query?query=sum(up%7Bjob%3D%22liftoff%22%7D)" |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
  [[ $up == "$expected" ]] && break
  sleep 0.5
done
[[ $up == "$expected" ]] || fail "Prometheus scrapes $up of the $expected Liftoff processes"

"$ROOT/deploy/local/down" --dir "$DIR"
trap - EXIT
pgrep -f "$DIR" >/dev/null && fail "processes of the fleet outlived deploy/local/down: $(pgrep -af "$DIR")"
[[ ! -e $DIR ]] || fail "deploy/local/down left $DIR"
for port in $(seq "$BASE" $((BASE + 41))); do
  fleet_port_free "$port" || fail "port $port still listens after deploy/local/down"
done
echo "PASS: a rolling restart of 3 nodes under load through nginx and HAProxy, 0 errors, every create kept"
