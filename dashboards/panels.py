"""Small helpers the four dashboard builders share: panels bound to a named query,
threshold steps, template variables.

Every panel reads exactly one query from :mod:`dashboards.queries` through the
PostgreSQL query class in :mod:`dashboards.sqlquery`; units are Grafana unit ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import barchart, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.models import common, dashboard

from dashboards import queries
from dashboards.sqlquery import PostgresQueryBuilder, datasource_ref

GREEN = "green"
ORANGE = "orange"
RED = "red"
BLUE = "blue"

Step = tuple[float | None, str]


def steps(*items: Step) -> dash_b.ThresholdsConfig:
    """Absolute thresholds: ``steps((None, RED), (0.75, ORANGE), (0.8, GREEN))``."""
    return (
        dash_b.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps([dashboard.Threshold(value=v, color=c) for v, c in items])
    )


def target(query_name: str, ds_uid: str, ref_id: str = "A") -> PostgresQueryBuilder:
    q = queries.get(query_name)
    return PostgresQueryBuilder().ref_id(ref_id).raw_sql(q.sql).format(q.format).datasource(ds_uid)


def _place(panel: Any, query_name: str, ds_uid: str, title: str, w: int, h: int) -> Any:
    return (
        panel.title(title)
        .datasource(datasource_ref(ds_uid))
        .with_target(target(query_name, ds_uid))
        .grid_pos(dashboard.GridPos(h=h, w=w, x=0, y=0))
    )


def timeseries_panel(
    title: str,
    query_name: str,
    ds_uid: str,
    unit: str,
    *,
    w: int = 12,
    h: int = 8,
    draw: common.GraphDrawStyle = common.GraphDrawStyle.LINE,
    thresholds: dash_b.ThresholdsConfig | None = None,
    threshold_style: common.GraphThresholdsStyleMode = common.GraphThresholdsStyleMode.OFF,
    soft_min: float | None = None,
    soft_max: float | None = None,
    stacked: bool = False,
    description: str = "",
    empty: str = "",
) -> timeseries.Panel:
    p: timeseries.Panel = _place(timeseries.Panel(), query_name, ds_uid, title, w, h)
    p = (
        p.unit(unit)
        .draw_style(draw)
        .line_width(2)
        .fill_opacity(60 if draw == common.GraphDrawStyle.BARS else 10)
        .show_points(
            common.VisibilityMode.ALWAYS
            if draw == common.GraphDrawStyle.POINTS
            else common.VisibilityMode.AUTO
        )
        .point_size(6)
        .span_nulls(False)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
        .thresholds_style(common_b.GraphThresholdsStyleConfig().mode(threshold_style))
    )
    if thresholds is not None:
        p = p.thresholds(thresholds)
    if soft_min is not None:
        p = p.axis_soft_min(soft_min)
    if soft_max is not None:
        p = p.axis_soft_max(soft_max)
    if stacked:
        p = p.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    if empty:
        p = p.no_value(empty)
    if description:
        p = p.description(description)
    return p


def stat_panel(
    title: str,
    query_name: str,
    ds_uid: str,
    unit: str,
    *,
    fields: str = "",
    thresholds: dash_b.ThresholdsConfig | None = None,
    w: int = 4,
    h: int = 4,
    decimals: float | None = None,
    description: str = "",
) -> stat.Panel:
    """A stat of one query column (``fields`` is Grafana's field-name regex)."""
    p: stat.Panel = _place(stat.Panel(), query_name, ds_uid, title, w, h)
    reduce = common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    if fields:
        reduce = reduce.fields(fields)
    p = (
        p.unit(unit)
        .reduce_options(reduce)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE)
        .no_value("–")
    )
    if thresholds is not None:
        p = p.thresholds(thresholds)
    if decimals is not None:
        p = p.decimals(decimals)
    if description:
        p = p.description(description)
    return p


def table_panel(
    title: str,
    query_name: str,
    ds_uid: str,
    *,
    w: int = 24,
    h: int = 8,
    overrides: Sequence[tuple[str, list[dashboard.DynamicConfigValue]]] = (),
    description: str = "",
    empty: str = "",
) -> table.Panel:
    p: table.Panel = _place(table.Panel(), query_name, ds_uid, title, w, h)
    p = p.show_header(True).filterable(True).cell_options(common.TableAutoCellOptions())
    if empty:
        p = p.no_value(empty)
    for name, props in overrides:
        p = p.override_by_name(name, props)
    if description:
        p = p.description(description)
    return p


def barchart_panel(
    title: str,
    query_name: str,
    ds_uid: str,
    unit: str,
    *,
    w: int = 12,
    h: int = 8,
    stacked: bool = False,
    description: str = "",
) -> barchart.Panel:
    p: barchart.Panel = _place(barchart.Panel(), query_name, ds_uid, title, w, h)
    p = (
        p.unit(unit)
        .orientation(common.VizOrientation.AUTO)
        .show_value(common.VisibilityMode.AUTO)
        .stacking(common.StackingMode.NORMAL if stacked else common.StackingMode.NONE)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if description:
        p = p.description(description)
    return p


def prop(prop_id: str, value: object) -> dashboard.DynamicConfigValue:
    return dashboard.DynamicConfigValue(id_val=prop_id, value=value)


def threshold_prop(*items: Step) -> dashboard.DynamicConfigValue:
    return prop(
        "thresholds",
        {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in items]},
    )


def cell_colour() -> dashboard.DynamicConfigValue:
    return prop("custom.cellOptions", {"type": "color-background", "mode": "basic"})


def query_variable(
    name: str,
    label: str,
    query_name: str,
    ds_uid: str,
    *,
    multi: bool,
    include_all: bool,
) -> dash_b.QueryVariable:
    q = queries.get(query_name)
    v = (
        dash_b.QueryVariable(name)
        .label(label)
        .query(q.sql)
        .datasource(datasource_ref(ds_uid))
        .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    if include_all:
        v = v.current(dashboard.VariableOption(text=["All"], value=["$__all"], selected=True))
    return v


def row(title: str) -> dash_b.Row:
    return dash_b.Row(title)
