"""Typed settings read from the environment, once per process.

Every SledFleet process reads its configuration here: one frozen dataclass per
concern, each field naming its environment variable and a default that works on
a laptop with the stack from ``services/start``. Secrets are ``Secret`` values
that never print. Stdlib only (the edge agent installs with paho-mqtt alone).
"""

from __future__ import annotations

import os
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


def _coerce(default: Any, raw: str, name: str) -> Any:
    try:
        if isinstance(default, Secret):
            return Secret(raw)
        if isinstance(default, bool):
            if raw.lower() not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return raw.lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a valid value") from exc
    return raw


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


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    bootstrap: str = env("SLEDFLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    topic_prefix: str = env("SLEDFLEET_KAFKA_TOPIC_PREFIX", "")
    """Prepended to every contract topic name; tests use it to isolate themselves."""

    @property
    def servers(self) -> list[str]:
        """``bootstrap`` as a list of ``host:port`` (it may name several brokers)."""
        return [s.strip() for s in self.bootstrap.split(",") if s.strip()]


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    dsn: Secret = env(
        "SLEDFLEET_DATABASE_URL",
        Secret("postgresql://sledfleet:sledfleet@127.0.0.1:5433/sledfleet"),
    )
