# shellcheck shell=bash
# Apache Kafka 4.x (KRaft, single node) from Maven Central jars cached outside the clone.

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$SERVICES_DIR/kafka/pom.xml")"
KAFKA_CACHE="${SLEDFLEET_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sledfleet}/kafka-$KAFKA_VERSION"
KAFKA_LIB="$KAFKA_CACHE/lib"
KAFKA_HEAP="${SLEDFLEET_KAFKA_HEAP:-768m}"

kafka_health() { python3 "$SERVICES_DIR/kafka/ready.py" "$KAFKA_PORT" 3; }

kafka_status() {
    local pid
    pid="$(read_pid kafka)"
    if [[ -n "$pid" ]] && kafka_health >/dev/null 2>&1; then
        printf 'running  pid %s  127.0.0.1:%s (controller %s)  Kafka %s' \
            "$pid" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_VERSION"
        return 0
    fi
    if [[ -n "$pid" ]]; then printf 'unhealthy  pid %s, no metadata answer on port %s' "$pid" "$KAFKA_PORT"; return 1; fi
    foreign_status kafka "$KAFKA_PORT" kafka_health && return 0
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
    reuse_foreign kafka "$KAFKA_PORT" kafka_health && return 0
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
    render "$SERVICES_DIR/kafka/server.properties.in" "$dir/server.properties" \
        KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_DATA
    local -a jvm=(-Xms256m "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -Djava.awt.headless=true "-Dkafka.logs.dir=$dir"
        "-Dlog4j2.configurationFile=$SERVICES_DIR/kafka/log4j2.xml"
        -cp "$KAFKA_LIB/*")
    if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
        local cluster_id
        cluster_id="$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
        "$java" "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
            -c "$dir/server.properties" >>"$dir/format.log" 2>&1 ||
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
    say "kafka started (pid $pid, 127.0.0.1:$KAFKA_PORT, Kafka $KAFKA_VERSION)"
}

kafka_stop() {
    stop_spawned kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"
}
