"""PRIVATE Mosquitto, Kafka and PostgreSQL instances for outage and restart tests.

Each instance is started by the project's own ``services/start`` with its own run dir and
free ports (environment overrides), so a test can stop and restart it without touching the
shared servers other tests use::

    with PrivateMosquitto() as broker:          # started
        client.connect(broker.settings.host, broker.settings.port)
        broker.stop()                            # outage: port closed, process gone
        ...
        broker.start()                           # same port, same persistent data
    # stopped, run dir removed

``PrivateKafka().settings`` is a KafkaSettings for its bootstrap (``PrivateSecureKafka``: the
SASL/SCRAM broker, ``settings_for(user)``); ``PrivatePostgres()``
offers ``admin_dsn`` (superuser) and ``dsn`` (database sledfleet as role sledfleet).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.settings import KafkaSettings, MqttSettings, Secret

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = REPO_ROOT / "services"
START_TIMEOUT_S = 240.0
"""Upper bound for one services/start (the scripts have their own readiness deadline)."""
STOP_TIMEOUT_S = 120.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def login(port: int, username: str, password: str, ca_file: Path | None = None) -> bool:
    """One MQTT 5 CONNECT as ``username``: True when the broker accepts it."""
    answer: list[bool] = []
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file))

    def on_connect(_c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        answer.append(not rc.is_failure)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        if not done.wait(20):
            raise AssertionError(f"no CONNACK from 127.0.0.1:{port}")
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


class ServiceError(RuntimeError):
    """services/start or services/stop failed; the message is the script's one-line cause."""


