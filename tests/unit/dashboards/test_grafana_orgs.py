"""Issue #13, H3, checked offline on the generated provisioning files: each clinic's
datasource, folder and dashboards live alone in the clinic's own Grafana organisation, the
operations org holds only the operations datasource, and no dashboard refers to a
datasource of another org (in Grafana OSS any Viewer can query any datasource of their
org, so the org is the isolation boundary)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import build
from dashboards.tenants import OPS_DATASOURCE_UID, OPS_ORG_ID, load, parse

JSON_DIR = build.PROVISIONING_DIR.parent / "json"


def _yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((build.PROVISIONING_DIR / name).read_text())  # type: ignore[no-any-return]


def _refs(node: Any) -> set[str]:
    """Every datasource uid a dashboard JSON refers to, anywhere in it."""
    found: set[str] = set()
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            found.add(str(ds["uid"]))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def test_every_clinic_datasource_is_alone_in_its_own_org() -> None:
    tenants = load()
    by_org: dict[int, set[str]] = defaultdict(set)
    for d in _yaml("datasources/sledfleet.yaml")["datasources"]:
        by_org[d["orgId"]].add(d["uid"])
    assert by_org[OPS_ORG_ID] == {OPS_DATASOURCE_UID}
    for clinic in tenants.clinics:
        assert by_org[clinic.org_id] == {clinic.datasource_uid}
    assert len(by_org) == len(tenants.clinics) + 1


def test_dashboards_use_only_datasources_of_their_own_org() -> None:
    org_of_ds = {d["uid"]: d["orgId"] for d in _yaml("datasources/sledfleet.yaml")["datasources"]}
    providers = _yaml("dashboards/sledfleet.yaml")["providers"]
    assert len({(p["orgId"], p["folderUid"]) for p in providers}) == len(providers)
    checked = 0
    for provider in providers:
        folder = JSON_DIR / Path(provider["options"]["path"]).name
        for path in sorted(folder.glob("*.json")):
            refs = _refs(json.loads(path.read_text()))
            assert refs, path
            assert {org_of_ds[uid] for uid in refs} == {provider["orgId"]}, path
            checked += 1
    assert checked == len(list(JSON_DIR.glob("*/*.json")))


def test_ops_org_has_no_clinic_folder() -> None:
    providers = _yaml("dashboards/sledfleet.yaml")["providers"]
    ops = [p for p in providers if p["orgId"] == OPS_ORG_ID]
    assert [Path(p["options"]["path"]).name for p in ops] == ["operations"]


@pytest.mark.parametrize("orgs", [(2, 2), (1, 3), (0, 2)])
def test_shared_or_ops_org_ids_are_refused(orgs: tuple[int, int]) -> None:
    data = {
        "database": {"host": "h", "name": "n", "ops_password_env": "A", "clinic_password_env": "B"},
        "clinics": [{"id": f"c{i}", "name": f"C{i}", "org_id": o} for i, o in enumerate(orgs)],
    }
    with pytest.raises(ValueError, match="own Grafana org"):
        parse(data)
