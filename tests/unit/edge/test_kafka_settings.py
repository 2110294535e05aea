"""KafkaSettings' security fields and the client configurations built from them (issue #13):
every client library gets the same user, mechanism and protocol; a misconfiguration is one
ConfigError line naming the variable; the password never prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.settings import ConfigError, KafkaSettings, load

SASL = {
    "SLEDFLEET_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "SLEDFLEET_KAFKA_USERNAME": "bridge",
    "SLEDFLEET_KAFKA_PASSWORD": "pw-123",
}


def test_plaintext_by_default_adds_nothing() -> None:
    kafka = load(KafkaSettings, {})
    assert not kafka.sasl
    assert kafka.kafka_python_auth() == {}
    assert kafka.librdkafka_auth() == {}
    assert kafka.aiokafka_auth() == {}


def test_sasl_settings_reach_every_client_library() -> None:
    kafka = load(KafkaSettings, SASL)
    assert kafka.kafka_python_auth() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "bridge",
        "sasl_plain_password": "pw-123",
    }
    assert kafka.librdkafka_auth() == {
        "security.protocol": "sasl_plaintext",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "bridge",
        "sasl.password": "pw-123",
    }
    assert kafka.aiokafka_auth()["ssl_context"] is None
    assert "pw-123" not in repr(kafka)


def test_sasl_ssl_uses_the_ca_file(tmp_path: Path) -> None:
    kafka = load(
        KafkaSettings,
        {**SASL, "SLEDFLEET_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLEDFLEET_KAFKA_CA_FILE": "/ca"},
    )
    assert kafka.kafka_python_auth()["ssl_cafile"] == "/ca"
    assert kafka.librdkafka_auth()["ssl.ca.location"] == "/ca"


def test_password_file_is_read_when_no_password_is_set(tmp_path: Path) -> None:
    secret = tmp_path / "bridge.password"
    secret.write_text("from-file\n")
    env = {**SASL, "SLEDFLEET_KAFKA_PASSWORD": "", "SLEDFLEET_KAFKA_PASSWORD_FILE": str(secret)}
    assert load(KafkaSettings, env).sasl_password().reveal() == "from-file"
    secret.write_text("change-me-kafka-bridge\n")
    with pytest.raises(ConfigError, match="SLEDFLEET_KAFKA_PASSWORD_FILE") as info:
        load(KafkaSettings, env).sasl_password()
    assert "change-me-kafka-bridge" not in str(info.value)
    missing = {**env, "SLEDFLEET_KAFKA_PASSWORD_FILE": str(tmp_path / "nope")}
    with pytest.raises(ConfigError, match="cannot read"):
        load(KafkaSettings, missing).kafka_python_auth()


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({**SASL, "SLEDFLEET_KAFKA_SECURITY_PROTOCOL": "SSL"}, "SECURITY_PROTOCOL"),
        ({**SASL, "SLEDFLEET_KAFKA_SASL_MECHANISM": "PLAIN"}, "SASL_MECHANISM"),
        ({**SASL, "SLEDFLEET_KAFKA_USERNAME": ""}, "USERNAME"),
    ],
)
def test_misconfiguration_is_one_config_error(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError, match=f"SLEDFLEET_KAFKA_{setting}"):
        load(KafkaSettings, env)


def test_empty_password_is_refused_when_a_client_is_built() -> None:
    kafka = load(KafkaSettings, {**SASL, "SLEDFLEET_KAFKA_PASSWORD": ""})
    with pytest.raises(ConfigError, match="SLEDFLEET_KAFKA_PASSWORD: is empty"):
        kafka.kafka_python_auth()
