# Sourced: pgBackRest for a cluster made by `liftoff pg start` on this machine, configured by
# deploy/backup/pgbackrest.conf with its paths rewritten to a directory of the caller's. Used by
# tests/deploy/backup_restore.sh and bench/run-backup. The clusters run as postgres when we are root, and so
# does pgBackRest (it reads their files, and their archive_command runs it).
# The caller sets BACKUP_DIR (the repository, logs and the rewritten configuration go there), BACKUP_PG_DATA (the
# cluster's data_dir: pgdata, run and pg.password in it) and BACKUP_PG_PORT.
BACKUP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_BIN=/usr/lib/postgresql/15/bin

backup_as_postgres() {  # command...: as the user the clusters run as
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

backup_url() {  # port: the libpq URL of the cluster there (the backed-up one, or a copy restored from it)
  echo "postgresql://liftoff:$(cat "$BACKUP_PG_DATA/pg.password")@127.0.0.1:$1/liftoff"
}

backup_pgbackrest_to_stdout() {  # pgbackrest arguments... (the stanza is liftoff): what it prints, printed
  backup_as_postgres env PGPASSWORD="$(cat "$BACKUP_PG_DATA/pg.password")" /usr/bin/pgbackrest \
    --config="$BACKUP_DIR/pgbackrest.conf" --stanza=liftoff "$@"
}

backup_pgbackrest() {  # the same, what it prints to BACKUP_DIR/pgbackrest.log
  backup_pgbackrest_to_stdout "$@" >>"$BACKUP_DIR/pgbackrest.log" 2>&1
}

# Writes the configuration, and sets what its header says on the cluster (archive_timeout: $1, 60s by default);
# the cluster must then be restarted (archive_mode), and `backup_pgbackrest stanza-create` run.
backup_configure() {
  local archive_timeout=${1:-60s} conf=$BACKUP_DIR/pgbackrest.conf
  mkdir -p "$BACKUP_DIR"/{repo,log,spool,lock}
  sed -e "s|^repo1-path=.*|repo1-path=$BACKUP_DIR/repo|" \
    -e "s|^log-path=.*|log-path=$BACKUP_DIR/log|" \
    -e "s|^spool-path=.*|spool-path=$BACKUP_DIR/spool|" \
    -e "s|^lock-path=.*|lock-path=$BACKUP_DIR/lock|" \
    -e "s|^pg1-path=.*|pg1-path=$BACKUP_PG_DATA/pgdata|" \
    -e "s|^pg1-port=.*|pg1-port=$BACKUP_PG_PORT|" \
    -e "s|^pg1-socket-path=.*|pg1-socket-path=$BACKUP_PG_DATA/run|" \
    "$BACKUP_ROOT/deploy/backup/pgbackrest.conf" >"$conf"
  grep -q '^\[liftoff\]' "$conf" || { echo "deploy/backup/pgbackrest.conf has no [liftoff] stanza" >&2; return 1; }
  echo "pg1-user=liftoff" >>"$conf"  # the embedded cluster's superuser
  touch "$BACKUP_DIR/pgbackrest.log"
  [[ $(id -u) == 0 ]] && chown -R postgres:postgres "$BACKUP_DIR"/{repo,log,spool,lock} "$conf" "$BACKUP_DIR/pgbackrest.log"
  psql -X -qAt "$(backup_url "$BACKUP_PG_PORT")" \
    -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET archive_mode = on" \
    -c "ALTER SYSTEM SET archive_command = 'pgbackrest --config=$conf --stanza=liftoff archive-push %p'" \
    -c "ALTER SYSTEM SET archive_timeout = '$archive_timeout'" >/dev/null
}

# Restores the repository to `time` ($1, as PostgreSQL prints a timestamptz) into the fresh data directory $2,
# starts it on port $3 and waits until it is promoted (recovery stopped at `time`). Prints the milliseconds that
# took. Its log is $2.log.
backup_restore_to() {
  local time=$1 dest=$2 port=$3 started
  mkdir -p "$dest" "$dest-run"
  chmod 700 "$dest"
  touch "$dest.log"
  [[ $(id -u) == 0 ]] && chown postgres:postgres "$dest" "$dest-run" "$dest.log"
  started=$(date +%s%N)
  backup_pgbackrest restore --pg1-path="$dest" --type=time --target="$time" --target-action=promote \
    --archive-mode=off || { echo "the restore failed (see $BACKUP_DIR/pgbackrest.log)" >&2; return 1; }
  backup_as_postgres "$PG_BIN/pg_ctl" start -w -t 3600 -D "$dest" -l "$dest.log" -o "-p $port -k $dest-run" >/dev/null ||
    { echo "the restored cluster did not start (see $dest.log)" >&2; return 1; }
  local url
  url=$(backup_url "$port")
  until [[ $(psql -X -qAt "$url" -c "SELECT pg_is_in_recovery()" 2>/dev/null) == f ]]; do
    if ! backup_as_postgres "$PG_BIN/pg_ctl" status -D "$dest" >/dev/null; then
      echo "the restored cluster stopped (see $dest.log)" >&2
      return 1
    fi
    sleep 0.1
  done
  grep -q "recovery stopping before commit\|recovery stopping after commit" "$dest.log" ||
    { echo "recovery did not stop at a commit near $time (see $dest.log)" >&2; return 1; }
  echo $((($(date +%s%N) - started) / 1000000))
}

backup_stop_cluster() {  # a data directory: stops its cluster at once (immediate shutdown)
  backup_as_postgres "$PG_BIN/pg_ctl" stop -D "$1" -m immediate >/dev/null 2>&1 || true
}
