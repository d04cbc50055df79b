"""METRICS.md's matching: brand mentions, own accounts, social referrals (r2: app referrers)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ingest.config import Config

from .insight import app_network

NETWORK_DOMAINS: dict[str, tuple[str, ...]] = {
    "facebook": ("facebook.com", "fb.com", "fb.me"),
    "instagram": ("instagram.com",),
    "threads": ("threads.net", "threads.com"),
    "x": ("x.com", "twitter.com", "t.co"),
    "linkedin": ("linkedin.com", "lnkd.in"),
    "reddit": ("reddit.com", "redd.it"),
    "bluesky": ("bsky.app", "go.bsky.app"),
    "mastodon": ("mastodon.social", "mastodon.online"),
    "youtube": ("youtube.com", "youtu.be"),
    "pinterest": ("pinterest.com",),
    "tiktok": ("tiktok.com",),
    "tumblr": ("tumblr.com",),
    "hackernews": ("news.ycombinator.com",),
    "whatsapp": ("whatsapp.com", "wa.me"),
    "telegram": ("t.me", "telegram.me", "telegram.org"),
    # a few of GA4's other social sources
    "other_social": ("quora.com", "vk.com", "weibo.com", "flickr.com", "goodreads.com"),
}
UTM_SOURCES = {
    "facebook": "facebook", "fb": "facebook", "ig": "instagram", "instagram": "instagram",
    "threads": "threads", "x": "x", "twitter": "x", "t.co": "x", "linkedin": "linkedin",
    "lnkd.in": "linkedin", "reddit": "reddit", "bluesky": "bluesky", "bsky": "bluesky",
    "mastodon": "mastodon", "youtube": "youtube", "pinterest": "pinterest", "tiktok": "tiktok",
    "hackernews": "hackernews", "hn": "hackernews", "whatsapp": "whatsapp", "telegram": "telegram",
}  # fmt: skip
SOCIAL_MEDIUMS = {
    "social", "social-network", "social-media", "sm", "social network", "social media",
    "paid_social", "paid-social", "paidsocial",
}  # fmt: skip


def host_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def under(host: str, domains: Any) -> bool:
    """``host`` is one of ``domains`` or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


def strip_www(host: str) -> str:
    return host[4:] if host.startswith("www.") else host


class Rules:
    """The tracking configuration, ready to match events."""

    def __init__(self, config: Config) -> None:
        self.brands = [b.name for b in config.brands]
        self.terms: dict[str, re.Pattern[str] | None] = {}
        self.hashtags = {b.name: {h.lower() for h in b.hashtags} for b in config.brands}
        self.domains = {b.name: [d.lower() for d in b.domains] for b in config.brands}
        self.accounts = {
            b.name: {p: set(ids) for p, ids in b.accounts.items()} for b in config.brands
        }
        for b in config.brands:
            # a phrase matches across any whitespace; \w decides the word boundaries
            alts = [r"\s+".join(map(re.escape, t.split())) for t in b.terms if t.strip()]
            self.terms[b.name] = (
                re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)
                if alts
                else None
            )
        self.sites = {s.name: [d.lower() for d in s.domains] for s in config.sites}
        self.networks = {n: list(ds) for n, ds in NETWORK_DOMAINS.items()}
        for n, extra in config.networks.extra_domains.items():
            self.networks.setdefault(n, []).extend(d.lower() for d in extra)

    def authored(self, platform: str, author_id: str | None) -> set[str]:
        """Brands that own the account ``author_id`` on ``platform``."""
        if author_id is None:
            return set()
        return {b for b in self.brands if author_id in self.accounts[b].get(platform, ())}

    def post_mentions(self, post: dict[str, Any]) -> set[str]:
        p = post["platform"]
        text = post.get("text") or ""
        tags = {h.lower() for h in post.get("hashtags") or []}
        hosts = [h for h in map(host_of, post.get("links") or []) if h]
        refs = self.authored(p, post.get("reply_to_author_id")) | self.authored(
            p, post.get("quote_of_author_id")
        )
        found = set()
        for b in self.brands:
            term = self.terms[b]
            if (
                (term is not None and term.search(text))
                or tags & self.hashtags[b]
                or any(under(h, self.domains[b]) for h in hosts)
                or b in refs
            ):
                found.add(b)
        return found - self.authored(p, post["author"]["id"])  # own activity

    def network_of(self, host: str) -> str | None:
        for n, domains in self.networks.items():
            if under(host, domains):
                return n
        return None

    def social_referral(self, pv: dict[str, Any]) -> str | None:
        """The network a pageview is a social referral from, or None."""
        ref = host_of(pv.get("referrer"))
        own = self.sites.get(pv["site"], [])
        if ref is not None and (under(ref, own) or under(strip_www(ref), own)):
            return None
        utm = pv.get("utm") or {}
        source = (utm.get("source") or "").lower()
        medium = (utm.get("medium") or "").lower()
        if source:
            n = UTM_SOURCES.get(source) or self.network_of(source)
            if n is not None and (medium == "" or medium in SOCIAL_MEDIUMS):
                return n
        app = app_network(pv.get("referrer"))  # step 2: an app referrer, or the referrer host
        if app is not None:
            return app
        return self.network_of(strip_www(ref)) if ref is not None else None
