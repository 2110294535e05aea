# shellcheck shell=bash
# Apache Kafka 4.x (KRaft, single node) from Maven Central jars cached outside the clone.

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$SERVICES_DIR/kafka/pom.xml")"
KAFKA_CACHE="${SLEDFLEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sledfleet}/kafka-$KAFKA_VERSION"
KAFKA_LIB="$KAFKA_CACHE/lib"
KAFKA_HEAP="${SLEDFLEET_KAFKA_HEAP:-768m}"

# SCRAM users of the secure Kafka: admin (super user: topics, ACLs, tools) and one per role.
KAFKA_USERS=(admin bridge worker sink)

kafka_secure() { [[ "${SLEDFLEET_KAFKA_SECURE:-0}" == 1 ]]; }

kafka_health() {
    if kafka_secure; then
        # a real SCRAM login as admin, then metadata (stdlib client, no venv needed)
        PYTHONPATH="$REPO_ROOT" python3 -m edge.kafka_login "127.0.0.1:$KAFKA_PORT" admin \
            "$(svc_dir kafka)/secrets/admin.password"
    else
        python3 "$SERVICES_DIR/kafka/ready.py" "$KAFKA_PORT" 3
    fi
}

kafka_status() {
    local pid
    pid="$(read_pid kafka)"
    if [[ -n "$pid" ]] && kafka_health >/dev/null 2>&1; then
        printf 'running  pid %s  127.0.0.1:%s (controller %s)  Kafka %s' \
            "$pid" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_VERSION"
        kafka_secure && printf '  SASL/SCRAM, users in %s/secrets' "$(svc_dir kafka)"
        return 0
    fi
    if [[ -n "$pid" ]]; then printf 'unhealthy  pid %s, no metadata answer on port %s' "$pid" "$KAFKA_PORT"; return 1; fi
    kafka_secure || { foreign_status kafka "$KAFKA_PORT" kafka_health && return 0; }
    printf 'stopped'
    return 1
}

# java_major <java>: major version number (17, 21, ...) or empty.
java_major() {
    "$1" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p'
}

# kafka_jars <log>: make sure the broker jars are in the cache (Maven, once per pom change).
kafka_jars() {
    local log="$1" stamp want
    stamp="$KAFKA_CACHE/pom.sha256"
    want="$(sha256sum "$SERVICES_DIR/kafka/pom.xml" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$KAFKA_LIB" ]]; then
        return 0
    fi
    mkdir -p "$KAFKA_CACHE"
    local rc=0
    (
        # one download at a time, even with parallel starts of private instances
        flock -w 600 8 || exit 3
        if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$KAFKA_LIB" ]]; then exit 0; fi
        command -v mvn >/dev/null 2>&1 || exit 4
        say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_CACHE (once)"
        rm -rf "$KAFKA_CACHE/lib.tmp"
        # SLEDFLEET_MAVEN_ARGS: extra mvn arguments (a settings file with a mirror, say)
        # shellcheck disable=SC2086
        mvn -q -B -Dstyle.color=never ${SLEDFLEET_MAVEN_ARGS:-} -f "$SERVICES_DIR/kafka/pom.xml" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$KAFKA_CACHE/lib.tmp" >>"$log" 2>&1 || exit 5
        ls "$KAFKA_CACHE/lib.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || exit 5
        rm -rf "$KAFKA_LIB"
        mv "$KAFKA_CACHE/lib.tmp" "$KAFKA_LIB"
        printf '%s\n' "$want" >"$stamp"
    ) 8>"$KAFKA_CACHE/.lock" || rc=$?
    case $rc in
        0) return 0 ;;
        3) fail kafka "timed out waiting for another Kafka jar download ($KAFKA_CACHE/.lock)" "$log" ;;
        4) fail kafka "Maven (mvn) not found; services/bootstrap installs it (apt-get install maven)" "$log" ;;
        *)
            local cause
            cause="$(first_cause "$log" '\[ERROR\]')"
            cause="${cause#\[ERROR\] }"
            fail kafka "Maven could not fetch the Kafka $KAFKA_VERSION jars (Maven Central unreachable?)${cause:+: $cause}" "$log"
            ;;
    esac
}

