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
    if [[ ! -s "$dir/passwd" ]]; then
        [[ -n "$password" ]] || fail mosquitto "secure mode needs SLEDFLEET_MQTT_PASSWORD for the first service account" "$log"
        : >"$dir/passwd"
        chmod 600 "$dir/passwd"
        mosquitto_passwd -b "$dir/passwd" "$user" "$password" >>"$log" 2>&1 ||
            fail mosquitto "mosquitto_passwd could not create $dir/passwd" "$log"
    fi
    if [[ ! -s "$dir/tls/server.crt" ]]; then
        mkdir -p "$dir/tls"
        (
            cd "$dir/tls"
            openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=SledFleet dev CA" \
                -keyout ca.key -out ca.crt &&
                openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
                    -keyout server.key -out server.csr &&
                printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext &&
                openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                    -days 825 -extfile san.ext -out server.crt
        ) >>"$log" 2>&1 || fail mosquitto "openssl could not create the TLS certificates" "$log"
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

    local MQTT_USER MQTT_DIR MQTT_ANONYMOUS ACL_FILE
    MQTT_USER="$(id -un)"
    MQTT_DIR="$dir"
    MQTT_ANONYMOUS=true
    ACL_FILE="$SERVICES_DIR/mosquitto/acl"
    if [[ "${SLEDFLEET_MQTT_SECURE:-0}" == 1 ]]; then
        MQTT_ANONYMOUS=false
        if port_open "$MQTTS_PORT"; then
            fail mosquitto "TLS port $MQTTS_PORT already in use by $(port_owner "$MQTTS_PORT")" "$log"
        fi
        mosquitto_secure_files "$dir" "$log"
    fi
    render "$SERVICES_DIR/mosquitto/mosquitto.conf.in" "$conf" MQTT_USER MQTT_PORT MQTT_DIR MQTT_ANONYMOUS
    if [[ "${SLEDFLEET_MQTT_SECURE:-0}" == 1 ]]; then
        render "$SERVICES_DIR/mosquitto/secure.conf.in" "$conf.secure" MQTT_DIR MQTTS_PORT ACL_FILE
        cat "$conf.secure" >>"$conf"
        rm -f "$conf.secure"
    fi
    printf -- '--- %s starting mosquitto on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$MQTT_PORT" >>"$log"
    spawn mosquitto "$log" "$bin" -c "$conf"
    pid="$SPAWNED_PID"
    await_spawned mosquitto "$pid" mosquitto_health "$log" 'Error|error' "$MQTT_PORT"
    say "mosquitto started (pid $pid, 127.0.0.1:$MQTT_PORT)"
}

mosquitto_stop() {
    stop_spawned mosquitto "$MQTT_PORT"
}
