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
