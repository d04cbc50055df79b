"""RSS and Atom documents → canonical events (feedparser); pure functions, no I/O.

Every entry is a ``post``. Its id is ``rss:<native id>`` where the native id is, in order:
the entry's ``<guid>``/``<id>`` when it is an absolute URI (``https://…``, ``tag:…``,
``urn:…``: globally unique by the RSS and Atom specs; feedparser resolves a relative Atom
``<id>`` against the feed), else ``<feed url>#<guid>`` (a bare RSS guid is only unique
within its feed), else the entry's link, else ``<feed url>#sha1:<digest
of title and date>``. The author is the feed: ``id`` is the feed URL (so a brand lists its
own feeds under ``[brands.accounts] rss = [...]``), ``handle`` the entry's (or the feed's)
author name, ``followers`` null. ``ts`` is the published (else updated) date, or the time the
entry was first seen when it has none. Text is the title and the body (full content when
given, else the summary) as plain text; links are the entry link and the body's links,
relative ones resolved against the feed.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import xml.sax
from dataclasses import dataclass, field
from typing import Any

import feedparser

from ingest.events import Author, Event, InvalidEvent, Post, format_ts
from ingest.sources.base import Rejected
from ingest.sources.htmltext import hashtags, html_links, html_to_text
from ingest.sources.textutil import unique

MAX_TEXT = 15360
MAX_LINKS = 100


@dataclass
class Entry:
    key: str  # the native id, as remembered between polls
    result: Event | Rejected


@dataclass
class FeedPage:
    entries: list[Entry] = field(default_factory=list)
    broken: str | None = None  # XML error feedparser recovered from, if any

    @property
    def events(self) -> list[Event]:
        return [e.result for e in self.entries if isinstance(e.result, Post)]

    @property
    def rejected(self) -> list[Rejected]:
        return [e.result for e in self.entries if isinstance(e.result, Rejected)]


def native_id(entry: Any, feed_url: str) -> str | None:
    guid = (entry.get("id") or "").strip()
    if guid and _is_absolute_uri(guid):
        return guid
    if guid:
        return f"{feed_url}#{guid}"
    link = (entry.get("link") or "").strip()
    if link:
        return link
    title = (entry.get("title") or "").strip()
    date = entry.get("published") or entry.get("updated") or ""
    if not title and not date:
        return None
    digest = hashlib.sha1(f"{title}\x00{date}".encode()).hexdigest()[:20]
    return f"{feed_url}#sha1:{digest}"


def _is_absolute_uri(value: str) -> bool:
    scheme, sep, rest = value.partition(":")
    return bool(sep and rest and scheme.isascii() and scheme[:1].isalpha()) and (
        scheme.lower() in ("http", "https", "tag", "urn", "ni", "ark") or rest.startswith("//")
    )


def parse_feed(
    body: bytes,
    feed_url: str,
    now: float,
    *,
    content_type: str = "application/xml",
    max_text: int = MAX_TEXT,
) -> FeedPage:
    """One fetched document. Raises ``InvalidEvent`` when it is no feed at all; an entry
    without anything to identify it becomes a ``Rejected`` with its parsed fields."""
    doc = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-location": feed_url, "content-type": content_type},
        sanitize_html=False,  # only text and link targets are kept, never the markup
    )
    error = doc.get("bozo_exception") if doc.get("bozo") else None
    xml_error = isinstance(error, xml.sax.SAXException)
    if not doc.get("version") and not doc.entries:
        if xml_error:
            raise InvalidEvent("invalid_xml", f"rss {feed_url}: {error}")
        raise InvalidEvent("bad_payload", f"rss {feed_url}: not an RSS or Atom feed")
    feed = doc.get("feed", {})
    page = FeedPage(broken=str(error) if xml_error else None)
    ingested = format_ts(now)
    for entry in doc.entries:
        key = native_id(entry, feed_url)
        if key is None and xml_error:
            continue  # a fragment of a broken document, which itself goes to the DLQ
        if key is None:
            raw = json.dumps(entry, default=str, sort_keys=True).encode()
            digest = "raw:" + hashlib.sha1(raw).hexdigest()[:20]
            detail = f"rss {feed_url}: entry without guid, link, title or date"
            page.entries.append(Entry(digest, Rejected(raw, "missing_field", detail)))
            continue
        page.entries.append(Entry(key, _post(entry, feed, key, feed_url, now, ingested, max_text)))
    return page


def _post(
    entry: Any, feed: Any, key: str, feed_url: str, now: float, ingested: str, max_text: int
) -> Post:
    when = entry.get("published_parsed") or entry.get("updated_parsed")
    ts = calendar.timegm(when) if when else now
    contents = entry.get("content") or []
    body = contents[0].get("value", "") if contents else entry.get("summary", "")
    title = (entry.get("title") or "").strip()
    if "html" in (entry.get("title_detail") or {}).get("type", ""):
        title = html_to_text(title)  # Atom type="html"/"xhtml" titles carry markup
    plain = html_to_text(body)
    text = f"{title}\n\n{plain}" if title and plain else title or plain
    if len(text) > max_text:
        text = text[:max_text]
    link = (entry.get("link") or "").strip() or None
    links = [link] if link and link.startswith(("http://", "https://")) else []
    links += html_links(body)
    detail = entry.get("title_detail") or entry.get("summary_detail") or {}
    lang = detail.get("language") or feed.get("language") or None
    handle = entry.get("author") or feed.get("author") or None
    return Post(
        v=1, id=f"rss:{key}", platform="rss", ts=format_ts(ts), ingested_at=ingested,
        author=Author(id=feed_url, handle=handle, followers=None), text=text, url=link,
        lang=lang, hashtags=hashtags(text), links=unique(links)[:MAX_LINKS],
    )  # fmt: skip
