# shellcheck shell=bash
# PostgreSQL (Debian package, 15) as a project-local cluster on 127.0.0.1 only (no Unix
# socket), with the sledfleet role and database.
#
# The server refuses to run as root, so as root it runs as the `postgres` OS user. Its data
# directory is <run dir>/postgres/data when that user can reach it; when it cannot (a clone
# under /root, say), the cluster lives in /var/tmp/sledfleet-<hash of the run dir>/postgres
# and <run dir>/postgres/location records where (server.log is symlinked back).

PG_SUPERUSER_PASSWORD="${SLEDFLEET_PG_SUPERUSER_PASSWORD:-postgres}"
PG_APP_PASSWORD="${SLEDFLEET_DB_PASSWORD:-sledfleet}"

pg_bin() {
    local d
    if [[ -n "${SLEDFLEET_PG_BIN:-}" ]]; then printf '%s' "$SLEDFLEET_PG_BIN"; return; fi
    if [[ -x /usr/lib/postgresql/15/bin/postgres ]]; then printf '/usr/lib/postgresql/15/bin'; return; fi
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    printf '%s' "$d"
}

# as_pg <cmd...>: run as the postgres OS user when we are root, from a directory it can read.
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# pg_base: directory holding data/ and server.log (decided once per run dir, then recorded).
pg_base() {
    local dir base
    dir="$(svc_dir postgres)"
    mkdir -p "$dir"
    if [[ -s "$dir/location" ]]; then
        cat "$dir/location"
        return
    fi
    if [[ "$(id -u)" != 0 ]]; then
        base="$dir"
    else
        chown postgres: "$dir"
        if runuser -u postgres -- test -w "$dir" 2>/dev/null; then
            base="$dir"
        else
            base="/var/tmp/sledfleet-$(printf '%s' "$RUN_DIR" | sha256sum | cut -c1-12)/postgres"
            mkdir -p "$base"
            chown postgres: "$base" "$(dirname "$base")"
            chmod 755 "$(dirname "$base")"
        fi
    fi
    printf '%s\n' "$base" >"$dir/location"
    printf '%s' "$base"
}

# pg_known_base: the recorded base directory, empty when no cluster was ever set up here.
pg_known_base() {
    local loc
    loc="$(svc_dir postgres)/location"
    [[ -s "$loc" ]] && cat "$loc"
    return 0
}

pg_pid() {
    local base pid
    base="$(pg_known_base)"
    [[ -n "$base" && -f "$base/data/postmaster.pid" ]] || return 0
    pid="$(head -1 "$base/data/postmaster.pid" 2>/dev/null || true)"
    if pid_is "$pid" "$base/data"; then printf '%s' "$pid"; fi
}

postgres_health() {
    "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 3
}

postgres_status() {
    local pid
    pid="$(pg_pid)"
    if [[ -n "$pid" ]] && postgres_health >/dev/null 2>&1; then
        printf 'running  pid %s  postgresql://127.0.0.1:%s (db sledfleet, data %s)' "$pid" "$PG_PORT" "$(pg_known_base)/data"
        return 0
    fi
    if [[ -n "$pid" ]]; then printf 'unhealthy  pid %s, not accepting connections on %s' "$pid" "$PG_PORT"; return 1; fi
    foreign_status postgres "$PG_PORT" postgres_health && return 0
    printf 'stopped'
    return 1
}

pg_psql() {
    PGPASSWORD="$PG_SUPERUSER_PASSWORD" PGCONNECT_TIMEOUT=5 "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

# Create (or re-password) the sledfleet role and database; idempotent.
pg_provision() {
    local log="$1"
    pg_psql -v "app_pw=$PG_APP_PASSWORD" >>"$log" 2>&1 <<'SQL' ||
SELECT 'CREATE ROLE sledfleet LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sledfleet')\gexec
ALTER ROLE sledfleet WITH LOGIN PASSWORD :'app_pw';
SELECT 'CREATE DATABASE sledfleet OWNER sledfleet'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sledfleet')\gexec
SQL
        fail postgres "creating the sledfleet role/database failed: $(tail_cause "$log" 'ERROR|FATAL|error')" "$log"
}

