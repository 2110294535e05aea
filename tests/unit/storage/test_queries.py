"""Named SQL files load by name (pure)."""

from __future__ import annotations

import pytest

from storage import queries


def test_named_queries_load_and_unknown_names_fail() -> None:
    assert "table_stats" in queries.names()
    assert "pg_inherits" in queries.load("table_stats")
    with pytest.raises(KeyError):
        queries.load("../migrations/0001_core")
