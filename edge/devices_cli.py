"""``sledfleet device add|list|revoke|service``: provision the broker's accounts.

Passwords come from stdin (``--password-stdin``) or are generated and printed once on
stdout; they never appear in argv, the environment of a child process or a log line.
Every change rewrites the broker's files (``edge/devices.py``) and sends the running broker
SIGHUP, so it applies at once, revocations included, without a restart.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import devices
from edge.settings import env, load


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    broker_dir: str = env("SLEDFLEET_MQTT_BROKER_DIR", "")
    """Directory of the broker's accounts and rendered files. Empty: ``$SLEDFLEET_RUN_DIR/
    mosquitto`` (the directory ``services/start mosquitto`` uses), else ``.run/mosquitto``."""

    def resolved(self) -> Path:
        if self.broker_dir:
            return Path(self.broker_dir)
        return Path(os.environ.get("SLEDFLEET_RUN_DIR", ".run")) / "mosquitto"


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=__doc__)
    p.add_argument("--broker-dir", help="broker account directory (SLEDFLEET_MQTT_BROKER_DIR)")
    p.add_argument("--no-reload", action="store_true", help="write the files, do not SIGHUP")
    sub = p.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="create a device account bound to its clinic and machine")
    a.add_argument("clinic_id")
    a.add_argument("machine_id")
    a.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (else one is generated and shown once)",
    )
    a.add_argument("--replace", action="store_true", help="issue a new password")
    a.set_defaults(func=_add)
    sub.add_parser("list", help="list accounts (never hashes)").set_defaults(func=_list)
    r = sub.add_parser("revoke", help="delete an account; connected clients are disconnected")
    r.add_argument("name")
    r.set_defaults(func=_revoke)
    s = sub.add_parser("service", help="create or re-key a service account (sledfleet-*)")
    s.add_argument("name")
    s.add_argument("--password-stdin", action="store_true")
    s.set_defaults(func=_service)


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.broker_dir) if args.broker_dir else load(DeviceSettings).resolved()


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    return devices.generate_password(), True


def _finish(args: argparse.Namespace, what: str) -> int:
    broker_dir = _dir(args)
    if args.no_reload:
        print(f"{what}; broker not reloaded (--no-reload)", file=sys.stderr)
        return 0
    pid = devices.reload_broker(broker_dir)
    if pid is None:
        print(
            f"{what}; no broker running from {broker_dir} (applies at its start)", file=sys.stderr
        )
    else:
        print(f"{what}; broker (pid {pid}) reloaded", file=sys.stderr)
    return 0


def _add(args: argparse.Namespace) -> int:
    password, generated = _password(args)
    try:
        devices.add_device(
            _dir(args), args.clinic_id, args.machine_id, password, replace=args.replace
        )
    except devices.AccountError as exc:
        print(f"sledfleet device add: {exc}", file=sys.stderr)
        return 2
    if generated:  # shown once, on stdout only, for the installer to put on the device
        print(password)
    return _finish(args, f"device {args.machine_id} of clinic {args.clinic_id} provisioned")


def _service(args: argparse.Namespace) -> int:
    password, generated = _password(args)
    try:
        devices.add_service(_dir(args), args.name, password)
    except devices.AccountError as exc:
        print(f"sledfleet device service: {exc}", file=sys.stderr)
        return 2
    if generated:
        print(password)
    return _finish(args, f"service account {args.name} provisioned")


def _list(args: argparse.Namespace) -> int:
    for account in devices.load_accounts(_dir(args)).values():
        print(
            f"{account.role:8s} {account.name:24s} {account.clinic_id or '-':16s} "
            f"{account.added_at}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        account = devices.revoke(_dir(args), args.name)
    except devices.AccountError as exc:
        print(f"sledfleet device revoke: {exc}", file=sys.stderr)
        return 2
    return _finish(args, f"{account.role} {account.name} revoked")
