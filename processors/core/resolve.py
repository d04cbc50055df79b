"""One partition's state: dedupe, target index, sessions and open windows (the logic the
``resolve`` agent, ``processors.job.resolve``, drives over Kafka).

Everything here is a pure function of the items fed in, in order, so a worker that
restarts rebuilds it exactly from the durable item log (see ``processors.job.resolve``).
An item is ``(role, late_flags, ts, raw_event_json)`` as routed by the gate:

- role PRIMARY: the event counts as itself in this partition (its key's partition);
- role REPLY_ENGAGEMENT: a reply, routed beside its parent post, counting only as an
  engagement there (its PRIMARY copy lives in the partition of its own id).

What the event itself decides (posts, pageviews, share clicks) is aggregated as it
arrives; engagements, reshares and conversions are resolved against the target index and
the sessions when their window closes, so a target post that arrives after its engagement
still counts while the engagement's window is open.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from ingest.events import Event, decode_trusted
from processors.core import sentiment
from processors.core.indices import Seen, SeenIds, TargetIndex, Targets
from processors.core.matching import EMPTY, Tracker
from processors.core.networks import NetworkClassifier, is_paid_medium
from processors.core.windows import LATE_1M, LATE_BITS, SIZES, is_closed, window_start
from processors.wire import GateBatch, PartialBody

MINUTE = SIZES["1m"]
HOUR = SIZES["1h"]
TOP_RANKS = 10  # METRICS.md r2: top lists hold at most ten entries

ALL_LATE = sum(LATE_BITS.values())
# Gate flag: the author is excluded ([filters] exclude_authors). The event is remembered
# for de-duplication and counted as filtered, and counts for nothing else.
EXCLUDED = 4

PRIMARY = 0
REPLY_ENGAGEMENT = 1


class PostInfo(NamedTuple):
    ts: float
    author_id: str
    mentions: frozenset[str]  # brands the post mentions (own activity excluded)
    owners: frozenset[str]  # brands whose account wrote it


class Accepted(NamedTuple):
    """An event whose contribution depends on lookups made when its window closes."""

    ts: float
    role: int
    ev: Event


class WindowAcc:
    """One open window: what is already known, and what waits for its close."""

    __slots__ = ("partial", "pending")

    def __init__(self) -> None:
        self.partial = Partial()
        self.pending: list[Accepted] = []


@dataclass
class Settings:
    lateness: float = 600.0
    dedupe_seconds: float = 86400.0
    target_retention: float = 7 * 86400.0
    attribution: float = 1800.0


class SmmCounts:
    """One brand's SMM counts on one platform in one window (METRICS.md's SMM metrics that
    are plain counts; authors and reach come from ``Partial.authors``)."""

    __slots__ = ("mentions", "engagements", "reshares", "amplifiable")

    def __init__(
        self, mentions: int = 0, engagements: int = 0, reshares: int = 0, amplifiable: int = 0
    ) -> None:
        self.mentions = mentions  # posts and reshares mentioning the brand
        self.engagements = engagements  # reshares, reactions, replies of its content
        self.reshares = reshares  # reshares that mention it (amplification numerator)
        self.amplifiable = amplifiable  # its mentioning or own posts (the denominator)

    def add(self, other: SmmCounts) -> None:
        self.mentions += other.mentions
        self.engagements += other.engagements
        self.reshares += other.reshares
        self.amplifiable += other.amplifiable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SmmCounts) and (
            self.mentions,
            self.engagements,
            self.reshares,
            self.amplifiable,
        ) == (other.mentions, other.engagements, other.reshares, other.amplifiable)

    def __repr__(self) -> str:
        return (f"SmmCounts({self.mentions}, {self.engagements}, {self.reshares}, "
                f"{self.amplifiable})")  # fmt: skip


@dataclass
class Partial:
    """Aggregates of one window in one partition, mergeable across partitions."""

    smm: dict[tuple[str, str], SmmCounts] = field(default_factory=lambda: defaultdict(SmmCounts))
    # (brand, platform) -> {author id: largest follower count seen (null = 0)}
    authors: dict[tuple[str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    activity: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # platform -> events
    campaigns: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    pageviews: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    share_total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    referrals: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    shares: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    conversions: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    campaign_pageviews: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    # METRICS.md r2. (brand, platform, label) -> posts mentioning the brand with that label
    sentiment: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    paid: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    # (site, network) -> the values of its social conversions (summed exactly at the end)
    conversion_values: dict[tuple[str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # 1h windows only: (brand, platform) -> {target post: engagements} (this partition's top
    # ten: every engagement of a target is routed to the target's partition, so the global
    # top ten is the top ten of the partitions' top tens), {author: mentions}, {link: posts}.
    top_posts: dict[tuple[str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    author_mentions: dict[tuple[str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    links: dict[tuple[str, str], dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    first_ts: float | None = None  # earliest / latest event time counted in the window
    last_ts: float | None = None

    def to_wire(self) -> PartialBody:
        return PartialBody(
            smm=[
                (*k, v.mentions, v.engagements, v.reshares, v.amplifiable)
                for k, v in self.smm.items()
            ],  # fmt: skip
            authors=[(*k, a) for k, a in self.authors.items()],
            activity=dict(self.activity),
            pageviews=dict(self.pageviews),
            share_total=dict(self.share_total),
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            campaigns=[(*k, v) for k, v in self.campaigns.items()],
            referrals=[(*k, v) for k, v in self.referrals.items()],
            shares=[(*k, v) for k, v in self.shares.items()],
            conversions=[(*k, v) for k, v in self.conversions.items()],
            campaign_pageviews=[(*k, v) for k, v in self.campaign_pageviews.items()],
            paid=[(*k, v) for k, v in self.paid.items()],
            sentiment=[(*k, v) for k, v in self.sentiment.items()],
            conversion_values=[(*k, v) for k, v in self.conversion_values.items()],
            top_posts=[(*k, v) for k, v in self.top_posts.items()],
            author_mentions=[(*k, v) for k, v in self.author_mentions.items()],
            links=[(*k, v) for k, v in self.links.items()],
        )

    @classmethod
    def from_wire(cls, w: PartialBody) -> Partial:
        """A partial from its wire body; its tables are copies (partials merge in place)."""
        p = cls()
        for b, pl, mentions, engagements, reshares, amplifiable in w.smm:
            p.smm[(b, pl)] = SmmCounts(mentions, engagements, reshares, amplifiable)
        for b, pl, a in w.authors:
            p.authors[(b, pl)] = dict(a)
        p.activity.update(w.activity)
        p.pageviews.update(w.pageviews)
        p.share_total.update(w.share_total)
        for name in ("campaigns", "referrals", "shares", "conversions", "campaign_pageviews",
                     "paid"):  # fmt: skip
            target = getattr(p, name)
            for a, b, n in getattr(w, name):
                target[(a, b)] = n
        for name in ("conversion_values", "top_posts", "author_mentions", "links"):
            target = getattr(p, name)
            for a, b, v in getattr(w, name):
                target[(a, b)] = type(v)(v)
        for b, pl, lab, n in w.sentiment:
            p.sentiment[(b, pl, lab)] = n
        p.first_ts, p.last_ts = w.first_ts, w.last_ts
        return p

    def merge(self, other: Partial) -> None:
        for k, v in other.smm.items():
            self.smm[k].add(v)
        for k, authors in other.authors.items():
            mine_a = self.authors[k]
            for aid, f in authors.items():
                if f > mine_a.get(aid, -1):
                    mine_a[aid] = f
        for name in ("activity", "campaigns", "pageviews", "share_total", "referrals", "shares",
                     "conversions", "campaign_pageviews", "sentiment", "paid"):  # fmt: skip
            mine_d = getattr(self, name)
            for k, v in getattr(other, name).items():
                mine_d[k] += v
        for k, values in other.conversion_values.items():
            self.conversion_values[k].extend(values)
        for name in ("top_posts", "author_mentions", "links"):
            mine_t = getattr(self, name)
            for k, counts in getattr(other, name).items():
                into = mine_t[k]
                for item, n in counts.items():
                    into[item] = into.get(item, 0) + n
        if other.first_ts is not None:
            self.first_ts = (
                other.first_ts if self.first_ts is None else min(self.first_ts, other.first_ts)
            )
        if other.last_ts is not None:
            self.last_ts = (
                other.last_ts if self.last_ts is None else max(self.last_ts, other.last_ts)
            )


PRUNE_STEP = 300.0  # seconds of event time between two prunes of the indices and sessions


class PartitionState:
    def __init__(
        self,
        tracker: Tracker,
        classifier: NetworkClassifier,
        settings: Settings,
        scorer: sentiment.Scorer | None = None,
        indices: tuple[Seen, Targets] | None = None,
    ) -> None:
        self.tracker = tracker
        self.scorer = scorer if scorer is not None else sentiment.scorer("vader")
        self.filtered: dict[str, int] = defaultdict(int)  # platform -> excluded events seen
        self.poisoned = 0  # items that were not canonical events (see processors.job.resolve)
        self.classifier = classifier
        self.settings = settings
        self.watermark = float("-inf")
        # (role, id) of every event counted (dedupe), and posts that mention or belong to a
        # brand (targets): in memory by default, on disk in a worker (processors.job.disk_indices).
        self.seen: Seen
        self.targets: Targets
        self.seen, self.targets = indices if indices is not None else (SeenIds(), TargetIndex())
        # (site, session) -> [(ts, arrival, network or None)]
        self.sessions: dict[tuple[str, str], list[tuple[float, int, str | None]]] = defaultdict(
            list
        )
        # (pageview time, session key), a heap: which sessions the next prune must filter
        self._session_expiry: list[tuple[float, tuple[str, str]]] = []
        self.windows: dict[tuple[int, int], WindowAcc] = {}
        self._arrival = 0
        self._next_close = float("inf")  # earliest close time of an open window
        self.dirty: set[tuple[int, int]] = set()  # 1m windows changed since provisional()
        self._last_prune = float("-inf")

    # -- input ---------------------------------------------------------------------
    def add(self, role: int, flags: int, ts: float, raw: bytes) -> Event | None:
        """Feed one routed item; returns the event when it was accepted (not a duplicate)."""
        if flags & ALL_LATE == ALL_LATE:
            return None  # late for every window size: it changes nothing
        try:
            ev: Any = decode_trusted(raw)  # the gate validated it already
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.poisoned += 1  # not from the gate: a crafted internal record
            return None
        if not self.seen.add(role, ev.id, ts):
            return None
        if flags & EXCLUDED:
            if role == PRIMARY:
                self.filtered[ev.platform] += 1
            return ev  # remembered for de-duplication, and nothing else
        self._arrival += 1
        kind = ev.kind
        targets = [
            (size, self._window((size, window_start(ts, size))))
            for name, size in SIZES.items()
            if not flags & LATE_BITS[name]
        ]
        if not flags & LATE_1M:
            self.dirty.add((MINUTE, window_start(ts, MINUTE)))
        if role == REPLY_ENGAGEMENT:
            acc = Accepted(ts, role, ev)
            for _, w in targets:
                w.pending.append(acc)
            return ev
        p = ev.platform
        for _, w in targets:
            part = w.partial
            if part.first_ts is None or ts < part.first_ts:
                part.first_ts = ts
            if part.last_ts is None or ts > part.last_ts:
                part.last_ts = ts
            part.activity[p] += 1  # a counted event of its platform (stalled ingestion)
        if kind == "post":
            self._add_post(ev, ts, targets)
        elif kind == "pageview":
            net = self._index_pageview(ev, ts)
            utm = ev.utm
            campaigns = self.tracker.campaigns_of_utm(utm.campaign if utm else None)
            paid = net is not None and utm is not None and is_paid_medium(utm.medium)
            for _, w in targets:
                part = w.partial
                part.pageviews[ev.site] += 1
                if net:
                    part.referrals[(ev.site, net)] += 1
                    if paid:
                        part.paid[(ev.site, net)] += 1
                for c in campaigns:
                    part.campaign_pageviews[(ev.site, c)] += 1
        elif kind == "share_click":
            for _, w in targets:
                w.partial.share_total[ev.site] += 1
                w.partial.shares[(ev.site, ev.network)] += 1
        else:  # reshare, reaction, conversion: resolved when the window closes
            acc = Accepted(ts, role, ev)
            for _, w in targets:
                w.pending.append(acc)
        return ev

    def _add_post(self, ev: Any, ts: float, targets: list[tuple[int, WindowAcc]]) -> None:
        info = self._index_post(ev, ts)
        p = ev.platform
        author = ev.author
        followers = author.followers or 0
        campaigns = (
            self.tracker.campaigns_of_post(ev.text, ev.hashtags)
            if self.tracker.has_campaigns
            else EMPTY
        )
        mood = sentiment.label(self.scorer, ev.text, ev.lang) if info.mentions else ""
        # A post counts once per link, cut at its first '#' (METRICS.md r2 top_links).
        links = sorted({u.split("#", 1)[0] for u in ev.links}) if info.mentions else ()
        for size, w in targets:
            part = w.partial
            for b in info.mentions:
                row = part.smm[(b, p)]
                row.mentions += 1
                row.amplifiable += 1
                _author(part, b, p, author.id, followers)
                part.sentiment[(b, p, mood)] += 1
                if size == HOUR:
                    _count(part.author_mentions[(b, p)], author.id)
                    by_link = part.links[(b, p)]
                    for link in links:
                        _count(by_link, link)
            for b in info.owners:
                part.smm[(b, p)].amplifiable += 1
            for c in campaigns:
                part.campaigns[(c, p)] += 1

    def _window(self, key: tuple[int, int]) -> WindowAcc:
        w = self.windows.get(key)
        if w is None:
            w = self.windows[key] = WindowAcc()
            closes = key[0] + key[1] + self.settings.lateness
            if closes < self._next_close:
                self._next_close = closes
        return w

    def _index_post(self, ev: Any, ts: float) -> PostInfo:
        owners = self.tracker.owners(ev.platform, ev.author.id)
        mentions = self.tracker.content_mentions(
            ev.platform,
            ev.text,
            ev.hashtags,
            ev.links,
            ev.reply_to_author_id,
            ev.quote_of_author_id,
        )
        info = PostInfo(ts, ev.author.id, mentions - owners, owners)
        self.targets.add(ev.id, ts, info.mentions | owners)
        return info

    def _index_pageview(self, ev: Any, ts: float) -> str | None:
        utm = ev.utm
        net = self.classifier.referral_network(
            utm.source if utm else None,
            utm.medium if utm else None,
            ev.referrer,
            self.tracker.sites.get(ev.site, ()),
        )
        key = (ev.site, ev.session)
        self.sessions[key].append((ts, self._arrival, net))
        heapq.heappush(self._session_expiry, (ts, key))
        return net

    # -- windows -------------------------------------------------------------------
    def advance(self, watermark: float) -> list[tuple[int, int, Partial]]:
        """Raise the watermark; return (size, start, partial) of every window it closes."""
        if watermark > self.watermark:
            self.watermark = watermark
        if self.watermark < self._next_close:
            return []  # the common case: nothing closes yet
        closed = []
        for key in sorted(self.windows):
            size, start = key
            if is_closed(start + size, self.watermark, self.settings.lateness):
                closed.append((size, start, self.compute(key)))
                del self.windows[key]
        lateness = self.settings.lateness
        self._next_close = min((s + st + lateness for s, st in self.windows), default=float("inf"))
        self._prune()
        return closed

    def provisional(self) -> list[tuple[int, int, Partial]]:
        """Current partials of the open 1m windows that changed since the last call: live
        dashboards see a minute as it fills, not only once it is final."""
        out = [(size, start, self.compute((size, start), final=False))
               for size, start in sorted(self.dirty) if (size, start) in self.windows]  # fmt: skip
        self.dirty.clear()
        return out

    def _prune(self) -> None:
        wm = self.watermark
        if wm == float("inf"):
            return
        # Pruned at each 5-minute boundary of the watermark, as of that boundary: a state
        # rebuilt from the item log expires exactly what the live one did.
        wm = wm // PRUNE_STEP * PRUNE_STEP
        if wm <= self._last_prune:
            return
        self._last_prune = wm
        s = self.settings
        self.seen.expire_before(wm - s.dedupe_seconds)
        self.targets.expire_before(wm - s.target_retention)
        # A conversion still counted (its 1h window open) looks back one attribution window.
        horizon = wm - s.lateness - 3600 - s.attribution
        # Only sessions holding a pageview older than the horizon are filtered (the heap
        # names them, oldest first): the same result as filtering every session, without
        # walking all of them at each prune.
        expiry = self._session_expiry
        while expiry and expiry[0][0] < horizon:
            key = heapq.heappop(expiry)[1]
            pvs = self.sessions.get(key)
            if pvs is None:
                continue  # emptied by an earlier pageview of the same session
            kept = [pv for pv in pvs if pv[0] >= horizon]  # arrival order, not time order
            if not kept:
                del self.sessions[key]
            elif len(kept) < len(pvs):
                self.sessions[key] = kept

    # -- resolution ----------------------------------------------------------------
    def _target_brands(
        self, platform: str, target: str, target_author: str | None, ts: float
    ) -> frozenset[str]:
        """Brands a target engages: it mentioned them, or one of their accounts wrote it."""
        brands = self.tracker.owners(platform, target_author)
        found = self.targets.get(target)
        if found is not None and found[0] < ts:
            brands = brands | found[1]
        return brands

    def _first_touch(self, site: str, session: str, ts: float) -> str | None:
        best: tuple[float, int, str | None] | None = None
        for pv in self.sessions.get((site, session), ()):
            if ts - self.settings.attribution <= pv[0] <= ts and (
                best is None or pv[:2] < best[:2]
            ):
                best = pv
        return best[2] if best else None

    def compute(self, key: tuple[int, int], *, final: bool = True) -> Partial:
        """The window's partial: its known aggregates plus its pending events, resolved now.
        A provisional (``final=False``) partial works on a copy, so the window stays open."""
        w = self.windows.get(key)
        if w is None:
            return Partial()
        out = w.partial if final else Partial.from_wire(w.partial.to_wire())
        tr = self.tracker
        hourly = key[0] == HOUR
        engaged: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)  # 1h: top posts
        for acc in w.pending:
            ev: Any = acc.ev
            kind = ev.kind
            if kind == "conversion":
                net = self._first_touch(ev.site, ev.session, acc.ts)
                if net:
                    out.conversions[(ev.site, net)] += 1
                    out.conversion_values[(ev.site, net)].append(float(ev.value))
                continue
            p = ev.platform
            own = tr.owners(p, ev.author.id)
            if acc.role == REPLY_ENGAGEMENT:
                for b in self._target_brands(p, ev.reply_to, ev.reply_to_author_id, acc.ts) - own:
                    out.smm[(b, p)].engagements += 1
                    if hourly:
                        _count(engaged[(b, p)], ev.reply_to)
                continue
            for b in self._target_brands(p, ev.target, ev.target_author_id, acc.ts) - own:
                row = out.smm[(b, p)]
                row.engagements += 1  # a reshare or reaction of b content engages b
                if hourly:
                    _count(engaged[(b, p)], ev.target)
                if kind == "reshare":
                    row.mentions += 1
                    row.reshares += 1
                    _author(out, b, p, ev.author.id, ev.author.followers or 0)
                    if hourly:
                        _count(out.author_mentions[(b, p)], ev.author.id)
        for bp, counts in engaged.items():
            top = out.top_posts[bp]
            for target, n in counts.items():
                top[target] = top.get(target, 0) + n
            if len(top) > TOP_RANKS:
                out.top_posts[bp] = dict(ranked(top)[:TOP_RANKS])
        return out


def _count(counts: dict[str, int], item: str) -> None:
    counts[item] = counts.get(item, 0) + 1


def ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Entries by value, descending; ties by the id or URL, ascending (METRICS.md r2)."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _author(out: Partial, brand: str, platform: str, author: str, followers: int) -> None:
    authors = out.authors[(brand, platform)]
    if followers > authors.get(author, -1):
        authors[author] = followers


def feed(st: PartitionState, b: GateBatch) -> tuple[list[tuple[int, int, Any]], int]:
    """Apply a batch in stream order: windows close exactly where the watermark passed
    them, so what arrives after a window closed never reaches it. Returns the closed
    windows' partials and the number of duplicates dropped."""
    closed: list[tuple[int, int, Any]] = []
    dups = 0
    for role, flags, ts, raw, wm in b.items:
        if wm > st.watermark:
            closed += st.advance(wm)
        if st.add(role, flags, ts, raw) is None and flags != ALL_LATE:
            dups += 1
    return closed, dups
