"""Broker accounts (edge/devices.py): what the broker and the bridge are given to read."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest

from edge import devices

PASSWORD = "a-long-enough-password"


def test_hash_is_mosquittos_pbkdf2_sha512_format() -> None:
    salt = bytes(range(12))
    line = devices.hash_password(PASSWORD, salt=salt, iterations=1000)
    kind, iterations, salt64, digest64 = line.split("$")[1:]
    assert (kind, iterations) == ("7", "1000")
    assert base64.b64decode(salt64) == salt
    expected = hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, 1000)
    assert base64.b64decode(digest64) == expected
    assert devices.hash_password(PASSWORD) != devices.hash_password(PASSWORD)  # fresh salts


def test_device_acl_names_its_own_clinic_and_machine_only(tmp_path: Path) -> None:
    devices.add_device(tmp_path, "c01", "c01-m01", PASSWORD)
    devices.add_device(tmp_path, "c02", "c02-m01", PASSWORD)
    acl = (tmp_path / devices.DEVICE_ACL).read_text()
    assert "pattern" not in acl
    assert "+" not in acl
    assert "#" not in acl.replace("# generated", "")
    block = acl.split("user c01-m01\n")[1].split("\n\n")[0].splitlines()
    assert block == [
        "topic write sledfleet/v1/c01/c01-m01/telemetry",
        "topic write sledfleet/v1/c01/c01-m01/event",
        "topic write sledfleet/v1/c01/c01-m01/state",
        "topic read sledfleet/v1/c01/c01-m01/config",
        "topic read sledfleet/v1/c01/c01-m01/ack",
    ]
    registry = json.loads((tmp_path / devices.REGISTRY_FILE).read_text())
    assert registry["machines"] == {"c01-m01": "c01", "c02-m01": "c02"}


def test_secrets_files_are_private_and_hold_no_password(tmp_path: Path) -> None:
    devices.add_device(tmp_path, "c01", "c01-m01", PASSWORD)
    devices.add_service(tmp_path, "sledfleet-bridge", PASSWORD + "-svc")
    for name in (devices.ACCOUNTS_FILE, devices.DEVICE_PASSWD, devices.SERVICE_PASSWD):
        path = tmp_path / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert PASSWORD not in path.read_text()
    assert "sledfleet-bridge" not in (tmp_path / devices.DEVICE_PASSWD).read_text()
    assert "c01-m01" not in (tmp_path / devices.SERVICE_PASSWD).read_text()


@pytest.mark.parametrize(
    ("clinic", "machine", "why"),
    [
        ("c01", "sledfleet-bridge", "may not start"),
        ("c01", "m/1", "must match"),
        ("c+", "m1", "must match"),
        ("c01", "#", "must match"),
    ],
)
def test_bad_or_colliding_names_are_refused(
    tmp_path: Path, clinic: str, machine: str, why: str
) -> None:
    with pytest.raises(devices.AccountError, match=why):
        devices.add_device(tmp_path, clinic, machine, PASSWORD)


def test_a_machine_is_not_moved_to_another_clinic_by_provisioning(tmp_path: Path) -> None:
    devices.add_device(tmp_path, "c01", "m1", PASSWORD)
    with pytest.raises(devices.AccountError, match="registered to clinic c01"):
        devices.add_device(tmp_path, "c02", "m1", PASSWORD, replace=True)
    with pytest.raises(devices.AccountError, match="--replace"):
        devices.add_device(tmp_path, "c01", "m1", PASSWORD)
    devices.add_device(tmp_path, "c01", "m1", PASSWORD + "2", replace=True)
    devices.revoke(tmp_path, "m1")
    devices.add_device(tmp_path, "c02", "m1", PASSWORD)  # after a revocation, explicitly
    assert devices.load_accounts(tmp_path)["m1"].clinic_id == "c02"


def test_short_or_multiline_passwords_are_refused(tmp_path: Path) -> None:
    with pytest.raises(devices.AccountError, match="too short"):
        devices.add_device(tmp_path, "c01", "m1", "short")
    with pytest.raises(devices.AccountError, match="single line"):
        devices.add_device(tmp_path, "c01", "m1", PASSWORD + "\nuser evil")
    with pytest.raises(devices.AccountError, match="start with"):
        devices.add_service(tmp_path, "bridge", PASSWORD)


def test_revoking_an_unknown_account_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(devices.AccountError, match="no account"):
        devices.revoke(tmp_path, "nobody")
    assert devices.reload_broker(tmp_path) is None  # no pid file: nothing signalled
