"""Social referral classification (METRICS.md rules 1 and 2, own-site referrers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.core.networks import (
    DATA,
    NETWORKS,
    NetworkClassifier,
    build_domain_table,
    default_domain_table,
)

C = NetworkClassifier({"mastodon": ["fosstodon.org"]})
OWN = ("acme.com", "www.acme.com")
GA4 = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "fixtures"
    / "ga4"
    / "ga4_source_categories.csv"
)


@pytest.mark.parametrize(
    ("source", "medium", "referrer", "expected"),
    [
        ("bsky", "social", None, "bluesky"),
        ("fb", None, None, "facebook"),
        ("IG", "Social Media", None, "instagram"),
        ("t.co", "paid-social", None, "x"),
        ("twitter", "paidsocial", None, "x"),
        ("hn", "sm", None, "hackernews"),
        ("lnkd.in", "social-network", None, "linkedin"),
        ("news.ycombinator.com", None, None, "hackernews"),  # a domain of the network
        ("www.reddit.com", None, None, "reddit"),
        ("facebook", "email", None, None),  # medium not social: rule 1 fails, no referrer
        ("facebook", "email", "https://t.co/abc", "x"),  # rule 2 decides then
        ("x", "social", "https://l.facebook.com/", "x"),  # utm first
        ("newsletter", None, "https://bsky.app/profile/a", "bluesky"),
        ("tumblr", "social", None, None),  # not a listed utm name nor a domain
        (None, None, "https://l.facebook.com/l.php?u=x", "facebook"),
        (None, None, "https://www.linkedin.com/feed", "linkedin"),
        (None, None, "https://go.bsky.app/x", "bluesky"),
        (None, None, "https://x.com/a/status/1", "x"),
        (None, None, "https://m.youtube.com/watch", "youtube"),
        (None, None, "https://fosstodon.org/@a/1", "mastodon"),  # configured extra domain
        (None, None, "https://vk.com/wall", "other_social"),
        (None, None, "https://www.google.com/search", None),
        (None, None, "https://notfacebook.com/", None),
        (None, None, None, None),
        (None, None, "android-app://com.slack", None),
        (None, None, "https://acme.com/other-page", None),  # own site
        ("facebook", "social", "https://www.acme.com/", None),  # own-site referrer is never social
        (None, None, "https://blog.acme.com/", None),
    ],
)
def test_referral_network(
    source: str | None, medium: str | None, referrer: str | None, expected: str | None
) -> None:
    assert C.referral_network(source, medium, referrer, OWN) == expected


def test_every_mapped_network_is_a_known_network() -> None:
    assert set(default_domain_table().values()) <= set(NETWORKS)


def test_committed_table_is_what_the_builder_makes_from_ga4() -> None:
    table = build_domain_table(GA4)
    assert table == default_domain_table(), (
        f"regenerate {DATA} with python -m processors.core.networks {GA4}"
    )
    # GA4's social list is covered, plus the networks it lacks.
    assert {"x.com", "bsky.app", "threads.net", "mastodon.social", "youtube.com"} <= set(table)


def test_unknown_extra_network_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown network"):
        NetworkClassifier({"myspace": ["myspace.com"]})
