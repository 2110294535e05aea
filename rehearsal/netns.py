"""Hosts as network namespaces on a private switch, and their complete removal.

Layout for a prefix ``P`` (every name starts with it, so ``teardown(P)`` finds leftovers):

* ``P-sw``: the switch namespace. It holds the Linux bridge ``br0`` and one veth end per
  host (``v<i>``). The machine's own interfaces are never touched: the veth pairs are created
  inside ``P-sw`` and their other end is moved straight into the host's namespace.
* ``P-<host>``: one namespace per host, with ``lo`` and ``eth0`` at ``SUBNET.<10+i>/24``.
  ``/etc/netns/P-<host>/hosts`` maps every host name to its address (``ip netns exec``
  mounts it over ``/etc/hosts``), so roles are configured by name as in docker-compose.

Processes run through :meth:`Net.command`, which also gives them the host's hostname (a UTS
namespace of their own). Nothing is routed out of the switch: the subnet exists only there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SUBNET: Final = "10.231.14"
"""A private /24 (RFC 1918) used only inside the rehearsal's namespaces."""
FIRST_HOST: Final = 10
NETNS_RUN: Final = Path("/run/netns")
NETNS_ETC: Final = Path("/etc/netns")
SWITCH: Final = "sw"
KILL_WAIT_S: Final = 10.0


class NetError(RuntimeError):
    """A namespace, link or address could not be set up."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    address: str
    port: str
    """The switch-side veth of this host (``v<i>`` in the switch namespace)."""


class Net:
    """``hosts`` as namespaces named ``<prefix>-<host>`` on one switch."""

    def __init__(self, prefix: str, hosts: Sequence[str]) -> None:
        if not prefix or "-" in prefix or len(prefix) > 12:
            raise ValueError(f"prefix {prefix!r}: 1-12 characters, no '-'")
        if len(set(hosts)) != len(hosts) or SWITCH in hosts:
            raise ValueError(f"host names must be unique and not {SWITCH!r}: {hosts}")
        if len(hosts) > 240:
            raise ValueError("at most 240 hosts in one /24")
        self.prefix = prefix
        self.hosts = {
            name: Host(name, f"{SUBNET}.{FIRST_HOST + i}", f"v{i}") for i, name in enumerate(hosts)
        }

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def address(self, host: str) -> str:
        return self.hosts[host].address

    def etc_hosts(self) -> str:
        lines = ["127.0.0.1\tlocalhost"]
        lines += [f"{h.address}\t{h.name}" for h in self.hosts.values()]
        return "\n".join(lines) + "\n"

    def up(self) -> None:
        """Create the switch and every host; on any failure everything made is removed."""
        try:
            self._up()
        except BaseException:
            teardown(self.prefix)
            raise

    def _up(self) -> None:
        sw = self.ns(SWITCH)
        ip("netns", "add", sw)
        ip("-n", sw, "link", "add", "br0", "type", "bridge")
        ip("-n", sw, "link", "set", "br0", "up")
        ip("-n", sw, "link", "set", "lo", "up")
        hosts_file = self.etc_hosts()
        for host in self.hosts.values():
            ns = self.ns(host.name)
            ip("netns", "add", ns)
            etc = NETNS_ETC / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_file)
            veth = ["type", "veth", "peer", "name", "eth0", "netns", ns]
            ip("-n", sw, "link", "add", host.port, *veth)
            ip("-n", sw, "link", "set", host.port, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        log.info("%d hosts up on %s.0/24 (prefix %s)", len(self.hosts), SUBNET, self.prefix)

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host``: its network namespace and its own hostname."""
        return [
            "ip", "netns", "exec", self.ns(host),
            "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', host, *argv,
        ]  # fmt: skip

    def set_link(self, host: str, up: bool) -> None:
        """Cut (or restore) ``host``'s cable at the switch: its processes keep running."""
        ip("-n", self.ns(SWITCH), "link", "set", self.hosts[host].port, "up" if up else "down")

    def pids(self, host: str) -> list[int]:
        return namespace_pids(self.ns(host))


def namespaces(prefix: str) -> list[str]:
    """Namespaces whose name starts with ``<prefix>-``."""
    out = ip("netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(prefix + "-"))


def namespace_pids(ns: str) -> list[int]:
    out = ip("netns", "pids", ns, check=False).stdout
    return sorted(int(p) for p in out.split() if p.isdigit())


def leftovers(prefix: str) -> dict[str, list[str]]:
    """What :func:`teardown` would remove: namespaces, their processes, /etc/netns dirs."""
    nss = namespaces(prefix)
    etc = sorted(p.name for p in NETNS_ETC.glob(prefix + "-*")) if NETNS_ETC.exists() else []
    pids = [str(p) for ns in nss for p in namespace_pids(ns)]
    return {"namespaces": nss, "pids": pids, "etc": etc}


def kill_namespace_processes(ns: str, grace_s: float = 0.0) -> None:
    """SIGTERM (if ``grace_s``) then SIGKILL every process in ``ns``, waiting for them."""
    if grace_s > 0:
        _signal_all(namespace_pids(ns), signal.SIGTERM)
        _wait_gone(ns, grace_s)
    deadline = time.monotonic() + KILL_WAIT_S
    while (pids := namespace_pids(ns)) and time.monotonic() < deadline:
        _signal_all(pids, signal.SIGKILL)
        time.sleep(0.1)
    if namespace_pids(ns):
        raise NetError(f"processes in {ns} survived SIGKILL: {namespace_pids(ns)}")


def _signal_all(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(ns: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while namespace_pids(ns) and time.monotonic() < deadline:
        time.sleep(0.2)


def teardown(prefix: str, grace_s: float = 0.0) -> None:
    """Remove every namespace named ``<prefix>-*``: processes, links, /etc/netns files.

    Hosts go before the switch; deleting a namespace deletes its veth ends, and the bridge
    goes with the switch namespace. Safe to call repeatedly and on a partial setup."""
    nss = namespaces(prefix)
    hosts = [n for n in nss if n != f"{prefix}-{SWITCH}"]
    if grace_s > 0:
        for ns in hosts:
            _signal_all(namespace_pids(ns), signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(namespace_pids(ns) for ns in hosts) and time.monotonic() < deadline:
            time.sleep(0.2)
    errors = []
    for ns in [*hosts, *(n for n in nss if n not in hosts)]:
        try:
            kill_namespace_processes(ns)
        except NetError as e:
            errors.append(str(e))
        proc = ip("netns", "del", ns, check=False)
        if proc.returncode != 0:
            errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")
    if NETNS_ETC.exists():
        for etc in NETNS_ETC.glob(prefix + "-*"):
            shutil.rmtree(etc, ignore_errors=True)
    if errors:
        raise NetError("; ".join(errors))
