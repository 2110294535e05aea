"""Tenants of the Grafana side: the clinics and the database roles their datasources use.

Read from ``dashboards/tenants.toml`` (or a file given with ``--tenants``). Every
name derived from a clinic id (datasource uid, folder uid, team, dashboard uids) is
computed here, so the builders, the provisioning files and the deploy plan agree. Database
role names come from :mod:`storage.tenants` (the roles ``sledfleet db add-clinic`` and
``sledfleet db ops-role`` create); each role's ``search_path`` picks its views, so the same
dashboard SQL serves every audience.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.tenants import OPS_ROLE, clinic_role_name

DEFAULT_TENANTS: Final = Path(__file__).with_name("tenants.toml")
OPS_DATASOURCE_UID: Final = "sf-ops"
OPS_FOLDER_UID: Final = "sf-operations"
OPS_TEAM: Final = "SledFleet operations"
OPS_ORG_ID: Final = 1
"""The operations organisation: Grafana's first org, which always exists. Fleet views only."""
_CLINIC_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
"""Stricter than the wire contract's ids: clinic ids become Grafana uids (<= 40 chars)."""


@dataclass(frozen=True, slots=True)
class Clinic:
    id: str
    name: str
    org_id: int
    """The clinic's own Grafana organisation (issue #13, H3): in Grafana OSS any Viewer can
    query any datasource of their organisation, so each clinic's datasource lives alone in
    its org. Orgs are not file-provisionable: they must exist before Grafana reads the
    provisioning files (docs/security.md)."""
    time_zone: str = "UTC"
    """The clinic's IANA zone, as ``sledfleet db set-clinic-tz`` stores it in
    ``sledfleet.clinics.time_zone`` (the calendar every view counts days and weeks in). The
    clinic's dashboards show times in it, whatever the browser's zone: a therapist abroad or
    on a laptop set to UTC still sees the clinic's session times and day boundaries."""

    @property
    def datasource_uid(self) -> str:
        return f"sf-clinic-{self.id}"

    @property
    def folder_uid(self) -> str:
        return f"sf-clinic-{self.id}"

    @property
    def team(self) -> str:
        return f"{self.name} therapists"

    def dashboard_uid(self, kind: str) -> str:
        return f"sf-{self.id}-{kind}"


@dataclass(frozen=True, slots=True)
class Database:
    host: str
    name: str
    sslmode: str
    timescaledb: bool
    postgres_version: int
    ops_password_env: str
    clinic_password_env: str
    ops_role: str = OPS_ROLE

    def role_for(self, clinic: Clinic) -> str:
        """The clinic's login role, named as ``sledfleet db add-clinic`` creates it."""
        return clinic_role_name(clinic.id)

    def password_env_for(self, clinic: Clinic) -> str:
        name = self.clinic_password_env.format(clinic_id=clinic.id, CLINIC_ID=clinic.id.upper())
        return re.sub(r"[^A-Z0-9_]", "_", name.upper())


@dataclass(frozen=True, slots=True)
class Tenants:
    database: Database
    clinics: tuple[Clinic, ...]


def parse(data: dict[str, Any]) -> Tenants:
    db = data["database"]
    clinics = tuple(
        Clinic(
            id=str(c["id"]),
            name=str(c["name"]),
            org_id=int(c["org_id"]),
            time_zone=_zone(str(c["id"]), str(c.get("time_zone", "UTC"))),
        )
        for c in data.get("clinics", [])
    )
    ids = [c.id for c in clinics]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate clinic ids in tenants: {ids}")
    orgs = [c.org_id for c in clinics]
    if len(set(orgs)) != len(orgs) or OPS_ORG_ID in orgs or min(orgs, default=2) < 2:
        raise ValueError(
            f"every clinic needs its own Grafana org id >= 2 (org {OPS_ORG_ID} is operations): "
            f"{dict(zip(ids, orgs, strict=True))}"
        )
    for cid in ids:
        if not _CLINIC_ID_RE.match(cid):
            raise ValueError(f"clinic id {cid!r} must match {_CLINIC_ID_RE.pattern}")
    return Tenants(
        database=Database(
            host=str(db["host"]),
            name=str(db["name"]),
            sslmode=str(db.get("sslmode", "disable")),
            timescaledb=bool(db.get("timescaledb", False)),
            postgres_version=int(db.get("postgres_version", 1600)),
            ops_password_env=str(db["ops_password_env"]),
            clinic_password_env=str(db["clinic_password_env"]),
        ),
        clinics=clinics,
    )


def _zone(clinic_id: str, name: str) -> str:
    """``name`` if it is an IANA zone this machine knows (Grafana takes the same names)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"clinic {clinic_id!r}: time_zone {name!r} is not an IANA time zone "
            "(e.g. Europe/Berlin)"
        ) from None
    return name


def load(path: Path | None = None) -> Tenants:
    with (path or DEFAULT_TENANTS).open("rb") as f:
        return parse(tomllib.load(f))
