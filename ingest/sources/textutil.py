"""Links and hashtags out of plain text, for what a platform's entities do not carry."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Scheme-qualified URLs up to whitespace or a closing bracket/quote; trailing punctuation
# that usually ends a sentence is trimmed afterwards.
_URL_RE = re.compile(r"https?://[^\s<>\"'`{}|\\^\[\]()]+", re.IGNORECASE)
_TRAILING = ".,;:!?…'\")]}"
# A hashtag starts after a non-word character; Unicode letters/digits/underscore.
_TAG_RE = re.compile(r"(?:(?<=\s)|^)[#＃](\w+)", re.UNICODE)


def links_in_text(text: str) -> list[str]:
    out: list[str] = []
    for m in _URL_RE.finditer(text):
        url = m.group(0).rstrip(_TRAILING)
        if url.endswith("..."):  # a client-truncated display URL, not a real link
            continue
        if "://" in url and len(url) > url.index("://") + 3:
            out.append(url)
    return out


def hashtags_in_text(text: str) -> list[str]:
    return [t.lower() for t in _TAG_RE.findall(text) if not t.isdigit()]


def unique(items: Iterable[str]) -> list[str]:
    """Order-preserving de-duplication."""
    return list(dict.fromkeys(i for i in items if i))
