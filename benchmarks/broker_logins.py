"""Wrong-password logins per second on a private secure-mode Mosquitto, side by side for
password hashes of mosquitto_passwd's default (101 PBKDF2 rounds) and SledFleet's
(edge.devices.HASH_ITERATIONS): the hash cost is what slows a password-guessing client.

Usage: ``nice -n 10 .venv/bin/python benchmarks/broker_logins.py [--attempts 200]``.
Starts and stops its own Mosquitto via ``services/start`` (tests/integration/servers.py).
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from servers import PrivateMosquitto

from edge import devices


def _string(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(2, "big") + data


def connack(port: int, ctx: ssl.SSLContext, user: str, password: str) -> int:
    """One raw MQTT 3.1.1 CONNECT over TLS; the CONNACK return code (5 = not authorised)."""
    body = _string("MQTT") + bytes([4, 0xC2, 0, 30])
    body += _string(f"bench-{uuid.uuid4().hex[:8]}") + _string(user) + _string(password)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(bytes([0x10, len(body)]) + body)
        answer = tls.recv(4)
    return answer[3]


def rate(broker: PrivateMosquitto, user: str, attempts: int) -> float:
    ctx = ssl.create_default_context(cafile=str(broker.ca_file))
    started = time.perf_counter()
    for _ in range(attempts):
        assert connack(broker.tls_port, ctx, user, "wrong-password-guess") == 5
    return attempts / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=200)
    args = parser.parse_args()
    env = {"SLEDFLEET_MQTT_SECURE": "1", "SLEDFLEET_MQTT_PASSWORD": uuid.uuid4().hex}
    with PrivateMosquitto(extra_env=env) as broker:
        secret = uuid.uuid4().hex
        for machine, rounds in (("m-default", 101), ("m-sledfleet", devices.HASH_ITERATIONS)):
            devices.add_device(broker.broker_dir, "c1", machine, secret)
            accounts = devices.load_accounts(broker.broker_dir)
            hashed = devices.hash_password(secret, iterations=rounds)
            accounts[machine] = devices.Account(machine, "device", hashed, "c1", "")
            devices.save_accounts(broker.broker_dir, accounts)
            devices.write_broker_files(broker.broker_dir, accounts)
        devices.reload_broker(broker.broker_dir)
        ctx = ssl.create_default_context(cafile=str(broker.ca_file))
        for machine in ("m-default", "m-sledfleet"):  # both accounts loaded
            while connack(broker.tls_port, ctx, machine, secret) != 0:
                time.sleep(0.05)
        for machine, rounds in (("m-default", 101), ("m-sledfleet", devices.HASH_ITERATIONS)):
            per_s = rate(broker, machine, args.attempts)
            print(f"{rounds:>6} PBKDF2 rounds: {per_s:8.1f} wrong logins/s over TLS (one client)")


if __name__ == "__main__":
    main()
