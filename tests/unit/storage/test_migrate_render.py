"""Migration rendering and discovery (pure)."""

from __future__ import annotations

import pytest

from storage.migrate import _BLOCK_RE, MigrationError, discover, render

TEXT = """CREATE TABLE t (a int)
-- [postgres]
PARTITION BY RANGE (a)
-- [end]
;
-- [timescale]
SELECT create_hypertable('t', 'a');
-- [postgres]
SELECT 'pg';
-- [end]
SELECT 'both';
"""


def test_render_keeps_common_lines_and_own_blocks() -> None:
    pg = render(TEXT, "postgres")
    ts = render(TEXT, "timescale")
    assert "PARTITION BY" in pg
    assert "create_hypertable" not in pg
    assert "'pg'" in pg
    assert "PARTITION BY" not in ts
    assert "create_hypertable" in ts
    assert "'pg'" not in ts
    assert "'both'" in pg
    assert "'both'" in ts
    assert "[end]" not in pg + ts


def test_render_rejects_unbalanced_blocks() -> None:
    with pytest.raises(MigrationError):
        render("-- [postgres]\nSELECT 1;\n", "postgres")
    with pytest.raises(MigrationError):
        render("SELECT 1;\n-- [end]\n", "postgres")


def test_shipped_migrations_are_numbered_and_render_for_both_flavours() -> None:
    found = discover()
    versions = [m.version for m in found]
    # unique and increasing; a branch may hold a later number while earlier ones assigned to
    # other branches are not merged yet (they fill the gap)
    assert versions == sorted(set(versions))
    assert versions[0] == 1
    for m in found:
        for flavour in ("postgres", "timescale"):
            text = m.sql(flavour)  # type: ignore[arg-type]
            assert not any(_BLOCK_RE.match(line) for line in text.splitlines())


def _code(text: str) -> str:
    return "\n".join(line.split("--")[0] for line in text.splitlines())


def test_timescale_sql_uses_time_bucket_and_postgres_date_bin() -> None:
    aggs = next(m for m in discover() if m.name == "aggregates")
    assert "date_bin" not in _code(aggs.sql("timescale"))
    assert "time_bucket" not in _code(aggs.sql("postgres"))
    assert "timescaledb.materialized_only = false" in aggs.sql("timescale")