postgres_start() {
    local dir base log bin pid
    dir="$(svc_dir postgres)"
    mkdir -p "$dir"
    log="$dir/server.log" # (a symlink when the cluster lives outside the run dir)
    pid="$(pg_pid)"
    if [[ -n "$pid" ]] && postgres_health >/dev/null 2>&1; then
        printf '%s\n' "$pid" >"$(pid_file postgres)"
        pg_provision "$dir/provision.log"
        say "postgres already running (pid $pid, 127.0.0.1:$PG_PORT)"
        return 0
    fi
    if [[ -z "$pid" ]] && reuse_foreign postgres "$PG_PORT" postgres_health; then
        pg_provision "$dir/provision.log"
        return 0
    fi
    if [[ -z "$pid" ]] && port_open "$PG_PORT"; then
        fail postgres "port $PG_PORT already in use by $(port_owner "$PG_PORT")" "$log"
    fi
    # decided (and created) only now: a failed port check leaves nothing behind
    base="$(pg_base)"
    log="$base/server.log"
    [[ "$base" == "$dir" ]] || ln -sfn "$log" "$dir/server.log"
    bin="$(pg_bin)"
    if [[ -z "$bin" || ! -x "$bin/postgres" ]]; then
        apt_install postgres "$dir/apt.log" postgresql postgresql-client
        bin="$(pg_bin)"
        [[ -x "$bin/postgres" ]] || fail postgres "PostgreSQL server binaries not found after install" "$dir/apt.log"
    fi
    if [[ ! -f "$base/data/PG_VERSION" ]]; then
        rm -rf "$base/data"
        local pwfile="$base/.pwfile"
        printf '%s\n' "$PG_SUPERUSER_PASSWORD" >"$pwfile"
        chmod 600 "$pwfile"
        [[ "$(id -u)" == 0 ]] && chown postgres: "$pwfile"
        as_pg "$bin/initdb" -D "$base/data" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 ||
            { rm -f "$pwfile"; fail postgres "initdb failed: $(tail_cause "$dir/initdb.log" '.')" "$dir/initdb.log"; }
        rm -f "$pwfile"
        cat >>"$base/data/postgresql.conf" <<'CONF'

# --- SledFleet (services/lib/postgres.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
CONF
    fi
    printf -- '--- %s starting PostgreSQL on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$PG_PORT" >>"$dir/pg_ctl.log"
    if ! as_pg "$bin/pg_ctl" -D "$base/data" -l "$log" -o "-p $PG_PORT" -w -t "$START_TIMEOUT_S" start \
        </dev/null >>"$dir/pg_ctl.log" 2>&1 9>&-; then
        local cause
        cause="$(tail_cause "$log" 'FATAL|ERROR|PANIC')"
        [[ -n "$cause" ]] || cause="$(tail_cause "$dir/pg_ctl.log" '.')"
        fail postgres "pg_ctl start failed${cause:+: $cause}" "$log"
    fi
    pid="$(pg_pid)"
    wait_until "$START_TIMEOUT_S" "$pid" postgres_health ||
        fail postgres "not accepting connections on 127.0.0.1:$PG_PORT" "$log"
    printf '%s\n' "$pid" >"$(pid_file postgres)"
    pg_provision "$dir/provision.log"
    say "postgres started (pid $pid, 127.0.0.1:$PG_PORT, data $base/data)"
}

postgres_stop() {
    local base pid bin
    base="$(pg_known_base)"
    pid="$(pg_pid)"
    bin="$(pg_bin)"
    if [[ -z "$pid" ]]; then
        rm -f "$(pid_file postgres)"
        say "postgres not running"
        return 0
    fi
    as_pg "$bin/pg_ctl" -D "$base/data" -m fast -w -t "$STOP_TIMEOUT_S" stop \
        >>"$(svc_dir postgres)/pg_ctl.log" 2>&1 ||
        as_pg "$bin/pg_ctl" -D "$base/data" -m immediate -w -t 10 stop \
            >>"$(svc_dir postgres)/pg_ctl.log" 2>&1 || true
    if pid_alive "$pid"; then
        kill_group "$pid" 5 || { say "postgres (pid $pid) did not stop"; return 1; }
    fi
    wait_port_free "$PG_PORT" 10 || { say "postgres stopped but port $PG_PORT is still taken"; return 1; }
    rm -f "$(pid_file postgres)"
    say "postgres stopped"
}
