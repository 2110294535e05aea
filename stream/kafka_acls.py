"""Kafka ACLs of the secure deployment: one SCRAM user per role, least privilege.

``acl_table`` is pure data (unit-tested, printed by ``sledfleet topics acls --print``);
``apply_acls`` creates the bindings as the admin user (idempotent: Kafka keeps one copy of a
binding). The broker runs the StandardAuthorizer with ``allow.everyone.if.no.acl.found=false``:
whatever is not listed here is denied (docs/security.md).

- bridge: write the machine topic and dead letters;
- worker: read the machine topic, prescriptions, clinics and its own sessions; write the
  output, events, state and dead-letter topics; everything on its own ``<app id>-*`` topics
  (changelogs, repartition, leader); read its consumer group;
- sink: read the output, prescriptions, events, state and dead-letter topics; write dead
  letters; read its consumer group;
- admin: super user (topics, ACLs, ``prescribe``, clinic publishing).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from edge import contract
from edge.settings import KafkaSettings, load

log = logging.getLogger(__name__)

OUTPUTS: Final = (
    contract.KAFKA_REPS,
    contract.KAFKA_SETS,
    contract.KAFKA_SESSIONS,
    contract.KAFKA_ADHERENCE,
    contract.KAFKA_ALERTS,
    contract.KAFKA_MACHINE_STATUS,
)


@dataclass(frozen=True, slots=True)
class Grant:
    """ALLOW ``operation`` on a ``resource`` (topic|group) named ``name`` (literal or prefix)."""

    user: str
    operation: str  # READ | WRITE | DESCRIBE | ALL
    resource: str  # topic | group
    name: str
    prefixed: bool = False


def acl_table(
    prefix: str = "",
    worker_app_id: str = "sledfleet-stream",
    sink_group: str = "sledfleet-sink",
    users: tuple[str, str, str] = ("bridge", "worker", "sink"),
) -> list[Grant]:
    """Every grant for a deployment whose topics carry ``prefix`` (tests: ``t<id>.``).

    ``worker_app_id`` is the Faust app id without the prefix (its consumer group and the
    first part of its internal topics' names, ``effective_app_id``)."""
    bridge, worker, sink = users
    machine = prefix + contract.KAFKA_TELEMETRY
    dead = prefix + contract.KAFKA_DEADLETTER
    events, state = prefix + contract.KAFKA_EVENTS, prefix + contract.KAFKA_STATE
    prescriptions = prefix + contract.KAFKA_PRESCRIPTIONS
    app_id = prefix + worker_app_id
    outputs = [prefix + name for name in OUTPUTS]
    return [
        Grant(bridge, "WRITE", "topic", machine),
        Grant(bridge, "WRITE", "topic", dead),
        *(
            Grant(worker, "READ", "topic", name)
            for name in (
                machine,
                prescriptions,
                prefix + contract.KAFKA_CLINICS,
                prefix + contract.KAFKA_SESSIONS,
            )
        ),
        *(Grant(worker, "WRITE", "topic", name) for name in (*outputs, events, state, dead)),
        Grant(worker, "ALL", "topic", f"{app_id}-", prefixed=True),
        Grant(worker, "READ", "group", app_id),
        *(
            Grant(sink, "READ", "topic", name)
            for name in (*outputs, prescriptions, events, state, dead)
        ),
        Grant(sink, "WRITE", "topic", dead),
        Grant(sink, "READ", "group", sink_group),
    ]


def _binding(grant: Grant) -> Any:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    pattern = ResourcePattern(
        ResourceType.TOPIC if grant.resource == "topic" else ResourceType.GROUP,
        grant.name,
        ACLResourcePatternType.PREFIXED if grant.prefixed else ACLResourcePatternType.LITERAL,
    )
    return ACL(
        principal=f"User:{grant.user}",
        host="*",
        operation=getattr(ACLOperation, grant.operation),
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=pattern,
    )


def _key(acl: Any) -> tuple[str, str, str, str, str]:
    pattern = acl.resource_pattern
    return (
        str(acl.principal),
        acl.operation.name,
        pattern.resource_type.name,
        str(pattern.resource_name),
        pattern.pattern_type.name,
    )


def _missing(admin: Any, wanted: list[Any]) -> int:
    """How many of ``wanted`` bindings the broker's authorizer does not show yet."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    everything = ACLFilter(
        principal=None,
        host="*",
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    shown, _error = admin.describe_acls(everything)
    have = {_key(a) for a in shown}
    return sum(1 for acl in wanted if _key(acl) not in have)


def apply_acls(kafka: KafkaSettings, grants: list[Grant], timeout_s: float = 60.0) -> int:
    """Create ``grants`` on the cluster as ``kafka``'s user (the admin) and wait until the
    broker's authorizer shows all of them (the controller commits first, the broker applies
    the metadata a moment later); returns how many. RuntimeError names the first binding the
    broker refused, or says how many were still missing at the deadline."""
    from kafka.admin import KafkaAdminClient

    bindings = [_binding(g) for g in grants]
    admin = KafkaAdminClient(
        bootstrap_servers=kafka.servers, client_id="sledfleet-acls", **kafka.kafka_python_auth()
    )
    try:
        result = admin.create_acls(bindings)
        failed = result.get("failed") or []
        if failed:
            acl, error = failed[0]
            raise RuntimeError(f"Kafka refused ACL {acl}: {error!r}")
        deadline = time.monotonic() + timeout_s
        while missing := _missing(admin, bindings):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{missing} ACL bindings not in force after {timeout_s:.0f} s")
            time.sleep(0.1)
    finally:
        admin.close()
    return len(bindings)


def _settings() -> tuple[KafkaSettings, str, str]:
    # the two roles' own settings name the group ids (imported here: storage is downstream)
    from storage.sink import SinkSettings
    from stream.app.settings import StreamSettings

    return load(KafkaSettings), load(StreamSettings).app_id, load(SinkSettings).group_id


def register(sub: Any) -> None:
    acls = sub.add_parser("acls", help="create the per-service Kafka ACLs (secure Kafka, as admin)")
    acls.add_argument("--prefix", help="overrides SLEDFLEET_KAFKA_TOPIC_PREFIX")
    acls.add_argument("--print", action="store_true", help="print the grants, change nothing")
    acls.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    kafka, app_id, sink_group = _settings()
    prefix = kafka.topic_prefix if args.prefix is None else args.prefix
    grants = acl_table(prefix, app_id, sink_group)
    if args.print:
        for g in grants:
            kind = "prefix" if g.prefixed else "literal"
            print(f"User:{g.user:<8} ALLOW {g.operation:<8} {g.resource} {kind} {g.name}")
        return 0
    logging.getLogger("kafka").setLevel(logging.WARNING)
    count = apply_acls(kafka, grants)
    print(f"applied {count} ACL bindings for prefix {prefix!r} as {kafka.username or 'anonymous'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stream.kafka_acls")
    sub = parser.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="create the ACLs (as SLEDFLEET_KAFKA_USERNAME)")
    apply.add_argument("--prefix")
    apply.add_argument("--print", action="store_true")
    apply.set_defaults(func=run)
    args = parser.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
