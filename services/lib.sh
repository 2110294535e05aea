# shellcheck shell=bash
# Shared helpers for services/start, services/stop, services/status (sourced, not run).
#
# Layout: every service keeps its data, config, logs and pid file under
#   ${SLEDFLEET_RUN_DIR:-<repo>/.run}/<service>/
# Ports come from the same environment variables the Python settings read, so a test can
# start a PRIVATE instance with another run dir and other ports:
#   SLEDFLEET_RUN_DIR=/tmp/x SLEDFLEET_MQTT_PORT=21883 services/start mosquitto
#
# Failure contract: a service that cannot start prints exactly one line
#   sledfleet services: <svc> failed to start: <cause> (log: <file>)
# on stderr and the script exits 1. Every wait has a deadline; nothing hangs.

set -o errexit -o nounset -o pipefail

SERVICES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SERVICES_DIR/.." && pwd)"
RUN_DIR="${SLEDFLEET_RUN_DIR:-$REPO_ROOT/.run}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"

MQTT_PORT="${SLEDFLEET_MQTT_PORT:-1883}"
MQTTS_PORT="${SLEDFLEET_MQTTS_PORT:-8883}"
# kafka_ports: the secure Kafka (SLEDFLEET_KAFKA_SECURE=1 or --secure) is a SEPARATE broker
# with its own defaults (9192/9193) and run dir (kafka-secure/), beside the shared 9092 one.
kafka_ports() {
    if [[ "${SLEDFLEET_KAFKA_SECURE:-0}" == 1 ]]; then
        KAFKA_PORT="${SLEDFLEET_KAFKA_PORT:-9192}"
        KAFKA_CONTROLLER_PORT="${SLEDFLEET_KAFKA_CONTROLLER_PORT:-9193}"
    else
        KAFKA_PORT="${SLEDFLEET_KAFKA_PORT:-9092}"
        KAFKA_CONTROLLER_PORT="${SLEDFLEET_KAFKA_CONTROLLER_PORT:-9093}"
    fi
}
kafka_ports
PG_PORT="${SLEDFLEET_PG_PORT:-5433}"
PGLITE_PORT="${SLEDFLEET_PGLITE_PORT:-5434}"

DEFAULT_SERVICES=(mosquitto kafka postgres)
ALL_SERVICES=(mosquitto kafka postgres pglite)

# Deadlines (seconds) for readiness and shutdown; generous for a loaded 2-core machine.
START_TIMEOUT_S="${SLEDFLEET_START_TIMEOUT_S:-90}"
STOP_TIMEOUT_S="${SLEDFLEET_STOP_TIMEOUT_S:-30}"

say() { printf 'sledfleet services: %s\n' "$*"; }

# fail <service> <cause> <logfile>: one line on stderr, exit 1.
fail() {
    local svc="$1" cause="$2" log="${3:-}"
    local shown="$log"
    [[ -n "$log" && "$log" == "$REPO_ROOT/"* ]] && shown="${log#"$REPO_ROOT"/}"
    if [[ -n "$log" ]]; then
        printf 'sledfleet services: %s failed to start: %s (log: %s)\n' "$svc" "$cause" "$shown" >&2
    else
        printf 'sledfleet services: %s failed to start: %s\n' "$svc" "$cause" >&2
    fi
    exit 1
}

# svc_name <service>: its run dir name (kafka-secure for the secure Kafka).
svc_name() {
    if [[ "$1" == kafka && "${SLEDFLEET_KAFKA_SECURE:-0}" == 1 ]]; then
        printf 'kafka-secure'
    else
        printf '%s' "$1"
    fi
}
svc_dir() { printf '%s/%s' "$RUN_DIR" "$(svc_name "$1")"; }
pid_file() { printf '%s/%s/%s.pid' "$RUN_DIR" "$(svc_name "$1")" "$(svc_name "$1")"; }

