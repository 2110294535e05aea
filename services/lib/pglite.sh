# shellcheck shell=bash
# TimescaleDB-on-WASM (PGlite + TimescaleDB under Node.js): services/pglite/server.mjs.
# npm packages pinned in services/pglite/package.json + package-lock.json (npm ci).

PGLITE_DIR="$SERVICES_DIR/pglite"

pglite_health() { port_open "$PGLITE_PORT"; }

pglite_status() {
    local pid
    pid="$(read_pid pglite)"
    if [[ -n "$pid" ]] && pglite_health; then
        printf 'running  pid %s  postgresql://127.0.0.1:%s (TimescaleDB on WASM, memory)' "$pid" "$PGLITE_PORT"
        return 0
    fi
    if [[ -n "$pid" ]]; then printf 'unhealthy  pid %s, port %s not answering' "$pid" "$PGLITE_PORT"; return 1; fi
    foreign_status pglite "$PGLITE_PORT" pglite_health && return 0
    printf 'stopped'
    return 1
}

# pglite_modules <log>: node_modules installed from the lock file (again when it changed).
pglite_modules() {
    local log="$1" want stamp="$PGLITE_DIR/node_modules/.sledfleet-lock.sha256"
    want="$(sha256sum "$PGLITE_DIR/package-lock.json" | cut -d' ' -f1)"
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && return 0
    command -v npm >/dev/null 2>&1 || fail pglite "npm not found (services/bootstrap installs nodejs and npm)" "$log"
    say "installing the pinned pglite npm packages (npm ci)"
    (cd "$PGLITE_DIR" && npm ci --no-audit --no-fund --loglevel=error) >>"$log" 2>&1 ||
        fail pglite "npm ci failed in services/pglite (npm registry unreachable?)" "$log"
    printf '%s\n' "$want" >"$stamp"
}

pglite_start() {
    local dir log pid node
    dir="$(svc_dir pglite)"
    mkdir -p "$dir"
    log="$dir/pglite.log"
    pid="$(read_pid pglite)"
    if [[ -n "$pid" ]] && pglite_health; then
        say "pglite already running (pid $pid, 127.0.0.1:$PGLITE_PORT)"
        return 0
    fi
    [[ -z "$pid" ]] || kill_group "$pid" "$STOP_TIMEOUT_S" || true
    reuse_foreign pglite "$PGLITE_PORT" pglite_health && return 0
    if port_open "$PGLITE_PORT"; then
        fail pglite "port $PGLITE_PORT already in use by $(port_owner "$PGLITE_PORT")" "$log"
    fi
    node="$(command -v node || true)"
    [[ -n "$node" ]] || fail pglite "Node.js not found (services/bootstrap installs nodejs)" "$log"
    pglite_modules "$dir/npm.log"
    printf -- '--- %s starting pglite on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$PGLITE_PORT" >>"$log"
    spawn pglite "$log" env SLEDFLEET_PGLITE_PORT="$PGLITE_PORT" "$node" "$PGLITE_DIR/server.mjs"
    pid="$SPAWNED_PID"
    await_spawned pglite "$pid" pglite_health "$log" 'Error|error|cannot' "$PGLITE_PORT"
    say "pglite started (pid $pid, 127.0.0.1:$PGLITE_PORT, TimescaleDB on WASM)"
}

pglite_stop() {
    stop_spawned pglite "$PGLITE_PORT"
}
