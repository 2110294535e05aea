# shellcheck shell=bash
# Mosquitto (Debian package), run in the foreground of its own session with a pid file.

mosquitto_health() { port_open "$MQTT_PORT"; }

mosquitto_status() {
    local pid
    pid="$(read_pid mosquitto)"
    if [[ -n "$pid" ]] && mosquitto_health; then
        printf 'running  pid %s  mqtt://127.0.0.1:%s' "$pid" "$MQTT_PORT"
        [[ "${SLEDFLEET_MQTT_SECURE:-0}" == 1 ]] && printf '  mqtts://127.0.0.1:%s' "$MQTTS_PORT"
        return 0
    fi
    if [[ -n "$pid" ]]; then printf 'unhealthy  pid %s, port %s not answering' "$pid" "$MQTT_PORT"; return 1; fi
    foreign_status mosquitto "$MQTT_PORT" mosquitto_health && return 0
    printf 'stopped'
    return 1
}

mosquitto_secure_files() {
    local dir="$1" log="$2"
    local user="${SLEDFLEET_MQTT_USERNAME:-sledfleet-bridge}"
    local password="${SLEDFLEET_MQTT_PASSWORD:-}"
    if [[ ! -s "$dir/accounts.json" ]] || ! grep -q "\"$user\"" "$dir/accounts.json"; then
        [[ -n "$password" ]] || fail mosquitto "secure mode needs SLEDFLEET_MQTT_PASSWORD for the first service account" "$log"
        # the password goes through stdin (printf is a shell builtin): never in argv or ps
        printf '%s\n' "$password" | (cd "$REPO_ROOT" && python3 -m edge.devices service "$dir" "$user") >>"$log" 2>&1 ||
            fail mosquitto "could not create the service account $user ($(tail -1 "$log"))" "$log"
    fi
    if [[ ! -s "$dir/tls/server.crt" ]]; then
        mkdir -p "$dir/tls"
        (
            cd "$dir/tls"
            umask 077
            openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=SledFleet dev CA" \
                -keyout ca.key -out ca.crt &&
                openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
                    -keyout server.key -out server.csr &&
                printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext &&
                openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                    -days 825 -extfile san.ext -out server.crt &&
                chmod 644 ca.crt server.crt
        ) >>"$log" 2>&1 || fail mosquitto "openssl could not create the TLS certificates" "$log"
    fi
}

# mosquitto_run_user <dir>: the user the broker runs as. Started as root, never root: the
# Debian package's "mosquitto" user, owning the broker's run dir, when it can reach it.
mosquitto_run_user() {
    local dir="$1"
    if [[ "$(id -u)" != 0 ]] || ! id mosquitto >/dev/null 2>&1; then
        id -un
        return 0
    fi
    chown -R mosquitto: "$dir"
    if runuser -u mosquitto -- test -w "$dir/data" 2>/dev/null; then
        echo mosquitto
    else
        id -un # a run dir the mosquitto user cannot reach (a clone under /root, say)
    fi
}

mosquitto_start() {
    local dir log conf pid
    dir="$(svc_dir mosquitto)"
    mkdir -p "$dir/data"
    log="$dir/mosquitto.log"
    conf="$dir/mosquitto.conf"
    pid="$(read_pid mosquitto)"
    if [[ -n "$pid" ]] && mosquitto_health; then
        say "mosquitto already running (pid $pid, 127.0.0.1:$MQTT_PORT)"
        return 0
    fi
    if [[ -n "$pid" ]]; then
        # our process is alive but not answering: replace it
        kill_group "$pid" "$STOP_TIMEOUT_S" || true
    fi
    reuse_foreign mosquitto "$MQTT_PORT" mosquitto_health && return 0
    if port_open "$MQTT_PORT"; then
        fail mosquitto "port $MQTT_PORT already in use by $(port_owner "$MQTT_PORT")" "$log"
    fi
    command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] ||
        apt_install mosquitto "$log" mosquitto mosquitto-clients
    command -v mosquitto_sub >/dev/null 2>&1 || apt_install mosquitto "$log" mosquitto-clients
    local bin
    bin="$(command -v mosquitto || echo /usr/sbin/mosquitto)"

    local MQTT_USER MQTT_DIR MQTT_PER_LISTENER ACL_FILE mode=dev
    MQTT_DIR="$dir"
    MQTT_PER_LISTENER=false
    ACL_FILE="$SERVICES_DIR/mosquitto/acl"
    if [[ "${SLEDFLEET_MQTT_SECURE:-0}" == 1 ]]; then
        mode=secure
        MQTT_PER_LISTENER=true
        if port_open "$MQTTS_PORT"; then
            fail mosquitto "TLS port $MQTTS_PORT already in use by $(port_owner "$MQTTS_PORT")" "$log"
        fi
        mosquitto_secure_files "$dir" "$log"
    fi
    MQTT_USER="$(mosquitto_run_user "$dir")"
    render "$SERVICES_DIR/mosquitto/mosquitto.conf.in" "$conf" MQTT_USER MQTT_DIR MQTT_PER_LISTENER
    render "$SERVICES_DIR/mosquitto/$mode.conf.in" "$conf.$mode" MQTT_DIR MQTT_PORT MQTTS_PORT ACL_FILE
    cat "$conf.$mode" >>"$conf"
    rm -f "$conf.$mode"
    printf -- '--- %s starting mosquitto on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$MQTT_PORT" >>"$log"
    spawn mosquitto "$log" "$bin" -c "$conf"
    pid="$SPAWNED_PID"
    await_spawned mosquitto "$pid" mosquitto_health "$log" 'Error|error' "$MQTT_PORT"
    say "mosquitto started (pid $pid, 127.0.0.1:$MQTT_PORT)"
}

mosquitto_stop() {
    stop_spawned mosquitto "$MQTT_PORT"
}
