"""Build every dashboard for the tenants: operations first, then one set per clinic.

Layout (paths relative to ``dashboards/json/``; the folder is the Grafana folder, which the
file provisioner derives with ``foldersFromFilesStructure``)::

    operations/fleet-overview.json      ops datasource
    operations/machine-health.json      ops datasource
    <clinic_id>/clinic.json             that clinic's datasource
    <clinic_id>/patient-progress.json
    <clinic_id>/machine-health.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.builders import clinic, fleet, machine, patient
from dashboards.tenants import OPS_DATASOURCE_UID, OPS_FOLDER_UID, Tenants

OPS_FOLDER = "operations"
_INTERVAL_ONLY = ("auto", "auto_count", "auto_min")


@dataclass(frozen=True, slots=True)
class BuiltDashboard:
    path: str  # relative to dashboards/json
    folder_uid: str
    folder_title: str
    model: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.model["uid"])


def to_model(builder: dash_b.Dashboard) -> dict[str, Any]:
    """SDK builder -> plain JSON model with panel ids 1..n in layout order."""
    model: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") != "interval":
            # the SDK writes the interval variable's auto* defaults on every variable;
            # Grafana's VariableModel (@grafana/schema) has no such fields elsewhere
            for key in _INTERVAL_ONLY:
                var.pop(key, None)
    next_id = 1
    for panel in model.get("panels", []):
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []):
            inner["id"] = next_id
            next_id += 1
    return model


def build_all(tenants: Tenants) -> list[BuiltDashboard]:
    out = [
        BuiltDashboard(
            f"{OPS_FOLDER}/fleet-overview.json",
            OPS_FOLDER_UID,
            "Operations",
            to_model(fleet.build("sf-ops-fleet", "Fleet overview", OPS_DATASOURCE_UID)),
        ),
        BuiltDashboard(
            f"{OPS_FOLDER}/machine-health.json",
            OPS_FOLDER_UID,
            "Operations",
            to_model(
                machine.build(
                    "sf-ops-machines",
                    "Machine health (fleet)",
                    OPS_DATASOURCE_UID,
                    machine_alerts=False,
                )
            ),
        ),
    ]
    for c in tenants.clinics:
        patient_uid = c.dashboard_uid(patient.KIND)
        out += [
            BuiltDashboard(
                f"{c.id}/clinic.json",
                c.folder_uid,
                c.name,
                to_model(
                    clinic.build(
                        c.dashboard_uid(clinic.KIND),
                        f"{c.name}: clinic",
                        c.datasource_uid,
                        patient_uid,
                        c.time_zone,
                    )
                ),
            ),
            BuiltDashboard(
                f"{c.id}/patient-progress.json",
                c.folder_uid,
                c.name,
                to_model(
                    patient.build(
                        patient_uid, f"{c.name}: patient progress", c.datasource_uid, c.time_zone
                    )
                ),
            ),
            BuiltDashboard(
                f"{c.id}/machine-health.json",
                c.folder_uid,
                c.name,
                to_model(
                    machine.build(
                        c.dashboard_uid(machine.KIND),
                        f"{c.name}: machine health",
                        c.datasource_uid,
                        time_zone=c.time_zone,
                    )
                ),
            ),
        ]
    return out
