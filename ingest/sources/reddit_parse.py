"""Reddit listings (``raw_json=1``) → canonical events; pure functions, no I/O.

Ids are fullnames, which Reddit itself uses as global ids: a submission is
``reddit:t3_<id>``, a comment ``reddit:t1_<id>``, and a comment's ``reply_to`` is its
``parent_id`` fullname (``t3_`` for a top-level comment, ``t1_`` for a reply). Authors are
usernames (permanent on Reddit and what ``[brands.accounts] reddit = [...]`` lists);
listings carry no follower counts. A top-level comment's ``reply_to_author_id`` is the
listing's ``link_author``; a nested reply's is known only inside a ``/comments/<id>`` tree.
A submission with ``crosspost_parent`` is a ``reshare`` of that post.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import msgspec

from ingest.events import Author, Event, InvalidEvent, Post, Reshare, format_ts
from ingest.sources.base import Rejected
from ingest.sources.htmltext import hashtags, hrefs
from ingest.sources.textutil import links_in_text, unique

WEB = "https://www.reddit.com"
DELETED = "[deleted]"
MAX_TEXT = 15360  # characters; keeps an event well under the default 64 KiB record limit
MAX_LINKS = 100


class _Crosspost(msgspec.Struct):
    name: str | None = None
    permalink: str | None = None
    author: str | None = None


class _T3(msgspec.Struct):
    name: str
    author: str
    created_utc: float
    title: str = ""
    selftext: str = ""
    selftext_html: str | None = None
    is_self: bool = False
    url: str | None = None
    url_overridden_by_dest: str | None = None
    permalink: str | None = None
    crosspost_parent: str | None = None
    crosspost_parent_list: list[_Crosspost] | None = None


class _T1(msgspec.Struct):
    name: str
    author: str
    created_utc: float
    parent_id: str
    body: str = ""
    body_html: str | None = None
    permalink: str | None = None
    link_author: str | None = None
    # "" or a nested Listing (in /comments/<id> trees); kept raw, decoded only when present.
    replies: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _Thing(msgspec.Struct):
    kind: str
    data: msgspec.Raw


class _ListingData(msgspec.Struct):
    children: list[msgspec.Raw]
    after: str | None = None
    before: str | None = None


class _Listing(msgspec.Struct):
    kind: str
    data: _ListingData


class _NameOnly(msgspec.Struct):
    name: str


class _ThingName(msgspec.Struct):
    data: _NameOnly


_thing = msgspec.json.Decoder(_Thing)
_t3 = msgspec.json.Decoder(_T3)
_t1 = msgspec.json.Decoder(_T1)
_listing = msgspec.json.Decoder(_Listing)
_listings = msgspec.json.Decoder(_Listing | list[_Listing])  # type: ignore[arg-type]
_thing_name = msgspec.json.Decoder(_ThingName)


@dataclass
class Item:
    """One child of a listing: its fullname and what it became (None: nothing to emit)."""

    name: str
    result: Event | Rejected | None


@dataclass
class Parsed:
    items: list[Item] = field(default_factory=list)
    after: str | None = None
    before: str | None = None

    @property
    def events(self) -> list[Event]:
        return [i.result for i in self.items if isinstance(i.result, Post | Reshare)]

    @property
    def rejected(self) -> list[Rejected]:
        return [i.result for i in self.items if isinstance(i.result, Rejected)]


def parse_listing(body: bytes, now: float, *, max_text: int = MAX_TEXT) -> Parsed:
    """A listing body (or the ``[t3 listing, t1 listing]`` pair of ``/comments/<id>``).

    Raises ``InvalidEvent`` when the body is not a listing at all; a child that cannot
    become an event is kept as a ``Rejected`` item with its own bytes, and the rest go on.
    """
    try:
        decoded = _listings.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidEvent("bad_payload", f"not a Reddit listing: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)) from None
    listings = decoded if isinstance(decoded, list) else [decoded]
    out = Parsed()
    ingested = format_ts(now)
    parent: _Parent = {}
    for listing in listings:
        start = len(out.items)
        _children(listing, ingested, max_text, parent, out.items)
        # /comments/<id> answers [the submission, its comment tree]: the tree's top-level
        # comments reply to that submission, whose author the first listing tells.
        parent = {
            i.name: i.result.author.handle
            for i in out.items[start:]
            if isinstance(i.result, Post | Reshare)
        }
    if listings:
        out.after = listings[-1].data.after
        out.before = listings[-1].data.before
    return out


# Fullname -> author id of the posts a nested listing's comments may reply to.
_Parent = dict[str, str | None]


def _children(
    listing: _Listing, ingested: str, max_text: int, parent: _Parent, out: list[Item]
) -> None:
    for raw in listing.data.children:
        try:
            thing = _thing.decode(raw)
            if thing.kind == "t3":
                t3 = _t3.decode(thing.data)
                out.append(Item(t3.name, _post_of_t3(t3, ingested, max_text)))
            elif thing.kind == "t1":
                t1 = _t1.decode(thing.data)
                author = parent.get(t1.parent_id)
                out.append(Item(t1.name, _post_of_t1(t1, ingested, max_text, author)))
                if bytes(t1.replies) not in (b"", b'""', b"null"):
                    nested = _listing.decode(t1.replies)
                    _children(nested, ingested, max_text, {t1.name: _author_id(t1.author)}, out)
            # "more" stubs and other kinds carry no post.
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
            out.append(Item(_name_of(bytes(raw)), _reject(bytes(raw), exc)))


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
    return Rejected(raw=raw, reason=reason, detail=f"reddit: {msg}")


def _name_of(raw: bytes) -> str:
    """The fullname of a child that failed to parse, or a digest of its bytes."""
    try:
        return _thing_name.decode(raw).data.name
    except (msgspec.ValidationError, msgspec.DecodeError):
        return "raw:" + hashlib.sha1(raw).hexdigest()[:16]


def _author_id(name: str) -> str | None:
    return None if not name or name == DELETED else name


def _author(name: str) -> Author:
    # A deleted account keeps a placeholder id: the post still counts, its author cannot.
    return Author(id=name or DELETED, handle=_author_id(name), followers=None)


def _permalink(permalink: str | None) -> str | None:
    if not permalink:
        return None
    return permalink if permalink.startswith("http") else WEB + permalink


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _post_of_t3(t3: _T3, ingested: str, max_text: int) -> Event:
    ts = format_ts(t3.created_utc)
    if t3.crosspost_parent:
        parent = t3.crosspost_parent_list[0] if t3.crosspost_parent_list else None
        return Reshare(
            v=1, id="reddit:" + t3.name, platform="reddit", ts=ts, ingested_at=ingested,
            author=_author(t3.author), target="reddit:" + t3.crosspost_parent,
            target_url=_permalink(parent.permalink) if parent else None,
            target_author_id=_author_id(parent.author or "") if parent else None,
        )  # fmt: skip
    text = t3.title if not t3.selftext else f"{t3.title}\n\n{t3.selftext}"
    text = _clip(text, max_text)
    links: list[str] = []
    dest = t3.url_overridden_by_dest or (t3.url if not t3.is_self else None)
    if dest and dest.startswith(("http://", "https://")):
        links.append(dest)
    links += hrefs(t3.selftext_html) if t3.selftext_html else links_in_text(t3.selftext)
    return Post(
        v=1, id="reddit:" + t3.name, platform="reddit", ts=ts, ingested_at=ingested,
        author=_author(t3.author), text=text, url=_permalink(t3.permalink), lang=None,
        hashtags=hashtags(text), links=unique(links)[:MAX_LINKS],
    )  # fmt: skip


def _post_of_t1(t1: _T1, ingested: str, max_text: int, parent_author: str | None) -> Event:
    if t1.parent_id.startswith("t3_") and t1.link_author is not None:
        parent_author = _author_id(t1.link_author)
    text = _clip(t1.body, max_text)
    links = hrefs(t1.body_html) if t1.body_html else links_in_text(t1.body)
    return Post(
        v=1, id="reddit:" + t1.name, platform="reddit", ts=format_ts(t1.created_utc),
        ingested_at=ingested, author=_author(t1.author), text=text,
        url=_permalink(t1.permalink), lang=None, hashtags=hashtags(text),
        links=links[:MAX_LINKS], reply_to="reddit:" + t1.parent_id,
        reply_to_author_id=parent_author,
    )  # fmt: skip
