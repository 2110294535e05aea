"""Mosquitto and PostgreSQL on their rehearsal hosts, listening on the host's address only.

Mosquitto keeps the production persistence settings (``autosave_interval 30``), so a
``kill -9`` of it loses exactly what production would lose. PostgreSQL is a fresh cluster
owned by the ``postgres`` OS user in the rehearsal's scratch dir, reachable over TCP from
the rehearsal's subnet only, with the roles the compose init script creates."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from rehearsal.netns import SUBNET, Net
from rehearsal.procs import Proc, ProcFailed

PG_BIN: Final = Path("/usr/lib/postgresql/15/bin")
PG_SUPERUSER_PASSWORD: Final = "postgres"  # noqa: S105 (dev-only cluster on a private switch)
APP_PASSWORD: Final = "sledfleet"  # noqa: S105 (same)


def mosquitto_conf(address: str, port: int, data: Path) -> str:
    return f"""\
per_listener_settings false
user root
listener {port} {address}
protocol mqtt
allow_anonymous true
max_inflight_messages 1000
max_inflight_bytes 0
max_queued_messages 100000
max_queued_bytes 0
persistent_client_expiration 1d
set_tcp_nodelay true
persistence true
persistence_location {data}/
autosave_interval 30
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
"""


def mosquitto(net: Net, host: str, port: int, work: Path, logs: Path) -> Proc:
    data = work / host
    data.mkdir(parents=True, exist_ok=True)
    conf = data / "mosquitto.conf"
    conf.write_text(mosquitto_conf(net.address(host), port, data))
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return Proc("mosquitto", host, [binary, "-c", str(conf)], {}, logs / f"{host}.log")


def _pg_bin() -> Path:
    if (PG_BIN / "postgres").exists():
        return PG_BIN
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        raise ProcFailed("PostgreSQL not installed (services/bootstrap installs it)")
    return found[-1].parent


def as_postgres(argv: list[str]) -> list[str]:
    """``argv`` as the ``postgres`` OS user (setpriv execs: the pid stays the server's)."""
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]


def init_postgres(pgdata: Path, address: str, port: int) -> None:
    """A new cluster in ``pgdata`` (owned by ``postgres``), TCP on ``address`` only."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    shutil.chown(pgdata.parent, "postgres", "postgres")
    with tempfile.NamedTemporaryFile("w", dir=pgdata.parent, delete=False) as pw:
        pw.write(PG_SUPERUSER_PASSWORD + "\n")
    shutil.chown(pw.name, "postgres", "postgres")
    try:
        argv = [str(_pg_bin() / "initdb"), "-D", str(pgdata), "-U", "postgres",
                f"--pwfile={pw.name}", "-E", "UTF8", "--locale=C.UTF-8",
                "--auth-local=peer", "--auth-host=scram-sha-256"]  # fmt: skip
        done = subprocess.run(
            as_postgres(argv), capture_output=True, text=True, check=False, cwd="/"
        )
    finally:
        Path(pw.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise ProcFailed(f"initdb failed: {done.stderr.strip()[-500:]}")
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '{address}'\nport = {port}\nunix_socket_directories = ''\n"
            "max_connections = 200\nshared_buffers = 128MB\nfsync = on\n"
        )
    (pgdata / "pg_hba.conf").write_text(f"host all all {SUBNET}.0/24 scram-sha-256\n")


def postgres(net: Net, host: str, port: int, pgdata: Path, logs: Path) -> Proc:
    argv = as_postgres([str(_pg_bin() / "postgres"), "-D", str(pgdata)])
    return Proc("postgres", host, argv, {}, logs / f"{host}.log", cwd=Path("/"))

