"""What the configuration tracks, as coarse filters for the platforms.

Sources turn ``TrackedTerms`` into whatever server-side filter their platform offers (X
stream rules, Mastodon hashtag streams, Jetstream ``wantedDids``, Reddit/HN search
queries) so the firehose is not shipped whole, and may use ``matches`` to drop what the
platform could not filter. The processors apply the exact METRICS.md rules afterwards:
this filter only has to keep everything they could count (it may keep more).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ingest.config import Config


def _norm_tag(tag: str) -> str:
    return tag.strip().lstrip("#").lower()


def _norm_account(account: str) -> str:
    return account.strip().lstrip("@").lower()


@dataclass(frozen=True)
class TrackedTerms:
    """Brand and campaign terms, hashtags, domains and per-platform accounts (lower-case)."""

    terms: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> TrackedTerms:
        terms: list[str] = []
        tags: list[str] = []
        domains: list[str] = []
        accounts: dict[str, list[str]] = {}
        for brand in config.brands:
            terms += brand.terms
            tags += brand.hashtags
            domains += brand.domains
            for platform, names in brand.accounts.items():
                accounts.setdefault(platform, []).extend(names)
        for campaign in config.campaigns:
            terms += campaign.terms
            tags += campaign.hashtags
        return cls(
            terms=_unique(t.strip().lower() for t in terms if t.strip()),
            hashtags=_unique(_norm_tag(t) for t in tags if _norm_tag(t)),
            domains=_unique(d.strip().lower().removeprefix("www.") for d in domains if d.strip()),
            accounts={
                p: _unique(_norm_account(a) for a in v if a.strip()) for p, v in accounts.items()
            },
        )

    @property
    def empty(self) -> bool:
        return not (self.terms or self.hashtags or self.domains or any(self.accounts.values()))

    def accounts_for(self, platform: str) -> tuple[str, ...]:
        return self.accounts.get(platform, ())

    def matches(
        self,
        text: str = "",
        hashtags: Iterable[str] = (),
        links: Iterable[str] = (),
        authors: Iterable[str | None] = (),
        platform: str = "",
    ) -> bool:
        """True when anything tracked appears (always True when nothing is tracked)."""
        if self.empty:
            return True
        if self.hashtags and not set(self.hashtags).isdisjoint(_norm_tag(h) for h in hashtags):
            return True
        lowered = text.lower()
        if any(_term_re(t).search(lowered) for t in self.terms):
            return True
        if self.domains:
            for link in links:
                host = (urlsplit(link).hostname or "").lower()
                if any(host == d or host.endswith("." + d) for d in self.domains):
                    return True
            if any(d in lowered for d in self.domains):
                return True
        mine = self.accounts_for(platform) if platform else ()
        return bool(mine) and any(a is not None and _norm_account(a) in mine for a in authors)


_TERM_CACHE: dict[str, re.Pattern[str]] = {}


def _term_re(term: str) -> re.Pattern[str]:
    # Whole-word match so "acme" does not match "acmeville"; terms are lower-case already.
    pat = _TERM_CACHE.get(term)
    if pat is None:
        pat = _TERM_CACHE[term] = re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)")
    return pat


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
