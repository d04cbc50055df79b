"""METRICS.md r2 "Insight metrics": sentiment labels, top lists, app referrers, paid media."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

SENTIMENTS = ("positive", "negative", "neutral", "unrated")
TOP_SIZE = 10

APP_PACKAGES = {
    "com.twitter.android": "x",
    "com.facebook.katana": "facebook",
    "com.facebook.lite": "facebook",
    "com.instagram.android": "instagram",
    "com.linkedin.android": "linkedin",
    "com.reddit.frontpage": "reddit",
    "xyz.blueskyweb.app": "bluesky",
    "org.joinmastodon.android": "mastodon",
    "com.google.android.youtube": "youtube",
    "com.pinterest": "pinterest",
    "com.zhiliaoapp.musically": "tiktok",
    "org.telegram.messenger": "telegram",
    "com.whatsapp": "whatsapp",
    "com.instagram.barcelona": "threads",
}
PAID_MEDIUMS = {"paid_social", "paid-social", "paidsocial", "cpc", "ppc"}
_APP = "android-app://"


def app_network(referrer: str | None) -> str | None:
    """The network of an ``android-app://<package>[/...]`` referrer, or None."""
    if not referrer or referrer[: len(_APP)].lower() != _APP:
        return None
    return APP_PACKAGES.get(referrer[len(_APP) :].split("/", 1)[0])


def is_paid(medium: str) -> bool:
    """``medium`` is lower-cased already (EVENTS.md); "" is an absent medium."""
    return medium in PAID_MEDIUMS or medium.startswith("paid")


Scorer = Callable[[str], float]


def scorer(name: str) -> Scorer:
    """The compound score function of ``[sentiment] scorer``."""
    if name != "vader":
        raise ValueError(f"the reference knows only the vader scorer, not {name!r}")
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    @cache
    def compound(text: str) -> float:
        return float(analyzer.polarity_scores(text)["compound"])

    return compound


def english(lang: str | None) -> bool:
    return lang is None or lang.lower() == "en" or lang.lower().startswith("en-")


def sentiment(post: dict[str, Any], score: Scorer) -> str:
    """The label of a post that mentions a brand."""
    text = post.get("text") or ""
    if not english(post.get("lang")) or text == "":
        return "unrated"
    c = score(text)
    return "positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral"


def link_key(url: str) -> str:
    """A link as top_links names it: cut at its first ``#``."""
    return url.split("#", 1)[0]


def ranked(
    values: dict[str, int], followers: dict[str, int] | None = None
) -> list[tuple[str, str, int]]:
    """(rank, key, value) of the top entries: by followers (top_authors) then value, both
    descending, ties by key ascending; at most 10, each with a value of at least 1."""
    order = sorted(
        (k for k, v in values.items() if v >= 1),
        key=lambda k: (-(followers or {}).get(k, 0), -values[k], k),
    )
    return [(str(i + 1), k, values[k]) for i, k in enumerate(order[:TOP_SIZE])]
