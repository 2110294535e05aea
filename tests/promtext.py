"""Parse a /metrics body with prometheus_client's own parser (tests of every role use it)."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, tuple[str, str]], Samples]:
    """(family name -> (type, help), (sample name, labels) -> value).

    The parser raises on malformed exposition text (bad escaping, a sample before its
    TYPE line of another family, duplicate families), which is part of what is tested."""
    families: dict[str, tuple[str, str]] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"family {family.name} exposed twice"
        families[family.name] = (family.type, family.documentation)
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(port: int, host: str = "127.0.0.1") -> tuple[dict[str, tuple[str, str]], Samples]:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(resp.read().decode())


def check_names(families: dict[str, tuple[str, str]], role: str) -> None:
    """Every family is ``sledfleet_<role>_...``, typed and documented."""
    for name, (kind, help_text) in families.items():
        assert name.startswith(f"sledfleet_{role}_"), name
        assert kind in {"counter", "gauge", "histogram", "summary"}, (name, kind)
        assert help_text, f"{name} has no HELP"