class PrivateServer:
    """One service run by services/start in a private run dir on free ports."""

    service: ClassVar[str]
    port_vars: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        run_dir: Path | None = None,
        ports: dict[str, int] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self._own_run_dir = run_dir is None
        self.extra_env = dict(extra_env or {})
        if run_dir is None:
            # under /tmp and world-traversable, so the postgres OS user can reach its data dir
            run_dir = Path(tempfile.mkdtemp(prefix=f"sledfleet-{self.service}-"))
            run_dir.chmod(0o755)
        self.run_dir = run_dir
        self.ports = dict(ports or {})
        for var in self.port_vars:
            self.ports.setdefault(var, free_port())
        self.running = False

    @property
    def port(self) -> int:
        return self.ports[self.port_vars[0]]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SLEDFLEET_RUN_DIR"] = str(self.run_dir)
        env.update({name: str(port) for name, port in self.ports.items()})
        env.update(self.extra_env)
        return env

    def _run(self, script: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SERVICES / script), self.service],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self) -> PrivateServer:
        result = self._run("start", START_TIMEOUT_S)
        if result.returncode != 0:
            raise ServiceError(result.stderr.strip() or result.stdout.strip())
        self.running = True
        return self

    def stop(self) -> None:
        result = self._run("stop", STOP_TIMEOUT_S)
        if result.returncode != 0:
            raise ServiceError(result.stderr.strip() or result.stdout.strip())
        self.running = False

    def status(self) -> bool:
        result = subprocess.run(
            [str(SERVICES / "status"), self.service],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.returncode == 0

    def wait_port_closed(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while port_open(self.port):
            if time.monotonic() > deadline:
                raise AssertionError(f"port {self.port} still open after {timeout} s")
            time.sleep(0.1)

    def cleanup(self) -> None:
        """Stop (if running) and remove the private run dir and any data kept elsewhere."""
        try:
            self.stop()
        finally:
            location = self.run_dir / "postgres" / "location"
            if location.is_file():
                elsewhere = Path(location.read_text().strip())
                if elsewhere != self.run_dir / "postgres" and elsewhere.parent.name.startswith(
                    "sledfleet-"
                ):
                    shutil.rmtree(elsewhere.parent, ignore_errors=True)
            if self._own_run_dir:
                shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> PrivateServer:
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.cleanup()  # a start that failed late may have left the server running
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


class PrivateMosquitto(PrivateServer):
    """``PrivateMosquitto(extra_env={"SLEDFLEET_MQTT_SECURE": "1", "SLEDFLEET_MQTT_PASSWORD":
    ...})`` runs the production shape: accounts (``add_user``), per-device ACLs, TLS on
    ``tls_port`` with the CA at ``ca_file``."""

    service = "mosquitto"
    port_vars = ("SLEDFLEET_MQTT_PORT", "SLEDFLEET_MQTTS_PORT")

    @property
    def tls_port(self) -> int:
        return self.ports["SLEDFLEET_MQTTS_PORT"]

    @property
    def ca_file(self) -> Path:
        return self.run_dir / "mosquitto" / "tls" / "ca.crt"

    @property
    def broker_dir(self) -> Path:
        return self.run_dir / "mosquitto"

    def device(self, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        """``sledfleet device <args>`` on this broker (the real CLI; password on stdin).
        Returns once the broker was sent SIGHUP; poll for the effect (wait_reloaded)."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge.cli",
                "device",
                "--broker-dir",
                str(self.broker_dir),
                *args,
                *(["--password-stdin"] if password is not None else []),
            ],
            input=f"{password}\n" if password is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=REPO_ROOT,
        )
        if result.returncode != 0:
            raise ServiceError(result.stderr.strip())
        return result

    def add_device(self, clinic: str, machine: str, password: str) -> None:
        """Provision a device (secure mode) and wait until the broker accepts its login."""
        self.device("add", clinic, machine, password=password)
        self.wait_login(machine, password, True)

    def wait_login(self, username: str, password: str, accepted: bool, timeout: float = 30) -> None:
        """Poll the TLS listener until a login of ``username`` is accepted (or refused)."""
        deadline = time.monotonic() + timeout
        while self.try_login(username, password) != accepted:
            if time.monotonic() > deadline:
                raise AssertionError(f"login of {username} never became accepted={accepted}")
            time.sleep(0.1)

    def try_login(self, username: str, password: str) -> bool:
        """One MQTT 5 login on the TLS listener: True when CONNACK says success."""
        return login(self.tls_port, username, password, ca_file=self.ca_file)

    @property
    def settings(self) -> MqttSettings:
        return MqttSettings(host="127.0.0.1", port=self.port)

    def __enter__(self) -> PrivateMosquitto:
        super().__enter__()
        return self


class PrivateKafka(PrivateServer):
    service = "kafka"
    port_vars = ("SLEDFLEET_KAFKA_PORT", "SLEDFLEET_KAFKA_CONTROLLER_PORT")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap=self.bootstrap)

    def __enter__(self) -> PrivateKafka:
        super().__enter__()
        return self


class PrivateSecureKafka(PrivateKafka):
    """``services/start kafka --secure`` in a private run dir: SASL/SCRAM-SHA-512 on
    ``port``, the StandardAuthorizer, one generated password per user (admin, bridge,
    worker, sink) in ``secrets/<user>.password`` (0600), the default ACLs applied."""

    USERS: ClassVar[tuple[str, ...]] = ("admin", "bridge", "worker", "sink")

    def __init__(self, run_dir: Path | None = None, ports: dict[str, int] | None = None) -> None:
        super().__init__(run_dir, ports, extra_env={"SLEDFLEET_KAFKA_SECURE": "1"})

    @property
    def secrets_dir(self) -> Path:
        return self.run_dir / "kafka-secure" / "secrets"

    def password_file(self, user: str) -> Path:
        return self.secrets_dir / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def env_for(self, user: str) -> dict[str, str]:
        """The SLEDFLEET_KAFKA_* variables a role logged in as ``user`` needs (a password
        file, never the password)."""
        return {
            "SLEDFLEET_KAFKA_BOOTSTRAP": self.bootstrap,
            "SLEDFLEET_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "SLEDFLEET_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SLEDFLEET_KAFKA_USERNAME": user,
            "SLEDFLEET_KAFKA_PASSWORD_FILE": str(self.password_file(user)),
        }

    def settings_for(self, user: str, topic_prefix: str = "", password: str = "") -> KafkaSettings:
        return KafkaSettings(
            bootstrap=self.bootstrap,
            topic_prefix=topic_prefix,
            security_protocol="SASL_PLAINTEXT",
            username=user,
            password_file=str(self.password_file(user)),
            password=Secret(password),
        )

    def __enter__(self) -> PrivateSecureKafka:
        super().__enter__()
        return self


class PrivatePostgres(PrivateServer):
    service = "postgres"
    port_vars = ("SLEDFLEET_PG_PORT",)

    @property
    def admin_dsn(self) -> str:
        password = os.environ.get("SLEDFLEET_PG_SUPERUSER_PASSWORD", "postgres")
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        password = os.environ.get("SLEDFLEET_DB_PASSWORD", "sledfleet")
        return f"postgresql://sledfleet:{password}@127.0.0.1:{self.port}/sledfleet"

    def __enter__(self) -> PrivatePostgres:
        super().__enter__()
        return self
