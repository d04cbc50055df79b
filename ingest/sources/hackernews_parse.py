"""Hacker News payloads → canonical events; pure functions, no I/O.

Three shapes: Algolia search hits (``/search_by_date``), Algolia item trees
(``/items/<id>``) and Firebase items (``/v0/item/<id>.json``). Every item is a ``post``
with id ``hackernews:<item id>``; a comment's ``reply_to`` is ``hackernews:<parent id>``,
with ``reply_to_author_id`` only inside an item tree (hits and Firebase items do not name
the parent's author). Authors are HN usernames (permanent); HN has no followers. Text is
the title (stories, polls, jobs) and the HTML body as plain text; links are the story URL,
the body's link targets and URLs written out in it. Poll options, deleted and dead items
carry nothing to count and are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from ingest.events import Author, Event, InvalidEvent, Post, format_ts
from ingest.sources.base import Rejected
from ingest.sources.htmltext import hashtags, html_links, html_to_text
from ingest.sources.textutil import unique

ITEM_URL = "https://news.ycombinator.com/item?id="
MAX_TEXT = 15360
MAX_LINKS = 100


class _Hit(msgspec.Struct):
    objectID: str  # noqa: N815 - Algolia's name
    created_at_i: int
    author: str
    title: str | None = None
    url: str | None = None
    story_text: str | None = None
    comment_text: str | None = None
    parent_id: int | None = None
    tags: list[str] = msgspec.field(name="_tags", default_factory=list)


class _Search(msgspec.Struct):
    hits: list[msgspec.Raw]
    page: int = 0
    nbPages: int = 0  # noqa: N815
    hitsPerPage: int = 0  # noqa: N815


class _TreeItem(msgspec.Struct):
    id: int
    created_at_i: int
    type: str
    author: str | None = None
    title: str | None = None
    url: str | None = None
    text: str | None = None
    parent_id: int | None = None
    children: list[_TreeItem] = []


class _FirebaseItem(msgspec.Struct):
    id: int
    type: str = ""
    by: str | None = None
    time: int | None = None
    title: str | None = None
    url: str | None = None
    text: str | None = None
    parent: int | None = None
    deleted: bool = False
    dead: bool = False


class _IdOnly(msgspec.Struct):
    objectID: str  # noqa: N815


_hit = msgspec.json.Decoder(_Hit)
_search = msgspec.json.Decoder(_Search)
_tree = msgspec.json.Decoder(_TreeItem)
_item = msgspec.json.Decoder(_FirebaseItem | None)  # type: ignore[arg-type]
_id_only = msgspec.json.Decoder(_IdOnly)


@dataclass
class Hit:
    """One search hit: its object id, creation time, and what it became."""

    object_id: str
    created: int
    result: Event | Rejected | None


@dataclass
class SearchPage:
    hits: list[Hit] = field(default_factory=list)
    page: int = 0
    pages: int = 0

    @property
    def events(self) -> list[Event]:
        return [h.result for h in self.hits if isinstance(h.result, Post)]

    @property
    def rejected(self) -> list[Rejected]:
        return [h.result for h in self.hits if isinstance(h.result, Rejected)]


def _post(
    item_id: int | str,
    author: str,
    created: int,
    title: str | None,
    body_html: str | None,
    url: str | None,
    reply_to: int | None,
    reply_to_author: str | None,
    ingested: str,
    max_text: int,
) -> Post:
    body = html_to_text(body_html)
    text = title or ""
    if body:
        text = f"{text}\n\n{body}" if text else body
    if len(text) > max_text:
        text = text[:max_text]
    links = [url] if url and url.startswith(("http://", "https://")) else []
    links += html_links(body_html)
    return Post(
        v=1, id=f"hackernews:{item_id}", platform="hackernews", ts=format_ts(created),
        ingested_at=ingested, author=Author(id=author, handle=author, followers=None),
        text=text, url=f"{ITEM_URL}{item_id}", lang=None, hashtags=hashtags(text),
        links=unique(links)[:MAX_LINKS],
        reply_to=f"hackernews:{reply_to}" if reply_to is not None else None,
        reply_to_author_id=reply_to_author,
    )  # fmt: skip


def _reject(raw: bytes, exc: Exception) -> Rejected:
    msg = str(exc)
    if msg.startswith("Object missing required field"):
        reason = "missing_field"
    elif isinstance(exc, msgspec.ValidationError):
        reason = "wrong_type"
    elif isinstance(exc, msgspec.DecodeError):
        reason = "invalid_json"
    else:
        reason = "bad_value"
    return Rejected(raw=raw, reason=reason, detail=f"hackernews: {msg}")


# --- Algolia search -------------------------------------------------------------------


def parse_hit(raw: bytes, ingested: str, max_text: int = MAX_TEXT) -> Hit:
    """One Algolia hit; a malformed one becomes a ``Rejected`` (never raises)."""
    try:
        h = _hit.decode(raw)
        if h.created_at_i < 0:
            raise ValueError(f"created_at_i is negative: {h.created_at_i}")
        if "pollopt" in h.tags:
            return Hit(h.objectID, h.created_at_i, None)
        if "comment" in h.tags:
            if h.parent_id is None:
                raise ValueError("comment without parent_id")
            post = _post(
                h.objectID, h.author, h.created_at_i, None, h.comment_text, None,
                h.parent_id, None, ingested, max_text,
            )  # fmt: skip
        else:
            post = _post(
                h.objectID, h.author, h.created_at_i, h.title, h.story_text, h.url,
                None, None, ingested, max_text,
            )  # fmt: skip
        return Hit(h.objectID, h.created_at_i, post)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        return Hit(_object_id(raw), -1, _reject(raw, exc))


def _object_id(raw: bytes) -> str:
    try:
        return _id_only.decode(raw).objectID
    except (msgspec.ValidationError, msgspec.DecodeError):
        return "raw:" + hashlib.sha1(raw).hexdigest()[:16]


def parse_search(body: bytes, now: float, *, max_text: int = MAX_TEXT) -> SearchPage:
    """An Algolia ``/search`` or ``/search_by_date`` answer; raises ``InvalidEvent`` when the
    body is not one, keeps malformed hits as ``Rejected``."""
    try:
        page = _search.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidEvent("bad_payload", f"not an Algolia search answer: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)) from None
    ingested = format_ts(now)
    return SearchPage(
        hits=[parse_hit(bytes(raw), ingested, max_text) for raw in page.hits],
        page=page.page,
        pages=page.nbPages,
    )


# --- Algolia item tree ----------------------------------------------------------------


def parse_item_tree(body: bytes, now: float, *, max_text: int = MAX_TEXT) -> list[Event]:
    """An Algolia ``/items/<id>`` tree: the item and every descendant, parents first."""
    try:
        root = _tree.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidEvent("bad_payload", f"not an Algolia item: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)) from None
    ingested = format_ts(now)
    return list(_walk(root, None, ingested, max_text))


def _walk(
    item: _TreeItem, parent_author: str | None, ingested: str, max_text: int
) -> Iterator[Event]:
    if item.author and item.type != "pollopt":
        is_comment = item.type == "comment"
        yield _post(
            item.id, item.author, item.created_at_i, None if is_comment else item.title,
            item.text, item.url, item.parent_id if is_comment else None,
            parent_author if is_comment else None, ingested, max_text,
        )  # fmt: skip
    for child in item.children:
        yield from _walk(child, item.author, ingested, max_text)


# --- Firebase ---------------------------------------------------------------------------


def parse_firebase_item(body: bytes, now: float, *, max_text: int = MAX_TEXT) -> Event | None:
    """A Firebase ``/item/<id>.json``; None for null, deleted, dead items and poll options."""
    try:
        item = _item.decode(body)
    except msgspec.ValidationError as exc:
        reason = "missing_field" if str(exc).startswith("Object missing") else "wrong_type"
        raise InvalidEvent(reason, f"hackernews: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)) from None
    if item is None or item.deleted or item.dead or item.type == "pollopt":
        return None
    if not item.by or item.time is None:
        raise InvalidEvent("missing_field", f"hackernews: item {item.id} without by/time")
    if item.type == "comment":
        if item.parent is None:
            raise InvalidEvent("missing_field", f"hackernews: comment {item.id} without parent")
        return _post(
            item.id, item.by, item.time, None, item.text, None, item.parent, None,
            format_ts(now), max_text,
        )  # fmt: skip
    return _post(
        item.id, item.by, item.time, item.title, item.text, item.url, None, None,
        format_ts(now), max_text,
    )  # fmt: skip
