"""The stdlib SCRAM client of edge/kafka_login.py against RFC 7677's SCRAM-SHA-256 example
(the broker's side is tested for real in tests/integration/test_security_kafka.py)."""

from __future__ import annotations

import base64
import struct

import pytest

from edge import kafka_login

CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def _auth_response(token: str, code: int = 0, message: str | None = None) -> bytes:
    msg = (
        struct.pack(">h", -1)
        if message is None
        else struct.pack(">h", len(message)) + message.encode()
    )
    return (
        struct.pack(">h", code) + msg + struct.pack(">i", len(token)) + token.encode() + b"\0" * 8
    )


class FakeBroker:
    """Answers SaslHandshake and the two SaslAuthenticate rounds of RFC 7677's example."""

    def __init__(self, server_final: str = SERVER_FINAL, refuse: bool = False) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.server_final, self.refuse = server_final, refuse

    def call(self, api: int, version: int, body: bytes) -> bytes:
        self.sent.append((api, body))
        if api == kafka_login.API_SASL_HANDSHAKE:
            return struct.pack(">hi", 0, 0)
        if len(self.sent) == 2:
            return _auth_response(SERVER_FIRST)
        if self.refuse:
            return _auth_response("", kafka_login.ERROR_SASL_AUTHENTICATION_FAILED, "bad password")
        return _auth_response(self.server_final)


@pytest.fixture(autouse=True)
def fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        kafka_login.secrets, "token_bytes", lambda n: base64.b64decode(CLIENT_NONCE)
    )


def test_rfc7677_exchange_produces_the_expected_proof() -> None:
    broker = FakeBroker()
    kafka_login.scram_login(broker, "SCRAM-SHA-256", "user", "pencil")  # type: ignore[arg-type]
    first = broker.sent[1][1][4:].decode()
    final = broker.sent[2][1][4:].decode()
    assert first == f"n,,n=user,r={CLIENT_NONCE}"
    assert final == CLIENT_FINAL


def test_a_wrong_server_signature_is_refused() -> None:
    broker = FakeBroker(server_final="v=" + base64.b64encode(b"x" * 32).decode())
    with pytest.raises(kafka_login.LoginRefused, match="signature"):
        kafka_login.scram_login(broker, "SCRAM-SHA-256", "user", "pencil")  # type: ignore[arg-type]


def test_the_brokers_refusal_is_reported_with_its_message() -> None:
    with pytest.raises(kafka_login.LoginRefused, match="bad password"):
        kafka_login.scram_login(FakeBroker(refuse=True), "SCRAM-SHA-256", "user", "x")  # type: ignore[arg-type]
