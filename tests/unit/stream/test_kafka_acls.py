"""The per-service Kafka ACL table (issue #13): least privilege per role, all names under
the deployment's prefix. The broker's enforcement is tested in
tests/integration/test_security_kafka.py."""

from __future__ import annotations

from edge import contract
from edge.settings import KafkaSettings
from stream.bridge.kafka_confluent import confluent_config
from stream.bridge.kafka_out import producer_config
from stream.bridge.settings import BridgeSettings
from stream.kafka_acls import OUTPUTS, Grant, acl_table


def _of(grants: list[Grant], user: str) -> set[tuple[str, str, str, bool]]:
    return {(g.operation, g.resource, g.name, g.prefixed) for g in grants if g.user == user}


def test_bridge_writes_only_the_machine_topic_and_dead_letters() -> None:
    grants = acl_table("p.")
    assert _of(grants, "bridge") == {
        ("WRITE", "topic", "p." + contract.KAFKA_TELEMETRY, False),
        ("WRITE", "topic", "p." + contract.KAFKA_DEADLETTER, False),
    }


def test_sink_reads_outputs_and_never_writes_the_machine_topic() -> None:
    sink = _of(acl_table("p.", sink_group="p.sink"), "sink")
    for name in OUTPUTS:
        assert ("READ", "topic", "p." + name, False) in sink
    assert ("READ", "group", "p.sink", False) in sink
    writes = {name for op, kind, name, _ in sink if op in {"WRITE", "ALL"}}
    assert writes == {"p." + contract.KAFKA_DEADLETTER}
    assert all(not prefixed for *_, prefixed in sink)


def test_worker_owns_only_its_own_internal_topics_and_group() -> None:
    worker = _of(acl_table("p.", worker_app_id="w"), "worker")
    assert ("ALL", "topic", "p.w-", True) in worker
    assert ("READ", "group", "p.w", False) in worker
    assert ("READ", "topic", "p." + contract.KAFKA_TELEMETRY, False) in worker
    assert ("WRITE", "topic", "p." + contract.KAFKA_TELEMETRY, False) not in worker
    assert [g for g in worker if g[3]] == [("ALL", "topic", "p.w-", True)]


def test_every_grant_names_the_prefix_and_no_wildcards() -> None:
    for g in acl_table("p.", "app", "p.g"):
        assert g.name.startswith("p.")
        assert "*" not in g.name
        assert g.user in {"bridge", "worker", "sink"}


def test_bridge_producers_carry_the_credentials() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", username="bridge", password="x")
    assert producer_config(kafka, BridgeSettings(), "b")["sasl_plain_username"] == "bridge"
    assert confluent_config(kafka, BridgeSettings(), "b")["sasl.username"] == "bridge"
