"""Prometheus text exposition for the hub API and the node RPC (``GET /metrics``), built from
values read at scrape time: nothing is counted twice, nothing runs between scrapes.

prometheus_client writes the format (escaping, ``# HELP``/``# TYPE``, ``_total``); its default
registry (process and platform collectors) is not used, so a scrape shows the same families on
every platform.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST


def gauge(name: str, doc: str, value: float | None = None, *, label: str | None = None,
          values: Mapping[str, float] | None = None) -> GaugeMetricFamily:
    """One value, or one sample per ``label`` value (``values``)."""
    if label is None:
        return GaugeMetricFamily(name, doc, value=value if value is not None else 0)
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, v in sorted((values or {}).items()):
        family.add_metric([str(key)], v)
    return family


def counter(name: str, doc: str, value: float | None = None, *, label: str | None = None,
            values: Mapping[str, float] | None = None) -> CounterMetricFamily:
    """``name`` without ``_total``, which the format adds."""
    if label is None:
        return CounterMetricFamily(name, doc, value=value if value is not None else 0)
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, v in sorted((values or {}).items()):
        family.add_metric([str(key)], v)
    return family


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def render(families: Iterable[Metric]) -> bytes:
    return generate_latest(_Families(families))  # type: ignore[arg-type]


__all__ = ["CONTENT_TYPE", "counter", "gauge", "render"]
