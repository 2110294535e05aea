"""Fixtures shared by every test (unit and integration).

Settings fixtures only build settings objects (no network): integration tests get them
through tests/integration/conftest.py, which also checks that the server is reachable.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}
"""With CI=true a missing service is a test failure, never a skip."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration is marked ``integration``."""
    integration_dir = REPO_ROOT / "tests" / "integration"
    for item in items:
        if integration_dir in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def unique() -> str:
    """A short id unique to this test: topic prefixes, client ids, database names."""
    return uuid.uuid4().hex[:10]
