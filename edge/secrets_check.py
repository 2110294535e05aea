"""``sledfleet secrets check``: refuse to start a deployment whose secrets are placeholders.

docker-compose runs it first (service ``secrets-check``, every other service waits for it to
succeed) over the per-service env files in ``secrets/env/``: a value still containing
``change-me``, or an empty password/token/secret/URL value, fails it with the file and the
variable named (never the value). Every SledFleet process also refuses a ``change-me``
secret when it reads its settings (``edge/settings.py``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Final

PLACEHOLDER: Final = "change-me"
SECRET_NAME: Final = re.compile(r"PASSWORD|TOKEN|SECRET|_URL$|CLUSTER_ID")


def problems(env_dir: Path) -> list[str]:
    """``<file>: <variable> <why>`` for each placeholder or empty secret; [] when clean."""
    files = sorted(env_dir.glob("*.env"))
    if not files:
        return [f"{env_dir}: no *.env files (copy services/docker/env.example first)"]
    out = []
    for path in files:
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, _, value = line.partition("=")
            value = value.strip().strip("'\"")
            if PLACEHOLDER in value.lower():
                out.append(f"{path.name}: {name} is still a {PLACEHOLDER} placeholder")
            elif not value and SECRET_NAME.search(name):
                out.append(f"{path.name}: {name} is empty")
    return out


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=__doc__)
    sub = p.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)
    c = sub.add_parser("check", help="fail when an env file holds a placeholder or empty secret")
    c.add_argument("--dir", default="secrets/env", help="directory of *.env files")
    c.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    found = problems(Path(args.dir))
    for line in found:
        print(f"sledfleet secrets check: {line}", file=sys.stderr)
    return 1 if found else 0
