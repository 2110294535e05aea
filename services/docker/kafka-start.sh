#!/bin/bash
# docker-compose kafka: format the KRaft log once WITH the SCRAM users, then run the image's
# own entrypoint (its format step skips an already formatted log).
#
# Passwords come from this container's env file (secrets/env/kafka.env) only. They reach the
# format tool through a 0600 java @argfile, never argv (no `kafka-storage.sh -S ...` in ps).
# The healthcheck's client config (/tmp/sledfleet-health.properties, 0600) logs in as admin.
set -euo pipefail
umask 077
data="${KAFKA_LOG_DIRS:-/var/lib/kafka/data}"
users=(controller admin bridge worker sink)
for user in "${users[@]}"; do
    var="SCRAM_${user^^}_PASSWORD"
    [[ -n "${!var:-}" ]] || { echo "kafka-start: $var is not set (secrets/env/kafka.env)" >&2; exit 1; }
done
cat >/tmp/sledfleet-health.properties <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${SCRAM_ADMIN_PASSWORD}";
PROPS
if [[ ! -f "$data/meta.properties" ]]; then
    mkdir -p "$data"
    cat >/tmp/sledfleet-format.properties <<PROPS
process.roles=broker,controller
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS}
controller.listener.names=CONTROLLER
listeners=CONTROLLER://:9093
log.dirs=$data
PROPS
    {
        printf '%s\n' kafka.tools.StorageTool format -t "$CLUSTER_ID" -c /tmp/sledfleet-format.properties
        for user in "${users[@]}"; do
            var="SCRAM_${user^^}_PASSWORD"
            printf -- '-S\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$user" "${!var}"
        done
    } >/tmp/sledfleet-format.args
    java -cp '/opt/kafka/libs/*' @/tmp/sledfleet-format.args
    rm -f /tmp/sledfleet-format.args
fi
for user in "${users[@]}"; do unset "SCRAM_${user^^}_PASSWORD"; done # not in the broker's env
exec /etc/kafka/docker/run
