"""``sledfleet demo --secure``: the demo on a private secure-mode Mosquitto (docs/security.md).

A broker of its own (``services/start mosquitto`` with ``SLEDFLEET_MQTT_SECURE=1``, a run
dir under the demo's work dir, free ports): devices on the TLS listener only, each machine
provisioned with ``edge.devices`` (a generated password kept in memory, never written or
logged), the bridge on the loopback listener as the ``sledfleet-bridge`` service account
with the device registry check on. Stopped, with its run dir, when the demo ends.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboards.demo.processes import free_port
from edge import devices
from edge.settings import MqttSettings, Secret

log = logging.getLogger(__name__)

SERVICE_USER = "sledfleet-bridge"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SecureBroker:
    run_dir: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    service_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    _device_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def broker_dir(self) -> Path:
        return self.run_dir / "mosquitto"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SLEDFLEET_RUN_DIR": str(self.run_dir),
            "SLEDFLEET_MQTT_PORT": str(self.port),
            "SLEDFLEET_MQTTS_PORT": str(self.tls_port),
            "SLEDFLEET_MQTT_SECURE": "1",
            "SLEDFLEET_MQTT_USERNAME": SERVICE_USER,
            "SLEDFLEET_MQTT_PASSWORD": self.service_password,
        }

    def start(self) -> SecureBroker:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o755)  # the broker drops to the mosquitto user
        script = REPO_ROOT / "services" / "start"
        subprocess.run([str(script), "mosquitto"], env=self._env(), check=True, timeout=240)
        log.info("secure broker: 127.0.0.1:%d (services), TLS %d", self.port, self.tls_port)
        return self

    def stop(self) -> None:
        script = REPO_ROOT / "services" / "stop"
        subprocess.run([str(script), "mosquitto"], env=self._env(), check=False, timeout=120)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def provision(self, machines: list[tuple[str, str]]) -> None:
        """Device accounts for (clinic, machine) pairs not provisioned yet; one reload."""
        new = [(c, m) for c, m in machines if m not in self._device_passwords]
        for clinic, machine in new:
            password = devices.generate_password()
            devices.add_device(self.broker_dir, clinic, machine, password)
            self._device_passwords[machine] = password
        if new:
            devices.reload_broker(self.broker_dir)

    def bridge_env(self) -> dict[str, str]:
        return {
            "SLEDFLEET_MQTT_PORT": str(self.port),
            "SLEDFLEET_MQTT_USERNAME": SERVICE_USER,
            "SLEDFLEET_MQTT_PASSWORD": self.service_password,
            "SLEDFLEET_BRIDGE_REGISTRY_FILE": str(self.broker_dir / devices.REGISTRY_FILE),
        }

    def device_settings(self, machine_id: str, base: MqttSettings) -> MqttSettings:
        """The agent's connection: TLS port, project CA, its own account."""
        return MqttSettings(
            host="127.0.0.1",
            port=self.tls_port,
            keepalive_s=base.keepalive_s,
            max_inflight=base.max_inflight,
            tls=True,
            ca_file=str(self.broker_dir / "tls" / "ca.crt"),
            username=machine_id,
            password=Secret(self._device_passwords[machine_id]),
        )

    def summary(self) -> dict[str, Any]:
        """What the run used (no secrets): accounts, listeners, what the broker logged."""
        log_text = (self.broker_dir / "mosquitto.log").read_text(errors="replace")
        tls_logins = sum(
            1
            for line in log_text.splitlines()
            if "New client connected" in line and f"u'{SERVICE_USER}'" not in line
        )
        return {
            "devices": len(self._device_passwords),
            "tls_port": self.tls_port,
            "device_logins": tls_logins,
            "registry": sorted(devices.load_accounts(self.broker_dir)),
        }

    def mqtt_for(self, base: MqttSettings) -> Any:
        return lambda settings: self.device_settings(settings.machine_id, base)
