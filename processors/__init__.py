"""The processors: METRICS.md computed from ``<ns>.events``.

``catalogue`` (every metric and alert) and ``wire`` (every internal record) are shared by
all; ``core`` is the pure computation, ``job`` the faust streaming job that drives it over
Kafka, ``history`` the tools over recorded streams (replay, archive, backfill), and
``harness`` runs the core in-process, without Kafka."""
