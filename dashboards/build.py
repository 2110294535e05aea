"""Generate (or check) every committed artefact: dashboard JSON and provisioning files.

``sledfleet dashboards build`` writes them; ``--check`` (and the unit test) report files
that differ from what the builders produce now, so stale JSON fails CI.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Final

from dashboards import provisioning
from dashboards.builders import build_all
from dashboards.tenants import Tenants

log = logging.getLogger(__name__)

PACKAGE_DIR: Final = Path(__file__).parent
JSON_DIR: Final = PACKAGE_DIR / "json"
PROVISIONING_DIR: Final = PACKAGE_DIR / "provisioning"


def render(tenants: Tenants) -> dict[Path, str]:
    """Absolute path -> exact file text, for every generated file."""
    out: dict[Path, str] = {}
    for d in build_all(tenants):
        out[JSON_DIR / d.path] = json.dumps(d.model, indent=2, sort_keys=True) + "\n"
    for rel, text in provisioning.files(tenants).items():
        out[PROVISIONING_DIR / rel] = text
    return out


def stale(tenants: Tenants) -> list[Path]:
    """Generated files that are missing, differ, or are left over in json/."""
    wanted = render(tenants)
    bad = [p for p, text in wanted.items() if not p.exists() or p.read_text("utf-8") != text]
    bad += [p for p in sorted(JSON_DIR.rglob("*.json")) if p not in wanted]
    return bad


def write(tenants: Tenants) -> list[Path]:
    """Write every generated file, remove leftover dashboard JSON; returns changed paths."""
    wanted = render(tenants)
    changed = []
    for path, text in wanted.items():
        if path.exists() and path.read_text("utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
        log.info("wrote %s", path)
    for path in sorted(JSON_DIR.rglob("*.json")):
        if path not in wanted:
            path.unlink()
            changed.append(path)
            log.info("removed %s", path)
    return changed
