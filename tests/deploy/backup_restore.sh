#!/usr/bin/env bash
# Backups and point-in-time recovery with pgBackRest (docs/operations.md, "Backups and point-in-time recovery"),
# run by CTest as deploy_backup with the build under test. A cluster made by `liftoff pg start` archives its WAL to
# a repository configured by deploy/backup/pgbackrest.conf (its paths rewritten to this test's directory by
# deploy/backup/local.sh), and Liftoff serves on it:
#   1. a full backup; records A written; an incremental backup; records B written, one record of A deleted and one
#      changed: the moment T is taken; then records C written, and the changed record changed again;
#   2. the repository is restored into a fresh data directory to time T, and started on another port: it is
#      promoted at T and no later;
#   3. checked there: A (but the deleted one) and B are in it, C is not, the changed record holds its value at T,
#      the org's audit chain verifies (`liftoff audit verify`), and a Liftoff process on the restored cluster
#      signs the owner in and lists the org's records.
# The restore's duration (RTO for this size) and the data's size are printed.
# Usage: tests/deploy/backup_restore.sh BIN_DIR (liftoff)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(realpath "${1:?usage: backup_restore.sh BIN_DIR}")/liftoff
DIR=$(mktemp -d /tmp/liftoff-backup-test-XXXXXX)
chmod 755 "$DIR"  # the embedded PostgreSQL runs as postgres when we are root
# shellcheck source=deploy/local/fleet.sh
source "$ROOT/deploy/local/fleet.sh"
# shellcheck source=deploy/backup/local.sh
source "$ROOT/deploy/backup/local.sh"
BASE=
for candidate in 29400 29420 29440 29460 29480; do
  free=1
  for port in $(seq "$candidate" $((candidate + 3))); do fleet_port_free "$port" || { free=0; break; }; done
  if ((free)); then BASE=$candidate; break; fi