# Parse a service list; "--all" selects every service, nothing selects the defaults.
parse_services() {
    local -a out=()
    local arg
    for arg in "$@"; do
        case "$arg" in
            --all) out=("${ALL_SERVICES[@]}") ;;
            --secure)
                export SLEDFLEET_KAFKA_SECURE=1
                kafka_ports
                ;;
            mosquitto | kafka | postgres | pglite) out+=("$arg") ;;
            -h | --help) return 2 ;;
            *)
                printf 'sledfleet services: unknown service %s (known: %s)\n' "$arg" "${ALL_SERVICES[*]}" >&2
                exit 2
                ;;
        esac
    done
    if ((${#out[@]} == 0)) && [[ "${SLEDFLEET_KAFKA_SECURE:-0}" == 1 && " $* " == *" --secure "* ]]; then
        out=(kafka)
    fi
    ((${#out[@]})) || out=("${DEFAULT_SERVICES[@]}")
    SELECTED=("${out[@]}")
}

# port_open <port>: something accepts TCP connections on 127.0.0.1:<port>.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# port_owner <port>: "name(pid)" of the listener if visible, else "another program".
port_owner() {
    local line
    line="$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 || true)"
    if [[ -n "$line" ]]; then
        line="${line#users:((\"}"
        printf '%s (pid %s)' "${line%%\"*}" "${line##*pid=}"
    else
        printf 'another program'
    fi
}

# port_pid <port>: pid of the process listening on 127.0.0.1:<port>, if visible.
port_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true
}

# foreign_sledfleet <service> <port>: the listener on <port> is that SledFleet service started
# from ANOTHER run dir (another checkout, e.g. CI's fresh clone beside a developer's stack).
# Such a server is reused, never stopped from here. Sets FOREIGN_PID and FOREIGN_CMD.
foreign_sledfleet() {
    local svc="$1" pid cmd
    pid="$(port_pid "$2")"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    case "$svc" in
        mosquitto) [[ "$cmd" == *mosquitto*" -c "*/mosquitto/mosquitto.conf* ]] || return 1 ;;
        kafka) [[ "$cmd" == *kafka.Kafka*/kafka/server.properties* ]] || return 1 ;;
        postgres) [[ "$cmd" == *postgres*" -D "*/postgres/data* ]] || return 1 ;;
        pglite) [[ "$cmd" == *services/pglite/server.mjs* ]] || return 1 ;;
        *) return 1 ;;
    esac
    FOREIGN_PID="$pid"
    FOREIGN_CMD="$cmd"
}

# reuse_foreign <service> <port> <health-function>: 0 (and a note) when the port is served by
# a healthy SledFleet <service> of another run dir.
reuse_foreign() {
    foreign_sledfleet "$1" "$2" || return 1
    "$3" >/dev/null 2>&1 || return 1
    say "$1 already running from another SledFleet run dir (pid $FOREIGN_PID, 127.0.0.1:$2); reusing it"
}

# foreign_status <service> <port> <health-function>: status detail for such a server.
foreign_status() {
    foreign_sledfleet "$1" "$2" || return 1
    "$3" >/dev/null 2>&1 || return 1
    printf 'running  pid %s  127.0.0.1:%s  (started from another run dir; not stopped from here)' "$FOREIGN_PID" "$2"
}

# pid_alive <pid>
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# pid_is <pid> <text>: the process is alive and its command line contains <text> (guards
# against a pid file whose process died and whose pid was reused by something else).
pid_is() {
    pid_alive "$1" || return 1
    [[ -r "/proc/$1/cmdline" ]] || return 0
    [[ "$(tr '\0' ' ' <"/proc/$1/cmdline")" == *"$2"* ]]
}

# read_pid <service>: pid from the pid file when that process is still our server, else empty.
read_pid() {
    local f pid sig
    f="$(pid_file "$1")"
    [[ -f "$f" ]] || return 0
    pid="$(head -1 "$f" 2>/dev/null || true)"
    case "$1" in
        mosquitto) sig="$RUN_DIR/mosquitto/mosquitto.conf" ;;
        kafka) sig="$(svc_dir kafka)/server.properties" ;;
        pglite) sig="pglite/server.mjs" ;;
        *) sig="" ;;
    esac
    if pid_is "$pid" "$sig"; then printf '%s' "$pid"; fi
}

# wait_until <deadline-seconds> <pid-or-empty> <command...>
# Polls the command until it succeeds (0), the process dies (1) or the deadline passes (2).
wait_until() {
    local deadline="$1" pid="$2"
    shift 2
    local end=$((SECONDS + deadline))
    while ((SECONDS < end)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
            # one last look: it may have become ready just before exiting (it should not)
            return 1
        fi
        sleep 0.2
    done
    "$@" >/dev/null 2>&1 && return 0
    return 2
}

# spawn <service> <logfile> <command...>: start the command in its own session (process
# group == pid, so stop can kill the whole group), stdin/stdout/stderr detached from the
# caller, and write the pid file. Sets SPAWNED_PID.
spawn() {
    local svc="$1" log="$2"
    shift 2
    local pf
    pf="$(pid_file "$svc")"
    rm -f "$pf"
    # The inner shell writes its own pid, then execs the server: the pid survives exec.
    # fd 9 (the start/stop lock) is not inherited: the server must not hold the lock.
    setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pf" "$@" </dev/null >>"$log" 2>&1 9>&- &
    local i
    for i in $(seq 1 50); do
        [[ -s "$pf" ]] && break
        sleep 0.05
    done
    SPAWNED_PID="$(head -1 "$pf" 2>/dev/null || true)"
}

# kill_group <pid> <timeout>: TERM the process group, wait, then KILL. 0 when gone.
kill_group() {
    local pid="$1" timeout="$2"
    pid_alive "$pid" || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + timeout))
    while ((SECONDS < end)); do
        pid_alive "$pid" || { group_gone "$pid" && return 0; }
        sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.3
    ! pid_alive "$pid"
}

