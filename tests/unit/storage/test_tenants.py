"""Clinic role names (pure)."""

from __future__ import annotations

import pytest

from edge.contract import ContractError
from storage.tenants import MAX_IDENTIFIER, clinic_role_name


def test_plain_ids_map_readably() -> None:
    assert clinic_role_name("c1") == "sledfleet_clinic_c1"
    assert clinic_role_name("north_3") == "sledfleet_clinic_north_3"


def test_lossy_sanitising_adds_a_hash_so_names_stay_unique() -> None:
    names = {clinic_role_name(i) for i in ("a-b", "a_b", "A_b", "a.b")}
    assert len(names) == 4
    assert all(n.startswith("sledfleet_clinic_a_b") for n in names)


def test_long_ids_fit_postgres_identifiers() -> None:
    a = clinic_role_name("x" * 64)
    b = clinic_role_name("x" * 63 + "y")
    assert len(a) <= MAX_IDENTIFIER
    assert len(b) <= MAX_IDENTIFIER
    assert a != b


@pytest.mark.parametrize(
    "hostile",
    ['c1"; DROP ROLE postgres; --', "c1'", "", "../c1", "c 1", "c1\x00", "é", "-c1", "x" * 65],
)
def test_hostile_ids_are_rejected(hostile: str) -> None:
    with pytest.raises(ContractError):
        clinic_role_name(hostile)