done
[[ -n $BASE ]] || { echo "FAIL: no free range of ports"; exit 1; }
PG_PORT=$BASE RESTORED_PORT=$((BASE + 1)) API_PORT=$((BASE + 2)) RESTORED_API_PORT=$((BASE + 3))
BACKUP_DIR=$DIR/backup BACKUP_PG_DATA=$DIR/data BACKUP_PG_PORT=$PG_PORT
PIDS=()
finish() {
  local code=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if ((code != 0)); then
    for log in "$DIR"/*.log "$DIR"/backup/*.log "$DIR"/backup/log/*.log; do
      [[ -s $log ]] && { echo "--- the last lines of $log"; tail -n 20 "$log"; }
    done
  fi
  backup_stop_cluster "$DIR/restored"
  LIFTOFF_DATA_DIR="$DIR/data" LIFTOFF_EMBEDDED_PG_PORT=$PG_PORT "$BIN" pg stop >/dev/null 2>&1 ||
    backup_stop_cluster "$DIR/data/pgdata"
  rm -rf "$DIR"
  exit "$code"
}
trap finish EXIT
fail() { echo "FAIL: $1"; exit 1; }

echo "== the cluster, on $PG_PORT"
export LIFTOFF_DATA_DIR=$DIR/data LIFTOFF_EMBEDDED_PG_PORT=$PG_PORT
"$BIN" pg start >>"$DIR/postgres.log" 2>&1
URL=$(backup_url "$PG_PORT") RESTORED_URL=$(backup_url "$RESTORED_PORT")
sql() { psql -X -qAt "$URL" -v ON_ERROR_STOP=1 "$@"; }
restored_sql() { psql -X -qAt "$RESTORED_URL" -v ON_ERROR_STOP=1 "$@"; }

echo "== pgBackRest: deploy/backup/pgbackrest.conf, its paths in $DIR/backup"
backup_configure 10s  # a short archive_timeout: the test waits less
"$BIN" pg stop >>"$DIR/postgres.log" 2>&1
"$BIN" pg start >>"$DIR/postgres.log" 2>&1
backup_pgbackrest stanza-create || fail "stanza-create"
backup_pgbackrest check || fail "check: WAL is not archived"

echo "== Liftoff on $API_PORT; a full backup"
"$BIN" migrate up --database-url "$URL" >>"$DIR/liftoff.log" 2>&1
backup_pgbackrest --type=full backup || fail "the full backup"
LIFTOFF_DATABASE_URL=$URL LIFTOFF_LISTEN="127.0.0.1:$API_PORT" LIFTOFF_RATE_LIMITS=false \
  "$BIN" serve >>"$DIR/liftoff.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$API_PORT/readyz" && break; sleep 0.2; done
api() {  # port method path [body]: the answer's body; fails on a status other than 2xx
  curl -sf -X "$2" "http://127.0.0.1:$1$3" -H "Authorization: Bearer ${TOKEN:-}" \
    -H 'Content-Type: application/json' ${4:+--data "$4"}
}
field() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
EMAIL="owner.$$@example.com"
TOKEN=$(api "$API_PORT" POST /v1/auth/signup \
  "{\"email\":\"$EMAIL\",\"password\":\"a sturdy passphrase\",\"name\":\"Ada\"}" | field "['token']")
ORG=$(api "$API_PORT" POST /v1/orgs '{"name":"backed up"}' | field "['id']")
RECORDS=/v1/orgs/$ORG/collections/tickets/records
api "$API_PORT" POST "/v1/orgs/$ORG/collections" \
  '{"name":"tickets","fields":[{"name":"title","type":"text","required":true},{"name":"state","type":"text"}]}' \
  >/dev/null
create() { api "$API_PORT" POST "$RECORDS" "{\"title\":\"$1\",\"state\":\"${2:-new}\"}" | field "['id']"; }
for i in $(seq 20); do create "A-$i" >/dev/null; done
DELETED=$(create "A-deleted")
CHANGED=$(create "A-changed" "first")

echo "== an incremental backup; records B, a delete and a change; the moment T; records C"
backup_pgbackrest --type=incr backup || fail "the incremental backup"
for i in $(seq 20); do create "B-$i" >/dev/null; done
api "$API_PORT" DELETE "$RECORDS/$DELETED" >/dev/null
api "$API_PORT" PATCH "$RECORDS/$CHANGED" '{"state":"at T"}' >/dev/null
sleep 1
T=$(sql -c "SELECT now()")
sleep 1
for i in $(seq 20); do create "C-$i" >/dev/null; done
api "$API_PORT" PATCH "$RECORDS/$CHANGED" '{"state":"after T"}' >/dev/null
# check switches to a new WAL segment and waits until the one with C's commits is in the repository.
backup_pgbackrest check || fail "check after C"
BYTES=$(sql -c "SELECT pg_database_size('liftoff')")

echo "== restored to $T into a fresh cluster on $RESTORED_PORT"
restore_ms=$(backup_restore_to "$T" "$DIR/restored" "$RESTORED_PORT") || fail "the restore to T"

echo "== what the restored cluster holds"
count() { restored_sql -c "SELECT count(*) FROM records WHERE org_id = '$ORG' AND data->>'title' LIKE '$1'"; }
[[ $(count 'A-%') == 21 ]] || fail "A: $(count 'A-%') of 21 records (20, and the changed one)"
[[ $(count 'A-deleted') == 0 ]] || fail "the record deleted before T is back"
[[ $(count 'B-%') == 20 ]] || fail "B: $(count 'B-%') of 20 records"
[[ $(count 'C-%') == 0 ]] || fail "C, written after T: $(count 'C-%') records"
state=$(restored_sql -c "SELECT data->>'state' FROM records WHERE id = '$CHANGED'")
[[ $state == "at T" ]] || fail "the changed record holds '$state', not its value at T"
"$BIN" audit verify --org "$ORG" --database-url "$RESTORED_URL" >"$DIR/verify.log" 2>&1 ||
  fail "the audit chain does not verify: $(cat "$DIR/verify.log")"
LIFTOFF_DATABASE_URL=$RESTORED_URL LIFTOFF_LISTEN="127.0.0.1:$RESTORED_API_PORT" LIFTOFF_RATE_LIMITS=false \
  "$BIN" serve >>"$DIR/restored-liftoff.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$RESTORED_API_PORT/readyz" && break; sleep 0.2; done
TOKEN=$(api "$RESTORED_API_PORT" POST /v1/auth/login \
  "{\"email\":\"$EMAIL\",\"password\":\"a sturdy passphrase\"}" | field "['token']") ||
  fail "the owner cannot sign in on the restored cluster"
listed=$(api "$RESTORED_API_PORT" GET "$RECORDS?limit=100" | field "['records'].__len__()")
[[ $listed == 41 ]] || fail "Liftoff on the restored cluster lists $listed records, not 41"

echo "audit verify: $(tail -n 1 "$DIR/verify.log")"
echo "restored to T in ${restore_ms} ms (database of $((BYTES / 1024 / 1024)) MiB): A and B there, C not, the" \
  "changed record at its value at T, the audit chain verified, the owner signed in"
echo "PASS"
