"""Device and service accounts of a secure-mode Mosquitto, kept in one file and rendered
into what the broker reads. Stdlib only: ``services/start`` runs it with the system Python
(``python3 -m edge.devices service ...``) before any virtualenv exists.

Source of truth: ``<broker dir>/accounts.json`` (mode 0600; holds password hashes, never
passwords). From it ``write_broker_files`` renders, atomically:

* ``devices.passwd`` (0600) and ``devices.acl``: the TLS listener's accounts. A device's
  username is its machine id; it may publish only ``sledfleet/v1/<its clinic>/<its
  machine>/{telemetry,event,state}`` and read only ``.../config`` and ``.../ack``
  (explicit ``topic`` lines, no ``pattern`` wildcards over the clinic level);
* ``services.passwd`` (0600): the service accounts (bridge, simulator) of the loopback
  listener, whose ACL is the static ``services/mosquitto/acl``;
* ``registry.json`` (0644, no secrets): machine id -> clinic id of every active device, the
  file the bridge reads in secure mode (``stream/bridge/registration.py``).

``reload_broker`` sends SIGHUP to the pid in ``<broker dir>/mosquitto.pid``: Mosquitto then
re-reads the password and ACL files and disconnects clients whose account is gone, so a
revocation takes effect without a restart.

Password hashes use Mosquitto's own ``$7$`` format (PBKDF2-SHA512, 12-byte salt), computed
here so that no password ever appears in a command line (``mosquitto_passwd -b`` shows it
in ``ps``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal

from edge.contract import ID_PATTERN, TOPIC_ROOT

HASH_ITERATIONS: Final = 1_000
"""PBKDF2-SHA512 rounds per password hash (mosquitto_passwd's default is 101). The broker
computes one per login attempt on its single thread, so rounds are a denial-of-service lever
as much as a guessing brake: measured with benchmarks/broker_logins.py on this loaded 2-core
machine, one client made 50.7 wrong TLS logins/s at 101 rounds and 12.6/s at 10,000 (~60 ms
of broker time each). Generated passwords carry 192 random bits, so guessing is hopeless at
any round count; 1,000 rounds protect a leaked hash file of weaker stdin passwords a little
without handing attackers a cheap way to stall the broker (1,000 rounds: 47.3 wrong
logins/s against 62.8 at 101, same run)."""
SALT_BYTES: Final = 12
GENERATED_PASSWORD_BYTES: Final = 24
"""Random bytes in a generated device password (32 URL-safe characters)."""
MIN_PASSWORD_CHARS: Final = 16
"""A password given on stdin must be at least this long."""

ACCOUNTS_FILE: Final = "accounts.json"
DEVICE_PASSWD: Final = "devices.passwd"  # noqa: S105 (a file name)
DEVICE_ACL: Final = "devices.acl"
SERVICE_PASSWD: Final = "services.passwd"  # noqa: S105 (a file name)
REGISTRY_FILE: Final = "registry.json"
PID_FILE: Final = "mosquitto.pid"
DEVICE_WRITE_KINDS: Final = ("telemetry", "event", "state")
DEVICE_READ_KINDS: Final = ("config", "ack")
"""A device reads its desired config and its end-to-end acks (docs/contract.md)."""
SERVICE_PREFIX: Final = "sledfleet-"
"""Service account names start with this; device (machine) ids may not, so the two never
collide."""

Role = Literal["device", "service"]


class AccountError(ValueError):
    """A provisioning request that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: Role
    password_hash: str
    clinic_id: str = ""
    added_at: str = ""


def hash_password(
    password: str, *, iterations: int = HASH_ITERATIONS, salt: bytes | None = None
) -> str:
    """Mosquitto's ``$7$<iterations>$<salt b64>$<hash b64>`` for ``password``."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"password too short (at least {MIN_PASSWORD_CHARS} characters)")
    if any(c in password for c in "\r\n\0"):
        raise AccountError("password must be a single line")
    return password


def check_id(field: str, value: str) -> str:
    if not ID_PATTERN.match(value):
        raise AccountError(f"{field} {value[:80]!r} must match {ID_PATTERN.pattern}")
    return value


# --- the accounts file ---------------------------------------------------------------------


def load_accounts(broker_dir: Path) -> dict[str, Account]:
    path = broker_dir / ACCOUNTS_FILE
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: Account(**fields) for name, fields in data["accounts"].items()}


def save_accounts(broker_dir: Path, accounts: Mapping[str, Account]) -> None:
    body = {"version": 1, "accounts": {n: asdict(a) for n, a in sorted(accounts.items())}}
    _write(broker_dir / ACCOUNTS_FILE, json.dumps(body, indent=1) + "\n", 0o600)


def add_device(
    broker_dir: Path, clinic_id: str, machine_id: str, password: str, *, replace: bool = False
) -> Account:
    """Create (or with ``replace``, re-key) the device ``machine_id`` of ``clinic_id``."""
    check_id("clinic_id", clinic_id)
    check_id("machine_id", machine_id)
    if machine_id.startswith(SERVICE_PREFIX):
        raise AccountError(f"machine ids may not start with {SERVICE_PREFIX!r} (service names)")
    accounts = load_accounts(broker_dir)
    old = accounts.get(machine_id)
    if old is not None and old.clinic_id != clinic_id:
        raise AccountError(
            f"machine {machine_id} is registered to clinic {old.clinic_id}: revoke it first "
            "(moving a machine between clinics is an explicit admin step)"
        )
    if old is not None and not replace:
        raise AccountError(f"device {machine_id} exists; use --replace to issue a new password")
    account = Account(
        machine_id, "device", hash_password(check_password(password)), clinic_id, _now()
    )
    accounts[machine_id] = account
    save_accounts(broker_dir, accounts)
    write_broker_files(broker_dir, accounts)
    return account


def add_service(broker_dir: Path, name: str, password: str) -> Account:
    """Create or re-key the service account ``name`` (must start with ``sledfleet-``)."""
    check_id("service name", name)
    if not name.startswith(SERVICE_PREFIX):
        raise AccountError(f"service account names start with {SERVICE_PREFIX!r}")
    accounts = load_accounts(broker_dir)
    account = Account(name, "service", hash_password(check_password(password)), "", _now())
    accounts[name] = account
    save_accounts(broker_dir, accounts)
    write_broker_files(broker_dir, accounts)
    return account


def revoke(broker_dir: Path, name: str) -> Account:
    accounts = load_accounts(broker_dir)
    account = accounts.pop(name, None)
    if account is None:
        raise AccountError(f"no account {name[:80]!r}")
    save_accounts(broker_dir, accounts)
    write_broker_files(broker_dir, accounts)
    return account


# --- what the broker and the bridge read ---------------------------------------------------


def device_acl(account: Account) -> list[str]:
    base = f"{TOPIC_ROOT}/{account.clinic_id}/{account.name}"
    lines = [f"user {account.name}"]
    lines += [f"topic write {base}/{kind}" for kind in DEVICE_WRITE_KINDS]
    lines += [f"topic read {base}/{kind}" for kind in DEVICE_READ_KINDS]
    return lines


def render(accounts: Mapping[str, Account]) -> dict[str, tuple[str, int]]:
    """File name -> (content, mode) of every file the broker and the bridge read."""
    devices = [accounts[n] for n in sorted(accounts) if accounts[n].role == "device"]
    services = [accounts[n] for n in sorted(accounts) if accounts[n].role == "service"]
    header = "# generated by sledfleet device (edge/devices.py); edit with that command\n"
    acl = [line for d in devices for line in (*device_acl(d), "")]
    registry = {"version": 1, "machines": {d.name: d.clinic_id for d in devices}}
    return {
        DEVICE_PASSWD: ("".join(f"{d.name}:{d.password_hash}\n" for d in devices), 0o600),
        SERVICE_PASSWD: ("".join(f"{s.name}:{s.password_hash}\n" for s in services), 0o600),
        DEVICE_ACL: (header + "\n".join(acl) + "\n", 0o644),
        REGISTRY_FILE: (json.dumps(registry, indent=1, sort_keys=True) + "\n", 0o644),
    }


def write_broker_files(broker_dir: Path, accounts: Mapping[str, Account]) -> None:
    for name, (content, mode) in render(accounts).items():
        _write(broker_dir / name, content, mode)


def reload_broker(broker_dir: Path) -> int | None:
    """SIGHUP the broker of ``broker_dir``; its pid, or None when it is not running."""
    try:
        pid = int((broker_dir / PID_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    return pid


def _write(path: Path, content: str, mode: int) -> None:
    """Atomic replace, same owner as the directory (a broker that dropped root privileges
    must still read it), never world-readable when ``mode`` says so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        if os.geteuid() == 0:
            st = path.parent.stat()
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _main(argv: list[str]) -> int:
    """``python3 -m edge.devices service <broker dir> <name>``: used by services/start to
    create the first service account; the password comes from stdin, never argv."""
    if len(argv) != 3 or argv[0] != "service":
        print(
            "usage: python3 -m edge.devices service <broker dir> <name>  (password on stdin)",
            file=sys.stderr,
        )
        return 2
    password = sys.stdin.readline().rstrip("\n")
    try:
        add_service(Path(argv[1]), argv[2], password)
    except AccountError as exc:
        print(f"edge.devices: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
