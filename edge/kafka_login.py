"""One Kafka SASL/SCRAM login, stdlib only: the readiness probe of the secure local Kafka
(``services/kafka/ready.py``) and the start-up check of every role (a wrong password becomes
one ConfigError line instead of a client library retrying and logging forever).

Speaks just enough of the Kafka protocol: SaslHandshake v1, SaslAuthenticate v1 carrying
RFC 5802 SCRAM (SHA-256 or SHA-512), then a Metadata v4 request on the authenticated
connection (live brokers, active controller). Usage as a script::

    python3 -m edge.kafka_login 127.0.0.1:9192 admin <password-file> [SCRAM-SHA-512]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from edge.settings import KafkaSettings

API_METADATA: Final = 3
API_SASL_HANDSHAKE: Final = 17
API_SASL_AUTHENTICATE: Final = 36
METADATA_VERSION: Final = 4  # Kafka 4 removed v0-v3 (KIP-896)
HASHES: Final = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
ERROR_SASL_AUTHENTICATION_FAILED: Final = 58
ERROR_UNSUPPORTED_SASL_MECHANISM: Final = 33
ERROR_ILLEGAL_SASL_STATE: Final = 34


class LoginRefused(Exception):
    """The broker answered but refused this login (wrong user or password, mechanism)."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    brokers: int
    controller: int
    handshake_s: float
    """Seconds from TCP connect to the end of the SCRAM exchange."""


class _Conn:
    def __init__(self, sock: socket.socket, client_id: bytes) -> None:
        self.sock, self.client_id, self.correlation = sock, client_id, 0

    def call(self, api: int, version: int, body: bytes) -> bytes:
        """One request (header v1, non-flexible), the response body after correlation id."""
        self.correlation += 1
        header = struct.pack(">hhih", api, version, self.correlation, len(self.client_id))
        request = header + self.client_id + body
        self.sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", self._recv(4))
        data = self._recv(size)
        return data[4:]

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            buf += chunk
        return buf


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def _read_string(data: bytes, pos: int) -> tuple[str | None, int]:
    (n,) = struct.unpack_from(">h", data, pos)
    pos += 2
    if n < 0:
        return None, pos
    return data[pos : pos + n].decode(errors="replace"), pos + n


def _authenticate(conn: _Conn, token: bytes) -> bytes:
    data = conn.call(API_SASL_AUTHENTICATE, 1, struct.pack(">i", len(token)) + token)
    (code,) = struct.unpack_from(">h", data, 0)
    message, pos = _read_string(data, 2)
    if code:
        raise LoginRefused(message or f"SaslAuthenticate error {code}")
    (n,) = struct.unpack_from(">i", data, pos)
    return data[pos + 4 : pos + 4 + max(n, 0)]


def scram_login(conn: _Conn, mechanism: str, username: str, password: str) -> None:
    """SaslHandshake + the two SCRAM round trips; LoginRefused when the broker says no."""
    digest = HASHES.get(mechanism)
    if digest is None:
        raise LoginRefused(f"mechanism {mechanism} is not SCRAM-SHA-256/512")
    data = conn.call(API_SASL_HANDSHAKE, 1, _string(mechanism))
    (code,) = struct.unpack_from(">h", data, 0)
    if code == ERROR_UNSUPPORTED_SASL_MECHANISM:
        raise LoginRefused(f"the broker does not offer {mechanism} on this listener")
    if code:
        raise LoginRefused(f"SaslHandshake error {code} (is this a SASL listener?)")
    user = username.replace("=", "=3D").replace(",", "=2C")
    nonce = base64.b64encode(secrets.token_bytes(24)).decode()
    first_bare = f"n={user},r={nonce}"
    server_first = _authenticate(conn, ("n,," + first_bare).encode()).decode()
    attrs = dict(part.split("=", 1) for part in server_first.split(","))
    if not attrs.get("r", "").startswith(nonce):
        raise LoginRefused("the broker's SCRAM nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac(
        digest, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", digest)
    stored_key = hashlib.new(digest, client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, digest)
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}"
    server_final = _authenticate(conn, final.encode()).decode()
    server_key = hmac.digest(salted, b"Server Key", digest)
    expected = base64.b64encode(hmac.digest(server_key, auth_message, digest)).decode()
    if server_final != f"v={expected}":
        raise LoginRefused("the broker's SCRAM signature is wrong (not the real broker?)")


def _metadata(conn: _Conn) -> tuple[int, int]:
    data = conn.call(API_METADATA, METADATA_VERSION, struct.pack(">i?", -1, False))
    pos = 4  # throttle_time_ms
    (n_brokers,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(n_brokers):
        pos += 4
        _host, pos = _read_string(data, pos)
        pos += 4
        _rack, pos = _read_string(data, pos)
    _cluster, pos = _read_string(data, pos)
    (controller,) = struct.unpack_from(">i", data, pos)
    return n_brokers, controller


def login(
    server: str,
    username: str,
    password: str,
    mechanism: str = "SCRAM-SHA-512",
    timeout_s: float = 5.0,
) -> LoginResult:
    """Log in to ``host:port`` and ask for metadata. LoginRefused when the broker refuses
    the credentials; OSError/ConnectionError when it is not there."""
    host, _, port = server.strip().rpartition(":")
    started = time.perf_counter()
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        conn = _Conn(sock, b"sledfleet-login")
        scram_login(conn, mechanism, username, password)
        handshake_s = time.perf_counter() - started
        brokers, controller = _metadata(conn)
    return LoginResult(brokers, controller, handshake_s)


def check(kafka: KafkaSettings, timeout_s: float = 10.0) -> LoginResult | None:
    """At a role's start: log in once as the configured user (SASL only). A refused login
    is a ConfigError naming user, broker and cause; an unreachable broker is left to the
    role's own wait (OSError). None for PLAINTEXT."""
    from edge.settings import ConfigError

    if not kafka.sasl:
        return None
    password = kafka.sasl_password().reveal()
    if kafka.security_protocol == "SASL_SSL":
        return None  # TLS first: the client library's own handshake reports it
    cause = ""
    for server in kafka.servers:
        try:
            return login(server, kafka.username, password, kafka.sasl_mechanism, timeout_s)
        except LoginRefused as exc:
            raise ConfigError(
                "SLEDFLEET_KAFKA_USERNAME/SLEDFLEET_KAFKA_PASSWORD",
                f"Kafka at {server} refused the {kafka.sasl_mechanism} login of user "
                f"{kafka.username!r} ({exc})",
                "use this role's Kafka user and its current password (docs/security.md)",
            ) from None
        except (OSError, struct.error) as exc:
            cause = f"{server}: {exc}"
    raise ConnectionError(f"no Kafka broker answered the login ({cause})")


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    server, username, password_file = argv[:3]
    mechanism = argv[3] if len(argv) == 4 else "SCRAM-SHA-512"
    with open(password_file, encoding="utf-8") as f:
        password = f.read().strip()
    try:
        result = login(server, username, password, mechanism, timeout_s=3.0)
    except LoginRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 3
    except (OSError, ConnectionError, struct.error, KeyError, ValueError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    if result.brokers < 1 or result.controller < 0:
        print(f"not ready: brokers={result.brokers} controller={result.controller}")
        return 1
    print(f"ready: brokers={result.brokers} controller={result.controller}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
