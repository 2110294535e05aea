"""``sledfleet dashboards build|deploy``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from dashboards import tenants as tenants_mod

log = logging.getLogger(__name__)


def register(subparsers: Any, name: str, help_text: str) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    sub = parser.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)

    build = sub.add_parser("build", help="regenerate dashboards/json and provisioning files")
    build.add_argument(
        "--tenants", type=Path, default=None, help="tenants file (default: dashboards/tenants.toml)"
    )
    build.add_argument(
        "--check", action="store_true", help="only report stale generated files; exit 1 if any"
    )
    build.set_defaults(func=run_build)

    deploy = sub.add_parser(
        "deploy",
        help="create folders, teams, permissions, datasources and dashboards via the HTTP API",
    )
    deploy.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    deploy.add_argument(
        "--token",
        default=os.environ.get("SLEDFLEET_GRAFANA_TOKEN", ""),
        help="service account token (default: $SLEDFLEET_GRAFANA_TOKEN)",
    )
    deploy.add_argument("--tenants", type=Path, default=None)
    deploy.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    deploy.set_defaults(func=run_deploy)


def run_build(args: argparse.Namespace) -> int:
    from dashboards import build

    tenants = tenants_mod.load(args.tenants)
    if args.check:
        bad = build.stale(tenants)
        for path in bad:
            print(f"stale: {path}", file=sys.stderr)
        if bad:
            print("run `sledfleet dashboards build` and commit the result", file=sys.stderr)
        return 1 if bad else 0
    changed = build.write(tenants)
    print(f"{len(changed)} file(s) changed")
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    from dashboards import deploy

    if not args.token:
        print(
            "sledfleet dashboards deploy: --token or SLEDFLEET_GRAFANA_TOKEN is required",
            file=sys.stderr,
        )
        return 2
    from grafana_client.client import GrafanaException

    tenants = tenants_mod.load(args.tenants)
    try:
        actions = deploy.deploy(args.url, args.token, tenants, dry_run=args.dry_run)
    except (GrafanaException, OSError, RuntimeError) as exc:
        # OSError covers niquests' connection errors; RuntimeError: a password is unset
        print(f"sledfleet dashboards deploy: {args.url}: {exc}", file=sys.stderr)
        return 1
    for action in actions:
        print(action.describe())
    print(
        f"{sum(1 for a in actions if a.op != 'noop')} change(s)"
        + (" planned (dry run)" if args.dry_run else " applied")
    )
    return 0
