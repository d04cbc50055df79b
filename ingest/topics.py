"""Topic names: everything derives from the namespace (default ``ripple``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    namespace: str = "ripple"

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dlq(self) -> str:
        return f"{self.namespace}.dlq"

    @property
    def results(self) -> str:
        return f"{self.namespace}.results"

    @property
    def alerts(self) -> str:
        return f"{self.namespace}.alerts"

    def internal(self, name: str) -> str:
        """A processors' internal topic, e.g. ``ripple.proc.batches``."""
        return f"{self.namespace}.proc.{name}"
