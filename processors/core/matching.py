"""Brand and campaign matching (METRICS.md "Tracking configuration").

Compiled once from the tracking configuration; applied in the processors so that a replay
with new rules recomputes history. Only facts carried by the event itself are decided
here; what depends on a target post (reshares, engagements) is resolved in
``processors.aggregate`` with the target index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.config import Config
from processors.core.networks import domain_match, host_of

EMPTY: frozenset[str] = frozenset()


def term_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """Case-insensitive, on word boundaries: ``acme`` matches "Acme!" and "#acme" but not
    "acmegrowth". Whitespace inside a phrase matches any run of whitespace."""
    alts = [r"\s+".join(map(re.escape, t.split())) for t in terms if t.strip()]
    if not alts:
        return None
    alts.sort(key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


@dataclass(frozen=True)
class _BrandRule:
    name: str
    terms: re.Pattern[str] | None
    hashtags: frozenset[str]
    domains: tuple[str, ...]


@dataclass(frozen=True)
class _CampaignRule:
    name: str
    brand: str
    terms: re.Pattern[str] | None
    hashtags: frozenset[str]
    utm_campaigns: frozenset[str]


class Tracker:
    """The compiled tracking configuration."""

    def __init__(self, config: Config) -> None:
        self.brands = tuple(b.name for b in config.brands)
        self._rules = tuple(
            _BrandRule(
                b.name,
                term_pattern(b.terms),
                frozenset(h.lower().lstrip("#") for h in b.hashtags),
                tuple(d.lower().strip(".") for d in b.domains),
            )
            for b in config.brands
        )
        # (platform, account id) -> brands owning it
        self._accounts: dict[tuple[str, str], frozenset[str]] = {}
        for b in config.brands:
            for platform, ids in b.accounts.items():
                for acct in ids:
                    key = (platform, str(acct))
                    self._accounts[key] = self._accounts.get(key, EMPTY) | {b.name}
        self._campaigns = tuple(
            _CampaignRule(
                c.name,
                c.brand,
                term_pattern(c.terms),
                frozenset(h.lower().lstrip("#") for h in c.hashtags),
                frozenset(u.lower() for u in c.utm_campaign),
            )
            for c in config.campaigns
        )
        self.has_campaigns = bool(self._campaigns)
        self.sites = {s.name: tuple(d.lower() for d in s.domains) for s in config.sites}

    def owners(self, platform: str, author_id: str | None) -> frozenset[str]:
        """Brands whose account wrote this (own activity)."""
        if author_id is None:
            return EMPTY
        return self._accounts.get((platform, author_id), EMPTY)

    def content_mentions(
        self,
        platform: str,
        text: str,
        hashtags: Iterable[str],
        links: Iterable[str],
        reply_to_author_id: str | None,
        quote_of_author_id: str | None,
    ) -> frozenset[str]:
        """Brands a post mentions by its own content, before own-activity exclusion."""
        tags = {h.lower().lstrip("#") for h in hashtags}
        hosts = [h for h in (host_of(u) for u in links) if h]
        found = set(
            self.owners(platform, reply_to_author_id) | self.owners(platform, quote_of_author_id)
        )
        for r in self._rules:
            if r.name in found:
                continue
            if (
                (r.hashtags and not r.hashtags.isdisjoint(tags))
                or (r.domains and any(domain_match(h, r.domains) for h in hosts))
                or (r.terms is not None and r.terms.search(text))
            ):
                found.add(r.name)
        return frozenset(found)

    def campaigns_of_post(self, text: str, hashtags: Iterable[str]) -> frozenset[str]:
        tags = {h.lower().lstrip("#") for h in hashtags}
        return frozenset(
            c.name
            for c in self._campaigns
            if (c.hashtags and not c.hashtags.isdisjoint(tags))
            or (c.terms is not None and c.terms.search(text))
        )

    def campaigns_of_utm(self, utm_campaign: str | None) -> frozenset[str]:
        if not utm_campaign:
            return EMPTY
        u = utm_campaign.strip().lower()
        return frozenset(c.name for c in self._campaigns if u in c.utm_campaigns)
