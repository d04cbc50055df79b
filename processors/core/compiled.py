"""A tracking configuration compiled for the pure core: what every partition state and the
gate step read (matchers, referral classifier, windowing settings, sentiment scorer,
excluded authors). Built once per worker (``processors.job.context``) or per harness run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.config import Config
from processors.core import sentiment
from processors.core.matching import Tracker
from processors.core.networks import NetworkClassifier
from processors.core.resolve import Settings


@dataclass
class Compiled:
    config: Config
    tracker: Tracker = field(init=False)
    classifier: NetworkClassifier = field(init=False)
    settings: Settings = field(init=False)
    scorer: sentiment.Scorer = field(init=False)
    # (platform, author id) of [filters] exclude_authors
    excluded: frozenset[tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.config)
        self.classifier = NetworkClassifier(self.config.networks.extra_domains)
        p = self.config.processing
        self.settings = Settings(
            lateness=float(p.allowed_lateness_seconds),
            dedupe_seconds=float(p.dedupe_seconds),
            target_retention=float(p.target_retention_seconds),
            attribution=float(p.session_attribution_seconds),
        )
        self.scorer = sentiment.scorer(self.config.sentiment.scorer)
        self.excluded = frozenset(
            (platform, str(author))
            for platform, authors in self.config.filters.exclude_authors.items()
            for author in authors
        )

    @property
    def lateness(self) -> float:
        return self.settings.lateness
