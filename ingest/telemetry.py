"""Prometheus objects for the metric definitions, created once per process."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from ingest.metricdefs import MetricDef

_created: dict[str, Counter | Gauge | Histogram] = {}


def metric(defn: MetricDef) -> Counter | Gauge | Histogram:
    """The process-wide collector for ``defn`` (created on first use)."""
    obj = _created.get(defn.name)
    if obj is None:
        obj = _created[defn.name] = defn.create(REGISTRY)
    return obj


def counter(defn: MetricDef) -> Counter:
    assert defn.type == "counter", defn.name
    obj = metric(defn)
    assert isinstance(obj, Counter)
    return obj


def gauge(defn: MetricDef) -> Gauge:
    assert defn.type == "gauge", defn.name
    obj = metric(defn)
    assert isinstance(obj, Gauge)
    return obj


def histogram(defn: MetricDef) -> Histogram:
    assert defn.type == "histogram", defn.name
    obj = metric(defn)
    assert isinstance(obj, Histogram)
    return obj
