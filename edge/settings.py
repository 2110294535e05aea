"""Typed settings read from the environment, once per process.

Every SledFleet process reads its configuration here: one frozen dataclass per
concern, each field naming its environment variable and a default that works on
a laptop with the stack from ``services/start``. Secrets are ``Secret`` values
that never print. Stdlib only (the edge agent installs with paho-mqtt alone).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar


class Secret(str):
    """A string that does not show itself in logs, reprs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('**********')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return "**********" if self else ""


def env(name: str, default: Any) -> Any:
    """Declare a setting read from the environment variable ``name``."""
    return field(default=default, metadata={"env": name})


T = TypeVar("T")


def load(cls: type[T], environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """Build settings ``cls`` from the environment (then explicit overrides)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        name = f.metadata.get("env")
        if name and name in environ:
            values[f.name] = _coerce(f.default, environ[name], name)
    values.update(overrides)
    return cls(**values)


class ConfigError(ValueError):
    """A configuration mistake, told in one line: the setting, the cause and the fix.

    ``sledfleet`` prints ``str(exc)`` alone (no traceback) and exits with status 2."""

    def __init__(self, setting: str, cause: str, fix: str) -> None:
        super().__init__(f"{setting}: {cause}; fix: {fix}")
        self.setting, self.cause, self.fix = setting, cause, fix


MAX_PORT = 65535


def _coerce(default: Any, raw: str, name: str) -> Any:
    if isinstance(default, Secret):
        if "change-me" in raw.lower():  # a template value nobody replaced (issue #13)
            raise ConfigError(
                f"environment variable {name}",
                "is still a change-me placeholder",
                "set a real secret (see docs/security.md)",
            )
        return Secret(raw)
    if isinstance(default, bool):
        if raw.strip().lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
            raise _bad(name, raw, "not a yes/no value", f"set it to 1 or 0 (default {default})")
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        try:
            value = int(raw)
        except ValueError:
            raise _bad(name, raw, "not a whole number", f"set a number like {default}") from None
        if name.endswith("_PORT") and not 0 <= value <= MAX_PORT:
            raise _bad(name, raw, "not a TCP port", f"set a port in 1..{MAX_PORT}")
        return value
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise _bad(name, raw, "not a number", f"set a number like {default}") from None
    return raw


def _bad(name: str, raw: str, cause: str, fix: str) -> ConfigError:
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    return ConfigError(
        f"environment variable {name}", f"{shown!r} is {cause}", f"{fix} or unset it"
    )


def describe(cls: type[Any]) -> list[tuple[str, str]]:
    """(variable, default) pairs for docs and ``--help``."""
    out = []
    for f in fields(cls):
        name = f.metadata.get("env")
        if name:
            out.append((name, str(f.default)))
    return out


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str = env("SLEDFLEET_MQTT_HOST", "127.0.0.1")
    port: int = env("SLEDFLEET_MQTT_PORT", 1883)
    username: str = env("SLEDFLEET_MQTT_USERNAME", "")
    password: Secret = env("SLEDFLEET_MQTT_PASSWORD", Secret(""))
    tls: bool = env("SLEDFLEET_MQTT_TLS", False)
    ca_file: str = env("SLEDFLEET_MQTT_CA_FILE", "")
    cert_file: str = env("SLEDFLEET_MQTT_CERT_FILE", "")
    key_file: str = env("SLEDFLEET_MQTT_KEY_FILE", "")
    keepalive_s: int = env("SLEDFLEET_MQTT_KEEPALIVE_S", 30)
    max_inflight: int = env("SLEDFLEET_MQTT_MAX_INFLIGHT", 1000)


KAFKA_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str = env("SLEDFLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    topic_prefix: str = env("SLEDFLEET_KAFKA_TOPIC_PREFIX", "")
    """Prepended to every contract topic name; tests use it to isolate themselves."""
    security_protocol: str = env("SLEDFLEET_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    """PLAINTEXT (dev), SASL_PLAINTEXT or SASL_SSL (per-service SCRAM users, docs/security.md)."""
    sasl_mechanism: str = env("SLEDFLEET_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    username: str = env("SLEDFLEET_KAFKA_USERNAME", "")
    password: Secret = env("SLEDFLEET_KAFKA_PASSWORD", Secret(""))
    password_file: str = env("SLEDFLEET_KAFKA_PASSWORD_FILE", "")
    """A file holding the password (compose secrets, services/start's secure Kafka);
    read when a client is built, used when SLEDFLEET_KAFKA_PASSWORD is empty."""
    ca_file: str = env("SLEDFLEET_KAFKA_CA_FILE", "")
    """CA bundle for SASL_SSL (empty: the system's trust store)."""

    def __post_init__(self) -> None:
        if self.security_protocol not in KAFKA_PROTOCOLS:
            raise ConfigError(
                "SLEDFLEET_KAFKA_SECURITY_PROTOCOL",
                f"{self.security_protocol!r} is not supported",
                f"use one of {', '.join(KAFKA_PROTOCOLS)}",
            )
        if self.sasl and self.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(
                "SLEDFLEET_KAFKA_SASL_MECHANISM",
                f"{self.sasl_mechanism!r} is not supported",
                f"use one of {', '.join(KAFKA_SASL_MECHANISMS)}",
            )
        if self.sasl and not self.username:
            raise ConfigError(
                "SLEDFLEET_KAFKA_USERNAME",
                f"is empty but SLEDFLEET_KAFKA_SECURITY_PROTOCOL is {self.security_protocol}",
                "set this role's Kafka user (docs/security.md)",
            )

    @property
    def servers(self) -> list[str]:
        """``bootstrap`` as a list of ``host:port`` (it may name several brokers)."""
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]

    @property
    def sasl(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    def sasl_password(self) -> Secret:
        """The password, from SLEDFLEET_KAFKA_PASSWORD or else the password file."""
        if self.password or not self.password_file:
            if not self.password:
                raise ConfigError(
                    "SLEDFLEET_KAFKA_PASSWORD",
                    f"is empty for Kafka user {self.username!r}",
                    "set it or SLEDFLEET_KAFKA_PASSWORD_FILE",
                )
            return Secret(str.__str__(self.password))  # Secret(Secret) would be the mask
        try:
            with open(self.password_file, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError as exc:
            raise ConfigError(
                "SLEDFLEET_KAFKA_PASSWORD_FILE",
                f"cannot read {self.password_file} ({exc.strerror or exc})",
                "point it at the Kafka user's password file",
            ) from None
        if not text or "change-me" in text.lower():
            raise ConfigError(
                "SLEDFLEET_KAFKA_PASSWORD_FILE",
                f"{self.password_file} is empty or a change-me placeholder",
                "write the Kafka user's real password into it",
            )
        return Secret(text)

    def kafka_python_auth(self) -> dict[str, Any]:
        """kafka-python client keyword arguments for the security settings (empty: dev)."""
        if not self.sasl:
            return {}
        out: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.sasl_password().reveal(),
        }
        if self.security_protocol == "SASL_SSL" and self.ca_file:
            out["ssl_cafile"] = self.ca_file
        return out

    def aiokafka_auth(self) -> dict[str, Any]:
        """aiokafka client keyword arguments (Faust's side readers)."""
        out = self.kafka_python_auth()
        if out:
            out.pop("ssl_cafile", None)
            out["ssl_context"] = self.ssl_context()
        return out

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.security_protocol != "SASL_SSL":
            return None
        return ssl.create_default_context(cafile=self.ca_file or None)

    def librdkafka_auth(self) -> dict[str, str]:
        """confluent-kafka (librdkafka) configuration for the security settings."""
        if not self.sasl:
            return {}
        out = {
            "security.protocol": self.security_protocol.lower(),
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.username,
            "sasl.password": self.sasl_password().reveal(),
        }
        if self.security_protocol == "SASL_SSL" and self.ca_file:
            out["ssl.ca.location"] = self.ca_file
        return out


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    dsn: Secret = env(
        "SLEDFLEET_DATABASE_URL",
        Secret("postgresql://sledfleet:sledfleet@127.0.0.1:5433/sledfleet"),
    )
