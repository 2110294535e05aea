"""``sledfleet dashboards deploy``: bring a Grafana to the tenants' desired state, idempotently.

Three steps: :func:`observe` reads what Grafana holds (through a small :class:`Gateway`
over grafana-client), :func:`plan` compares it with :func:`desired` (pure: folders per
clinic, teams, folder permissions, datasources, dashboards) and returns actions, and
:func:`apply` performs the non-noop actions in dependency order. Running deploy twice
makes no change the second time.

Folder permissions replace Grafana's defaults (Viewer/Editor roles) with View for the
folder's team only: a clinic's therapists see their clinic's folder, the operations team
the operations folder. Grafana OSS cannot restrict who *queries* a datasource (datasource
permissions are an Enterprise feature); the database roles behind each datasource are what
keep one clinic's rows from another (storage's clinic views).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from dashboards import provisioning
from dashboards.builders import BuiltDashboard, build_all
from dashboards.tenants import OPS_TEAM, Tenants

log = logging.getLogger(__name__)

VIEW = 1  # Grafana folder permission levels: 1 View, 2 Edit, 4 Admin
DATASOURCE_FIELDS = ("name", "type", "access", "url", "user", "jsonData")

Op = Literal["create", "update", "noop"]
Kind = Literal["folder", "team", "permissions", "datasource", "dashboard"]
ORDER: tuple[Kind, ...] = ("folder", "team", "permissions", "datasource", "dashboard")


@dataclass(frozen=True, slots=True)
class Action:
    op: Op
    kind: Kind
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    def describe(self) -> str:
        return f"{self.op:6} {self.kind:11} {self.key}" + (
            f"  ({self.reason})" if self.reason else ""
        )


@dataclass(frozen=True, slots=True)
class Desired:
    folders: Mapping[str, str]  # uid -> title
    teams: Sequence[str]
    permissions: Mapping[str, frozenset[str]]  # folder uid -> team names with View
    datasources: Mapping[str, dict[str, Any]]  # uid -> API model (password separate)
    passwords: Mapping[str, str | None]  # datasource uid -> password (None: unknown)
    dashboards: Mapping[str, tuple[str, dict[str, Any]]]  # uid -> (folder uid, model)


@dataclass(slots=True)
class Observed:
    folders: dict[str, str] = field(default_factory=dict)
    teams: dict[str, int] = field(default_factory=dict)  # name -> id
    permissions: dict[str, frozenset[str]] = field(default_factory=dict)
    role_permissions: dict[str, frozenset[str]] = field(default_factory=dict)  # Viewer/Editor
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def desired(
    tenants: Tenants,
    dashboards: Sequence[BuiltDashboard] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Desired:
    env = os.environ if environ is None else environ
    built = build_all(tenants) if dashboards is None else dashboards
    folders = provisioning.folders(tenants)
    ds = provisioning.datasources(tenants)
    return Desired(
        folders={f.uid: f.title for f in folders},
        teams=[OPS_TEAM] + [c.team for c in tenants.clinics],
        permissions={f.uid: frozenset({f.team or OPS_TEAM}) for f in folders},
        datasources={s.uid: provisioning.datasource_api_model(s, tenants, None) for s in ds},
        passwords={s.uid: env.get(s.password_env) for s in ds},
        dashboards={d.uid: (d.folder_uid, d.model) for d in built},
    )


def _subset(model: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """Every key of ``want`` has the same value in ``model`` (recursively for dicts)."""
    for k, v in want.items():
        if isinstance(v, Mapping):
            if not isinstance(model.get(k), Mapping) or not _subset(model[k], v):
                return False
        elif model.get(k) != v:
            return False
    return True


def plan(want: Desired, have: Observed) -> list[Action]:
    actions: list[Action] = []
    for uid, title in want.folders.items():
        if uid not in have.folders:
            actions.append(Action("create", "folder", uid, {"uid": uid, "title": title}))
        elif have.folders[uid] != title:
            actions.append(
                Action(
                    "update",
                    "folder",
                    uid,
                    {"uid": uid, "title": title},
                    f"title {have.folders[uid]!r}",
                )
            )
        else:
            actions.append(Action("noop", "folder", uid))
    for name in want.teams:
        op: Op = "noop" if name in have.teams else "create"
        actions.append(Action(op, "team", name, {"name": name}))
    for uid, teams in want.permissions.items():
        current = have.permissions.get(uid)
        roles = have.role_permissions.get(uid, frozenset())
        if current == teams and not roles:
            actions.append(Action("noop", "permissions", uid))
        else:
            why = (
                "new folder"
                if current is None
                else f"teams {sorted(current)} roles {sorted(roles)}"
            )
            actions.append(Action("update", "permissions", uid, {"teams": sorted(teams)}, why))
    for uid, model in want.datasources.items():
        password = want.passwords.get(uid)
        payload = dict(model)
        if password is not None:
            payload["secureJsonData"] = {"password": password}
        if uid not in have.datasources:
            actions.append(
                Action(
                    "create",
                    "datasource",
                    uid,
                    payload,
                    "" if password else "password variable unset",
                )
            )
        elif not _subset(have.datasources[uid], {k: model[k] for k in DATASOURCE_FIELDS}):
            actions.append(Action("update", "datasource", uid, payload, "settings differ"))
        else:
            actions.append(Action("noop", "datasource", uid))
    for uid, (folder_uid, model) in want.dashboards.items():
        payload = {
            "dashboard": model,
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "sledfleet dashboards deploy",
        }
        if uid not in have.dashboards:
            actions.append(Action("create", "dashboard", uid, payload))
            continue
        have_folder, have_model = have.dashboards[uid]
        if have_folder != folder_uid:
            actions.append(Action("update", "dashboard", uid, payload, f"in folder {have_folder}"))
        elif _comparable(have_model) != _comparable(model):
            actions.append(Action("update", "dashboard", uid, payload, "model differs"))
        else:
            actions.append(Action("noop", "dashboard", uid))
    return actions


def _comparable(model: Mapping[str, Any]) -> dict[str, Any]:
    """A dashboard model without the fields Grafana assigns on save."""
    return {k: v for k, v in model.items() if k not in ("id", "version")}


class Gateway(Protocol):
    """The Grafana HTTP API calls deploy needs (grafana-client in production)."""

    def folders(self) -> dict[str, str]: ...
    def teams(self) -> dict[str, int]: ...
    def folder_permissions(self, uid: str) -> list[dict[str, Any]]: ...
    def datasources(self) -> list[dict[str, Any]]: ...
    def dashboard(self, uid: str) -> tuple[str, dict[str, Any]] | None: ...
    def create_folder(self, uid: str, title: str) -> None: ...
    def update_folder(self, uid: str, title: str) -> None: ...
    def create_team(self, name: str) -> int: ...
    def set_folder_permissions(self, uid: str, items: list[dict[str, Any]]) -> None: ...
    def create_datasource(self, model: dict[str, Any]) -> None: ...
    def update_datasource(self, uid: str, model: dict[str, Any]) -> None: ...
    def save_dashboard(self, payload: dict[str, Any]) -> None: ...


def observe(gw: Gateway, want: Desired) -> Observed:
    have = Observed(folders=gw.folders(), teams=gw.teams())
    for uid in want.folders:
        if uid not in have.folders:
            continue
        teams: set[str] = set()
        roles: set[str] = set()
        for item in gw.folder_permissions(uid):
            level = item.get("permission")
            if item.get("teamId"):
                name = str(item.get("team"))
                teams.add(name if level == VIEW else f"{name}:{level}")
            elif item.get("role") in ("Viewer", "Editor"):
                roles.add(f"{item['role']}:{level}")
        have.permissions[uid] = frozenset(teams)
        have.role_permissions[uid] = frozenset(roles)
    have.datasources = {d["uid"]: d for d in gw.datasources() if d.get("uid") in want.datasources}
    for uid in want.dashboards:
        found = gw.dashboard(uid)
        if found is not None:
            have.dashboards[uid] = found
    return have


def apply(gw: Gateway, actions: Sequence[Action], teams: Mapping[str, int]) -> None:
    team_ids = dict(teams)
    for kind in ORDER:
        for a in (x for x in actions if x.kind == kind and x.op != "noop"):
            log.info("%s", a.describe())
            p = dict(a.payload)
            if kind == "folder":
                (gw.create_folder if a.op == "create" else gw.update_folder)(p["uid"], p["title"])
            elif kind == "team":
                team_ids[p["name"]] = gw.create_team(p["name"])
            elif kind == "permissions":
                items = [{"teamId": team_ids[t], "permission": VIEW} for t in p["teams"]]
                gw.set_folder_permissions(a.key, items)
            elif kind == "datasource":
                if "secureJsonData" not in p and a.op == "create":
                    raise RuntimeError(f"datasource {a.key}: its password variable is unset")
                if a.op == "create":
                    gw.create_datasource(p)
                else:
                    gw.update_datasource(a.key, p)
            else:
                gw.save_dashboard(p)


def deploy(url: str, token: str, tenants: Tenants, *, dry_run: bool = False) -> list[Action]:
    from dashboards.grafana_gateway import GrafanaClientGateway

    gw = GrafanaClientGateway(url, token)
    want = desired(tenants)
    have = observe(gw, want)
    actions = plan(want, have)
    if not dry_run:
        apply(gw, actions, have.teams)
    return actions
