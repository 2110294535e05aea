"""The :class:`dashboards.deploy.Gateway` over grafana-client (Grafana's HTTP API)."""

from __future__ import annotations

from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError


class GrafanaClientGateway:
    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self.api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)

    def folders(self) -> dict[str, str]:
        return {f["uid"]: f["title"] for f in self.api.folder.get_all_folders()}

    def teams(self) -> dict[str, int]:
        return {t["name"]: int(t["id"]) for t in self.api.teams.search_teams()}

    def folder_permissions(self, uid: str) -> list[dict[str, Any]]:
        return list(self.api.folder.get_folder_permissions(uid))

    def datasources(self) -> list[dict[str, Any]]:
        return list(self.api.datasource.list_datasources())

    def dashboard(self, uid: str) -> tuple[str, dict[str, Any]] | None:
        try:
            found = self.api.dashboard.get_dashboard(uid)
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise
        return str(found.get("meta", {}).get("folderUid", "")), dict(found["dashboard"])

    def create_folder(self, uid: str, title: str) -> None:
        self.api.folder.create_folder(title, uid=uid)

    def update_folder(self, uid: str, title: str) -> None:
        self.api.folder.update_folder(uid, title=title, overwrite=True)

    def create_team(self, name: str) -> int:
        return int(self.api.teams.add_team({"name": name})["teamId"])

    def set_folder_permissions(self, uid: str, items: list[dict[str, Any]]) -> None:
        self.api.folder.update_folder_permissions(uid, {"items": items})

    def create_datasource(self, model: dict[str, Any]) -> None:
        self.api.datasource.create_datasource(model)

    def update_datasource(self, uid: str, model: dict[str, Any]) -> None:
        self.api.datasource.update_datasource_by_uid(uid, model)

    def save_dashboard(self, payload: dict[str, Any]) -> None:
        self.api.dashboard.update_dashboard(payload)