# stop_spawned <service> <port...>: stop a server started by spawn (its pid file), wait
# until its ports are free, remove the pid file. Returns 1 (with one line) when it cannot.
stop_spawned() {
    local svc="$1" pid p
    shift
    pid="$(read_pid "$svc")"
    if [[ -z "$pid" ]]; then
        rm -f "$(pid_file "$svc")"
        say "$svc not running"
        return 0
    fi
    kill_group "$pid" "$STOP_TIMEOUT_S" || { say "$svc (pid $pid) did not stop"; return 1; }
    for p in "$@"; do
        wait_port_free "$p" 10 || { say "$svc stopped but port $p is still taken"; return 1; }
    done
    rm -f "$(pid_file "$svc")"
    say "$svc stopped"
}

# await_spawned <service> <pid> <health fn> <log> <cause regex> <port>: wait for a spawned
# server to become healthy; otherwise fail with one line (exited, or not listening).
await_spawned() {
    local svc="$1" pid="$2" health="$3" log="$4" cause_re="$5" port="$6" rc=0 cause
    wait_until "$START_TIMEOUT_S" "$pid" "$health" || rc=$?
    ((rc == 0)) && return 0
    cause="$(tail_cause "$log" "$cause_re")"
    ((rc == 1)) && fail "$svc" "exited during startup${cause:+: $cause}" "$log"
    kill_group "$pid" 5 || true
    fail "$svc" "not listening on 127.0.0.1:$port after ${START_TIMEOUT_S}s" "$log"
}

# group_gone <pgid>: no process left in that process group.
group_gone() {
    ! pgrep -g "$1" >/dev/null 2>&1
}

# wait_port_free <port> <timeout>
wait_port_free() {
    local end=$((SECONDS + $2))
    while ((SECONDS < end)); do
        port_open "$1" || return 0
        sleep 0.2
    done
    ! port_open "$1"
}

# tail_cause <logfile> <pattern>: last matching log line, trimmed, for a one-line cause.
tail_cause() {
    local line
    line="$(grep -E "$2" "$1" 2>/dev/null | tail -1 | sed 's/\x1b\[[0-9;]*m//g' | tr -s ' \t' ' ' | cut -c1-200 || true)"
    printf '%s' "$line"
}

# first_cause <logfile> <pattern>: first matching log line, trimmed.
first_cause() {
    local line
    line="$(grep -m1 -E "$2" "$1" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | tr -s ' \t' ' ' | cut -c1-200 || true)"
    printf '%s' "$line"
}

# apt_install <service> <log> <package...>: install Debian packages when missing.
apt_install() {
    local svc="$1" log="$2"
    shift 2
    if [[ "$(id -u)" != 0 ]]; then
        fail "$svc" "packages $* are missing and installing them needs root (sudo apt-get install $*)" ""
    fi
    say "installing $* (Debian packages)"
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    } >>"$log" 2>&1 || fail "$svc" "apt-get install $* failed" "$log"
}

# venv_python: the project's Python if present, else python3.
venv_python() {
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then
        printf '%s' "$REPO_ROOT/.venv/bin/python"
    else
        command -v python3
    fi
}

# render <template> <output> VAR...: replace @VAR@ with the value of shell variable VAR.
render() {
    local tpl="$1" out="$2" content var
    shift 2
    content="$(cat "$tpl")"
    for var in "$@"; do
        content="${content//@${var}@/${!var}}"
    done
    printf '%s\n' "$content" >"$out"
}

# Per-service modules define <svc>_start, <svc>_stop, <svc>_status (status prints a detail and
# returns 0 when healthy).
for _svc_module in "$SERVICES_DIR"/lib/*.sh; do
    # shellcheck source=/dev/null
    source "$_svc_module"
done
unset _svc_module
