"""A PostgreSQL query type for grafana-foundation-sdk, which ships none.

Grafana's PostgreSQL datasource (plugin id ``grafana-postgresql-datasource``) reads a
target's ``rawSql`` in code mode (``editorMode: "code"``, ``rawQuery: true``) and
returns it as a time series (``format: "time_series"``: a ``time`` column, numeric
value columns and an optional ``metric`` column naming the series) or a table.
"""

from __future__ import annotations

import typing
from typing import Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

POSTGRES_PLUGIN: typing.Final = "grafana-postgresql-datasource"

Format = Literal["time_series", "table"]


def datasource_ref(uid: str) -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val=POSTGRES_PLUGIN, uid=uid)


class PostgresQuery(cogvariants.Dataquery):
    """The JSON target the PostgreSQL datasource expects."""

    def __init__(
        self,
        ref_id: str = "A",
        raw_sql: str = "",
        fmt: Format = "table",
        datasource: dashboard.DataSourceRef | None = None,
        hide: bool | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format = fmt
        self.datasource = datasource
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "editorMode": "code",
            "rawQuery": True,
            "format": self.format,
            "rawSql": self.raw_sql,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload


class PostgresQueryBuilder(cogbuilder.Builder[PostgresQuery]):
    """``PostgresQueryBuilder().ref_id("A").raw_sql(sql).format("table").datasource(uid)``."""

    def __init__(self) -> None:
        self._internal = PostgresQuery()

    def build(self) -> PostgresQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def raw_sql(self, raw_sql: str) -> Self:
        self._internal.raw_sql = raw_sql
        return self

    def format(self, fmt: Format) -> Self:
        self._internal.format = fmt
        return self

    def datasource(self, uid: str) -> Self:
        self._internal.datasource = datasource_ref(uid)
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self
