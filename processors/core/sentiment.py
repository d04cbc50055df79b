"""Sentiment labels of brand-mentioning posts (METRICS.md r2, "Sentiment").

A scorer turns a post's text into a compound score in [-1, 1]; the label follows from it
(``positive`` at 0.05 or more, ``negative`` at -0.05 or less, ``neutral`` between). Posts
that are not English (``lang`` neither null, ``en`` nor ``en-*``) or have no text are
``unrated`` without being scored. The scorer is named in the configuration
(``[sentiment] scorer``), so a replay with another scorer recomputes history.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import Protocol

POSITIVE = "positive"
NEGATIVE = "negative"
NEUTRAL = "neutral"
UNRATED = "unrated"
LABELS = (POSITIVE, NEGATIVE, NEUTRAL, UNRATED)
THRESHOLD = 0.05


class Scorer(Protocol):
    """What a sentiment scorer offers: one compound score per English text."""

    def compound(self, text: str) -> float: ...


class VaderScorer:
    """VADER (vaderSentiment 3.3.2): ``polarity_scores(text)["compound"]`` on the text as is."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        # ~30 µs a text: the same text (bots, copy-paste campaigns) is scored once.
        self.compound = lru_cache(maxsize=8192)(self._compound)  # type: ignore[method-assign]

    def _compound(self, text: str) -> float:
        return float(self._analyzer.polarity_scores(text)["compound"])

    def compound(self, text: str) -> float:
        return self._compound(text)


SCORERS: dict[str, Callable[[], Scorer]] = {"vader": VaderScorer}


@cache
def scorer(name: str) -> Scorer:
    """The scorer ``name`` (one instance per process: VADER's lexicon takes ~0.2 s to load)."""
    factory = SCORERS.get(name)
    if factory is None:
        raise ValueError(f"sentiment.scorer: unknown scorer {name!r} (known: {sorted(SCORERS)})")
    return factory()


def is_english(lang: str | None) -> bool:
    if lang is None:
        return True
    low = lang.lower()
    return low == "en" or low.startswith("en-")


def label(s: Scorer, text: str, lang: str | None) -> str:
    if not text or not is_english(lang):
        return UNRATED
    c = s.compound(text)
    if c >= THRESHOLD:
        return POSITIVE
    if c <= -THRESHOLD:
        return NEGATIVE
    return NEUTRAL
