# shellcheck shell=bash
# Rehearsal hosts (network namespaces) removed by name prefix: the shell backstop behind
# rehearsal/netns.py's own teardown, so `services/rehearse --teardown` works even when
# Python cannot start. Every namespace named <prefix>-*: its processes are killed (by the
# pids `ip netns pids` lists), the namespace deleted (its veth ends and bridge go with it),
# its /etc/netns/<name> files and the rehearsal's scratch dir removed.

# netns_list <prefix>: namespace names starting with <prefix>-
netns_list() {
    ip netns list 2>/dev/null | awk -v p="$1-" 'index($1, p) == 1 { print $1 }'
}

# netns_teardown <prefix>: remove everything named <prefix>-*; prints what it removed.
netns_teardown() {
    local prefix="$1" ns pid n=0
    [[ -n "$prefix" && "$prefix" != *-* ]] || { echo "netns_teardown: bad prefix '$prefix'" >&2; return 2; }
    for ns in $(netns_list "$prefix"); do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            local pids
            pids="$(ip netns pids "$ns" 2>/dev/null || true)"
            [[ -n "$pids" ]] || break
            for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
            sleep 0.2
        done
        ip netns del "$ns" 2>/dev/null || true
        n=$((n + 1))
    done
    rm -rf "/etc/netns/$prefix-"* "/var/tmp/sledfleet-rehearse-$prefix"
    ((n == 0)) || printf 'sledfleet rehearse: removed %d namespaces named %s-*\n' "$n" "$prefix"
    [[ -z "$(netns_list "$prefix")" ]]
}
