"""The committed dashboard JSON: valid for Grafana 11.6's schema (generated from
@grafana/schema), unique uids and panel ids, datasources that the provisioning defines,
SQL that matches each variable's kind, no stale files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dashboards import build, queries
from dashboards.tenants import load

SCHEMA_DIR = Path(build.PACKAGE_DIR) / "schema"
FILES = sorted(build.JSON_DIR.rglob("*.json"))


def _schema(name: str) -> dict[str, Any] | None:
    path = SCHEMA_DIR / f"{name}.schema.json"
    return json.loads(path.read_text()) if path.exists() else None


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in model.get("panels", []):
        out.append(p)
        out += p.get("panels", [])
    return out


def test_there_are_dashboards_for_ops_and_every_clinic() -> None:
    tenants = load()
    names = {str(p.relative_to(build.JSON_DIR)) for p in FILES}
    assert {"operations/fleet-overview.json", "operations/machine-health.json"} <= names
    for c in tenants.clinics:
        assert {
            f"{c.id}/clinic.json",
            f"{c.id}/patient-progress.json",
            f"{c.id}/machine-health.json",
        } <= names


def test_generated_files_are_not_stale() -> None:
    stale = build.stale(load())
    assert not stale, f"run `sledfleet dashboards build` and commit: {stale}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(build.JSON_DIR)))
def test_dashboard_validates_against_grafana_11_6_schema(path: Path) -> None:
    model = _load(path)
    schema = _schema("dashboard")
    assert schema is not None
    assert "11.6" in schema["$comment"]
    jsonschema.Draft7Validator(schema).validate(model)
    for panel in _panels(model):
        if panel["type"] == "row":
            continue
        options = _schema(f"panel-{panel['type']}")
        assert options is not None, f"no schema generated for panel type {panel['type']}"
        jsonschema.Draft7Validator(options).validate(panel.get("options", {}))
        custom = _schema(f"fieldconfig-{panel['type']}")
        if custom is not None:
            jsonschema.Draft7Validator(custom).validate(
                panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
            )


def test_schema_rejects_a_broken_dashboard() -> None:
    schema = _schema("dashboard")
    assert schema is not None
    bad = _load(FILES[0])
    bad["panels"][0]["gridPos"] = {"h": "tall"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(bad)


def test_uids_unique_and_panel_ids_unique_per_dashboard() -> None:
    uids = [_load(p)["uid"] for p in FILES]
    assert len(set(uids)) == len(uids)
    assert all(8 <= len(u) <= 40 for u in uids)
    for path in FILES:
        ids = [p["id"] for p in _panels(_load(path))]
        assert len(set(ids)) == len(ids), path


def _provisioned_datasources() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((build.PROVISIONING_DIR / "datasources/sledfleet.yaml").read_text())
    return {d["uid"]: d for d in doc["datasources"]}


def test_every_datasource_uid_is_provisioned_with_the_right_role() -> None:
    provisioned = _provisioned_datasources()
    tenants = load()
    for path in FILES:
        model = _load(path)
        refs = [v["datasource"] for v in model["templating"]["list"]]
        for p in _panels(model):
            if "datasource" in p:
                refs.append(p["datasource"])
            refs += [t["datasource"] for t in p.get("targets", [])]
        uids = {r["uid"] for r in refs}
        assert uids <= set(provisioned), (path, uids - set(provisioned))
        assert all(r["type"] == "grafana-postgresql-datasource" for r in refs)
        assert len(uids) == 1, f"{path} mixes datasources {uids}"
        folder = path.parent.name
        (uid,) = uids
        if folder == "operations":
            assert provisioned[uid]["user"] == tenants.database.ops_role
        else:
            clinic = next(c for c in tenants.clinics if c.id == folder)
            assert uid == clinic.datasource_uid
            assert provisioned[uid]["user"] == tenants.database.role_for(clinic)
    for d in provisioned.values():
        assert d["secureJsonData"]["password"].startswith("${"), "no literal passwords"


def test_providers_point_at_each_folder() -> None:
    doc = yaml.safe_load((build.PROVISIONING_DIR / "dashboards/sledfleet.yaml").read_text())
    paths = {p["options"]["path"].rsplit("/", 1)[1] for p in doc["providers"]}
    assert paths == {p.parent.name for p in FILES}
    assert len({p["folderUid"] for p in doc["providers"]}) == len(doc["providers"])


_IN_VAR = re.compile(r"IN \(\$\{?(\w+)\}?\)")
_QUOTED_VAR = re.compile(r"'\$\{?(\w+)\}?'")


def test_sql_uses_each_variable_the_way_its_kind_expands() -> None:
    """Multi/All variables expand to 'a','b' (write IN ($v)); single ones unquoted ('$v')."""
    for path in FILES:
        model = _load(path)
        kinds = {
            v["name"]: bool(v.get("multi") or v.get("includeAll"))
            for v in model["templating"]["list"]
        }
        sqls = [v["query"] for v in model["templating"]["list"]]
        sqls += [t["rawSql"] for p in _panels(model) for t in p.get("targets", [])]
        for text in sqls:
            used = queries.Query("x", text, "table", (("x", "num"),)).variables
            assert used <= set(kinds), (path, used - set(kinds))
            for name in _IN_VAR.findall(text):
                assert kinds[name], f"{path}: IN (${name}) but {name} is single-value"
            for name in _QUOTED_VAR.findall(text):
                assert not kinds[name], f"{path}: '${name}' but {name} is multi-value"


def test_panels_carry_the_shared_query_text_verbatim() -> None:
    texts = {q.sql for q in queries.all_queries().values()}
    for path in FILES:
        for p in _panels(_load(path)):
            for t in p.get("targets", []):
                assert t["rawSql"] in texts
                assert t["format"] in ("time_series", "table")


def test_no_macro_inside_sql_comments() -> None:
    for q in queries.all_queries().values():
        for line in q.sql.splitlines():
            comment = line.partition("--")[2]
            assert "$" not in comment, f"{q.name}: macro or variable in a comment"


def test_cli_build_check_passes_on_the_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    assert main(["dashboards", "build", "--check"]) == 0
    assert capsys.readouterr().err == ""


def test_clinic_dashboards_show_times_in_the_clinics_zone_not_the_browsers() -> None:
    """Every clinic dashboard (committed JSON) carries its clinic's IANA zone from the tenants
    file; a tenants file naming another zone changes every one of them."""
    from dashboards.builders import build_all
    from dashboards.tenants import parse

    tenants = load()
    for c in tenants.clinics:
        for kind in ("clinic", "patient-progress", "machine-health"):
            assert _load(build.JSON_DIR / c.id / f"{kind}.json")["timezone"] == c.time_zone
    data = {
        "database": {"host": "h", "name": "n", "ops_password_env": "A", "clinic_password_env": "B"},
        "clinics": [
            {"id": "x1", "name": "X", "org_id": 2, "time_zone": "Australia/Sydney"},
            {"id": "x2", "name": "Y", "org_id": 3},
        ],
    }
    zones = {d.path: d.model["timezone"] for d in build_all(parse(data))}
    assert {p: z for p, z in zones.items() if p.startswith("x1/")} == {
        "x1/clinic.json": "Australia/Sydney",
        "x1/patient-progress.json": "Australia/Sydney",
        "x1/machine-health.json": "Australia/Sydney",
    }
    assert {z for p, z in zones.items() if p.startswith("x2/")} == {"UTC"}
    # the fleet spans several zones: its dashboards keep the viewer's
    assert {z for p, z in zones.items() if p.startswith("operations/")} == {"browser"}


def test_a_tenants_file_with_an_unknown_zone_is_refused() -> None:
    from dashboards.tenants import parse

    data = {
        "database": {"host": "h", "name": "n", "ops_password_env": "A", "clinic_password_env": "B"},
        "clinics": [{"id": "x1", "name": "X", "org_id": 2, "time_zone": "Europe/Atlantis"}],
    }
    with pytest.raises(ValueError, match=r"Europe/Atlantis.*not an IANA time zone"):
        parse(data)
