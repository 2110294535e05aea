"""The deploy plan: everything created on an empty Grafana, nothing on a second run, only
the drift repaired afterwards. A fake gateway stands in for Grafana's HTTP API (there is no
Grafana server here); it stores what the real API would."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dashboards import deploy
from dashboards.tenants import OPS_TEAM, load

ENV = {
    "SLEDFLEET_GRAFANA_OPS_DB_PASSWORD": "ops-pw",
    "SLEDFLEET_GRAFANA_C01_DB_PASSWORD": "c01-pw",
    "SLEDFLEET_GRAFANA_C02_DB_PASSWORD": "c02-pw",
    "SLEDFLEET_GRAFANA_C03_DB_PASSWORD": "c03-pw",
}


class FakeGrafana:
    def __init__(self) -> None:
        self.folder_titles: dict[str, str] = {}
        self.team_ids: dict[str, int] = {}
        self.perms: dict[str, list[dict[str, Any]]] = {}
        self.ds: dict[str, dict[str, Any]] = {}
        self.dash: dict[str, tuple[str, dict[str, Any]]] = {}
        self.calls: list[str] = []

    def folders(self) -> dict[str, str]:
        return dict(self.folder_titles)

    def teams(self) -> dict[str, int]:
        return dict(self.team_ids)

    def folder_permissions(self, uid: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.perms[uid])

    def datasources(self) -> list[dict[str, Any]]:
        out = []
        for d in self.ds.values():
            shown = {k: v for k, v in d.items() if k != "secureJsonData"}
            shown["id"] = 7
            shown["secureJsonFields"] = {"password": "secureJsonData" in d}
            out.append(shown)
        return out

    def dashboard(self, uid: str) -> tuple[str, dict[str, Any]] | None:
        if uid not in self.dash:
            return None
        folder, model = self.dash[uid]
        return folder, {**copy.deepcopy(model), "id": 42, "version": 3}

    def create_folder(self, uid: str, title: str) -> None:
        self.calls.append(f"create_folder {uid}")
        self.folder_titles[uid] = title
        # Grafana's defaults for a new folder: Viewer View, Editor Edit
        self.perms[uid] = [{"role": "Viewer", "permission": 1}, {"role": "Editor", "permission": 2}]

    def update_folder(self, uid: str, title: str) -> None:
        self.calls.append(f"update_folder {uid}")
        self.folder_titles[uid] = title

    def create_team(self, name: str) -> int:
        self.calls.append(f"create_team {name}")
        self.team_ids[name] = len(self.team_ids) + 1
        return self.team_ids[name]

    def set_folder_permissions(self, uid: str, items: list[dict[str, Any]]) -> None:
        self.calls.append(f"permissions {uid}")
        names = {v: k for k, v in self.team_ids.items()}
        self.perms[uid] = [{**i, "team": names[i["teamId"]]} for i in items]

    def create_datasource(self, model: dict[str, Any]) -> None:
        self.calls.append(f"create_datasource {model['uid']}")
        self.ds[model["uid"]] = copy.deepcopy(model)

    def update_datasource(self, uid: str, model: dict[str, Any]) -> None:
        self.calls.append(f"update_datasource {uid}")
        self.ds[uid] = copy.deepcopy(model)

    def save_dashboard(self, payload: dict[str, Any]) -> None:
        self.calls.append(f"save_dashboard {payload['dashboard']['uid']}")
        self.dash[payload["dashboard"]["uid"]] = (payload["folderUid"], payload["dashboard"])


def _run(gw: FakeGrafana) -> list[deploy.Action]:
    want = deploy.desired(load(), environ=ENV)
    have = deploy.observe(gw, want)
    actions = deploy.plan(want, have)
    deploy.apply(gw, actions, have.teams)
    return actions


def _changes(actions: list[deploy.Action]) -> list[tuple[str, str, str]]:
    return [(a.op, a.kind, a.key) for a in actions if a.op != "noop"]


def test_first_deploy_creates_everything_in_dependency_order() -> None:
    gw = FakeGrafana()
    actions = _run(gw)
    tenants = load()
    n = len(tenants.clinics)
    kinds = [a.kind for a in actions if a.op != "noop"]
    assert kinds.count("folder") == n + 1
    assert kinds.count("team") == n + 1
    assert kinds.count("permissions") == n + 1
    assert kinds.count("datasource") == n + 1
    assert kinds.count("dashboard") == 3 * n + 2
    first = {c.split()[0]: i for i, c in reversed(list(enumerate(gw.calls)))}
    assert first["create_folder"] < first["create_team"] < first["permissions"]
    assert first["permissions"] < first["create_datasource"] < first["save_dashboard"]
    # each clinic folder: only that clinic's team, View; Grafana's role defaults removed
    c = tenants.clinics[0]
    assert gw.perms[c.folder_uid] == [
        {"teamId": gw.team_ids[c.team], "permission": 1, "team": c.team}
    ]
    assert [p["team"] for p in gw.perms["sf-operations"]] == [OPS_TEAM]
    assert gw.ds[c.datasource_uid]["secureJsonData"] == {"password": "c01-pw"}
    assert gw.ds[c.datasource_uid]["user"] == tenants.database.role_for(c)
    assert gw.dash[c.dashboard_uid("patient")][0] == c.folder_uid


def test_second_deploy_changes_nothing() -> None:
    gw = FakeGrafana()
    _run(gw)
    gw.calls.clear()
    actions = _run(gw)
    assert _changes(actions) == []
    assert gw.calls == []


def test_drift_is_repaired_and_nothing_else() -> None:
    gw = FakeGrafana()
    _run(gw)
    c = load().clinics[1]
    gw.folder_titles[c.folder_uid] = "renamed by hand"
    gw.perms[c.folder_uid].append({"role": "Viewer", "permission": 1})
    gw.ds[c.datasource_uid]["user"] = "postgres"
    folder, model = gw.dash[c.dashboard_uid("clinic")]
    gw.dash[c.dashboard_uid("clinic")] = (folder, {**model, "title": "edited"})
    gw.dash[c.dashboard_uid("machines")] = (
        "sf-operations",
        gw.dash[c.dashboard_uid("machines")][1],
    )
    actions = _run(gw)
    assert sorted(_changes(actions)) == sorted(
        [
            ("update", "folder", c.folder_uid),
            ("update", "permissions", c.folder_uid),
            ("update", "datasource", c.datasource_uid),
            ("update", "dashboard", c.dashboard_uid("clinic")),
            ("update", "dashboard", c.dashboard_uid("machines")),
        ]
    )
    assert _changes(_run(gw)) == []


def test_missing_password_is_refused_on_create_but_not_planned_silently() -> None:
    want = deploy.desired(load(), environ={})
    actions = deploy.plan(want, deploy.Observed())
    ds = [a for a in actions if a.kind == "datasource"]
    assert all(a.reason == "password variable unset" for a in ds)
    with pytest.raises(RuntimeError, match="password"):
        deploy.apply(FakeGrafana(), actions, {})


def test_describe_is_one_readable_line() -> None:
    a = deploy.Action("update", "dashboard", "sf-c01-clinic", reason="model differs")
    assert a.describe() == "update dashboard   sf-c01-clinic  (model differs)"