kafka_start() {
    local dir log pid java
    dir="$(svc_dir kafka)"
    mkdir -p "$dir"
    log="$dir/server.log"
    pid="$(read_pid kafka)"
    if [[ -n "$pid" ]] && kafka_health >/dev/null 2>&1; then
        say "kafka already running (pid $pid, 127.0.0.1:$KAFKA_PORT)"
        return 0
    fi
    if [[ -n "$pid" ]]; then
        # Ours but not answering: give a starting broker its deadline, else replace it.
        if wait_until "$START_TIMEOUT_S" "$pid" kafka_health; then
            say "kafka already running (pid $pid, 127.0.0.1:$KAFKA_PORT)"
            return 0
        fi
        kill_group "$pid" "$STOP_TIMEOUT_S" || true
    fi
    # the secure broker is never another run dir's (its credentials are in this one)
    kafka_secure || { reuse_foreign kafka "$KAFKA_PORT" kafka_health && return 0; }
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if port_open "$p"; then
            fail kafka "port $p already in use by $(port_owner "$p")" "$log"
        fi
    done

    java="${SLEDFLEET_JAVA:-$(command -v java || true)}"
    if [[ -z "$java" || ! -x "$java" ]]; then
        fail kafka "Java not found${SLEDFLEET_JAVA:+ at $SLEDFLEET_JAVA}; Kafka 4 needs Java 17+ (services/bootstrap installs openjdk-17-jre-headless)" "$log"
    fi
    local major
    major="$(java_major "$java")"
    if [[ -z "$major" || "$major" -lt 17 ]]; then
        fail kafka "Java ${major:-?} at $java is too old; Kafka 4 needs Java 17+" "$log"
    fi
    kafka_jars "$dir/maven.log"

    local KAFKA_DATA="$dir/data"
    mkdir -p "$KAFKA_DATA"
    local KAFKA_LISTENERS KAFKA_CONTROLLER_PASSWORD="" mode=plain
    if kafka_secure; then
        mode=secure
        kafka_secrets "$dir" "$log"
        KAFKA_CONTROLLER_PASSWORD="$(cat "$dir/secrets/controller.password")"
    fi
    KAFKA_LISTENERS="$(cat "$SERVICES_DIR/kafka/$mode.properties.in")"
    (
        umask 077 # the secure file holds the controller's password
        render "$SERVICES_DIR/kafka/server.properties.in" "$dir/server.properties" \
            KAFKA_LISTENERS KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_DATA KAFKA_CONTROLLER_PASSWORD
    )
    local -a jvm=(-Xms256m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -Djava.awt.headless=true "-Dkafka.logs.dir=$dir"
        "-Dlog4j2.configurationFile=$SERVICES_DIR/kafka/log4j2.xml"
        -cp "$KAFKA_LIB/*")
    if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
        local cluster_id
        # never a leading "-" (1 in 64 ids): the format tool would read it as an option
        cluster_id="$(python3 -c 'import base64,uuid
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)')"
        # The tool and its arguments go in a 0600 java @argfile: the SCRAM passwords are
        # never in argv (ps shows only "@.../format.args").
        (
            umask 077
            printf '%s\n' kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
                >"$dir/format.args"
            if kafka_secure; then
                local user
                for user in controller "${KAFKA_USERS[@]}"; do
                    printf -- '-S\nSCRAM-SHA-512=[name=%s,password=%s]\n' \
                        "$user" "$(cat "$dir/secrets/$user.password")" >>"$dir/format.args"
                done
            fi
        )
        local frc=0
        "$java" "${jvm[@]}" "@$dir/format.args" >>"$dir/format.log" 2>&1 || frc=$?
        rm -f "$dir/format.args"
        ((frc == 0)) ||
            fail kafka "formatting the KRaft storage failed: $(tail_cause "$dir/format.log" '.')" "$dir/format.log"
    fi
    printf -- '--- %s starting Kafka %s on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$KAFKA_VERSION" "$KAFKA_PORT" >>"$dir/stdout.log"
    spawn kafka "$dir/stdout.log" "$java" "${jvm[@]}" kafka.Kafka "$dir/server.properties"
    pid="$SPAWNED_PID"
    local rc=0
    wait_until "$START_TIMEOUT_S" "$pid" kafka_health || rc=$?
    if ((rc != 0)); then
        local cause
        cause="$(tail_cause "$log" ' (ERROR|FATAL) ')"
        [[ -n "$cause" ]] || cause="$(tail_cause "$dir/stdout.log" 'Error|Exception')"
        if ((rc == 1)); then
            fail kafka "exited during startup${cause:+: ${cause#*] }}" "$log"
        fi
        kill_group "$pid" 10 || true
        fail kafka "no metadata answer on 127.0.0.1:$KAFKA_PORT after ${START_TIMEOUT_S}s${cause:+: ${cause#*] }}" "$log"
    fi
    kafka_secure && kafka_acls "$dir"
    say "kafka started (pid $pid, 127.0.0.1:$KAFKA_PORT, Kafka $KAFKA_VERSION${KAFKA_LISTENERS:+, $mode})"
}

# kafka_secrets <dir> <log>: one generated password per SCRAM user (and the controller's
# PLAIN password) in <dir>/secrets/<user>.password (0600), plus <user>.env files a role can
# source (SLEDFLEET_KAFKA_* with a PASSWORD_FILE, no password in them). Kept across restarts:
# the credentials are in the formatted metadata log.
kafka_secrets() {
    local dir="$1" log="$2" user
    for user in controller "${KAFKA_USERS[@]}"; do
        if [[ -f "$dir/data/meta.properties" && ! -s "$dir/secrets/$user.password" ]]; then
            fail kafka "$dir/secrets/$user.password is gone but the log holds its SCRAM user; remove $dir to start afresh" "$log"
        fi
    done
    (
        umask 077
        mkdir -p "$dir/secrets"
        chmod 700 "$dir/secrets"
        for user in controller "${KAFKA_USERS[@]}"; do
            if [[ ! -s "$dir/secrets/$user.password" ]]; then
                python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$dir/secrets/$user.password"
            fi
            [[ "$user" == controller ]] && continue
            printf '%s\n' "SLEDFLEET_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT" \
                SLEDFLEET_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT \
                SLEDFLEET_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
                "SLEDFLEET_KAFKA_USERNAME=$user" \
                "SLEDFLEET_KAFKA_PASSWORD_FILE=$dir/secrets/$user.password" >"$dir/secrets/$user.env"
        done
    ) >>"$log" 2>&1 || fail kafka "could not write the SCRAM passwords into $dir/secrets" "$log"
}

# kafka_acls <dir>: the per-service ACLs (stream/kafka_acls.py) for SLEDFLEET_KAFKA_TOPIC_PREFIX,
# applied as admin with the project's venv (idempotent: existing bindings are kept).
kafka_acls() {
    local dir="$1" py
    py="$(venv_python)"
    (
        set -a
        # shellcheck source=/dev/null
        source "$dir/secrets/admin.env"
        set +a
        cd "$REPO_ROOT" && "$py" -m stream.kafka_acls apply
    ) >>"$dir/acls.log" 2>&1 ||
        fail kafka "applying the per-service ACLs failed: $(tail -1 "$dir/acls.log")" "$dir/acls.log"
}

kafka_stop() {
    stop_spawned kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
}
