"""``ripple report``: the headline figures of a known results file equal sums computed here
independently; every chart has marks; the page loads in headless Chromium without console
errors or network requests (a screenshot of its first page is kept); --pdf prints a PDF;
and a namespace's topic gives the same report as the results file of the same replay."""

from __future__ import annotations

import asyncio
import base64
import random
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

from deploy.cli import main
from processors.core.windows import iso
from tests.ingest.web.cdp import chromium_binary, chromium_page

T0 = 1_763_625_600  # 2025-11-20T08:00:00Z: comparison period 08-10, report period 10-12
SINCE, UNTIL = T0 + 7200, T0 + 14400
BRANDS = {"acme": False, "globex": True}
PLATFORMS = ("bluesky", "x")
NETWORKS = ("bluesky", "reddit")
SITE = "acme.com"
CONFIG = """
[[brands]]
name = "acme"
terms = ["acme"]
[[brands]]
name = "globex"
terms = ["globex"]
competitor = true
[[sites]]
name = "acme.com"
domains = ["acme.com"]
"""


def _row(metric: str, window: str, start: int, labels: dict[str, str], value: Any) -> dict[str, Any]:  # fmt: skip
    size = 60 if window == "1m" else 3600
    return {"metric": metric, "window": window, "window_start": iso(start),
            "window_end": iso(start + size), "labels": labels, "value": value}  # fmt: skip


def synthetic_rows(seed: int = 4) -> list[dict[str, Any]]:
    """Four hours of v1 and r2 rows as METRICS.md shapes them (counts in 1m and 1h rows,
    ratios wherever their denominator is not 0), plus alert rows."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    hourly: dict[tuple[str, int, str], int] = {}

    def count(metric: str, start: int, labels: dict[str, str], value: int) -> None:
        if value:
            out.append(_row(metric, "1m", start, labels, value))
            key = (metric, start - start % 3600, orjson.dumps(labels).decode())
            hourly[key] = hourly.get(key, 0) + value

    for m in range(240):
        t = T0 + m * 60
        mentions = {}
        for b in BRANDS:
            for p in PLATFORMS:
                lab = {"brand": b, "platform": p}
                n = rnd.randint(0, 12 if b == "acme" else 8)
                mentions[(b, p)] = n
                reach = sum(rnd.randint(0, 900) for _ in range(n))
                eng = rnd.randint(0, 20) if not (b == "acme" and p == "bluesky" and m > 180) else 0
                count("mentions", t, lab, n)
                if n:
                    count("unique_authors", t, lab, rnd.randint(1, n))
                count("potential_reach", t, lab, reach)
                count("engagements", t, lab, eng)
                if reach:
                    out.append(_row("engagement_rate", "1m", t, lab, eng / reach))
                if n:
                    out.append(_row("amplification", "1m", t, lab, rnd.random()))
                for s in ("positive", "negative", "neutral", "unrated"):
                    count("mentions_by_sentiment", t, {**lab, "sentiment": s}, rnd.randint(0, 3))
        for p in PLATFORMS:
            total = sum(mentions[(b, p)] for b in BRANDS)
            if total:
                for b in BRANDS:
                    out.append(_row("share_of_voice", "1m", t, {"brand": b, "platform": p}, mentions[(b, p)] / total))  # fmt: skip
        pv = rnd.randint(5, 40)
        count("pageviews", t, {"site": SITE}, pv)
        clicks_all = 0
        for n_ in NETWORKS:
            lab = {"site": SITE, "network": n_}
            refs, clicks, conv = rnd.randint(0, 10), rnd.randint(0, 4), rnd.randint(0, 2)
            clicks_all += clicks
            count("social_referrals", t, lab, refs)
            count("share_clicks", t, lab, clicks)
            count("paid_social_referrals", t, lab, min(refs, rnd.randint(0, 3)))
            if refs:
                conv = min(conv, refs)
                out.append(_row("social_conversion_rate", "1m", t, lab, conv / refs))
                count("social_conversions", t, lab, conv)
                if conv:
                    out.append(_row("social_conversion_value", "1m", t, lab, round(rnd.uniform(5, 90) * conv, 2)))  # fmt: skip
        out.append(_row("share_rate", "1m", t, {"site": SITE}, clicks_all / pv))
    for (metric, start, labels), v in hourly.items():
        lab = orjson.loads(labels)
        # 1h unique authors: fewer than the sum of the minutes' (authors recur).
        out.append(_row(metric, "1h", start, lab, v // 3 + 1 if metric == "unique_authors" else v))
    for start in range(T0, T0 + 14400, 3600):
        for n_ in NETWORKS:
            lab = {"site": SITE, "network": n_}
            k = orjson.dumps(lab).decode()
            clicks = hourly.get(("share_clicks", start, k), 0)
            if clicks:
                out.append(_row("referral_yield", "1h", start, lab, hourly.get(("social_referrals", start, k), 0) / clicks))  # fmt: skip
        for b in BRANDS:
            for p in PLATFORMS:
                out.append(_row("amplification", "1h", start, {"brand": b, "platform": p}, rnd.random()))  # fmt: skip
            for rank in range(1, 4):
                lab = {"brand": b, "platform": "bluesky", "rank": str(rank)}
                out.append(_row("top_posts", "1h", start, {**lab, "post": f"bluesky:at://{b}/{rank}"}, 30 - rank))  # fmt: skip
                out.append(_row("top_authors", "1h", start, {**lab, "author": f"did:plc:{b}{rank}"}, 9 - rank))  # fmt: skip
                out.append(_row("top_links", "1h", start, {**lab, "link": f"https://{b}.com/p/{rank}?a=<b>"}, 5))  # fmt: skip
    drop = {"alertname": "EngagementDrop", "brand": "acme", "platform": "bluesky"}
    for t, v, labels in (
        (T0 + 3600, 1, {"alertname": "SocialReferralDrop", "site": SITE, "network": "reddit"}),
        (T0 + 7800, 0, {"alertname": "SocialReferralDrop", "site": SITE, "network": "reddit"}),
        (T0 + 200 * 60, 1, drop),
    ):
        out.append({"metric": "alert", "window": "event", "window_start": iso(t),
                    "window_end": iso(t), "labels": labels, "value": v})  # fmt: skip
    return out


def in_period(r: dict[str, Any], since: int = SINCE, until: int = UNTIL) -> bool:
    from ingest.events import parse_ts

    return parse_ts(r["window_start"]) >= since and parse_ts(r["window_end"]) <= until


def total(rows: list[dict[str, Any]], metric: str, window: str = "1m", **labels: str) -> float:
    return sum(
        r["value"]
        for r in rows
        if r["metric"] == metric
        and r["window"] == window
        and in_period(r)
        and all(r["labels"].get(k) == v for k, v in labels.items())
    )


class Tables(HTMLParser):
    """Every table of the page as rows of cell texts, under the h2 it follows."""

    def __init__(self) -> None:
        super().__init__()
        self.section, self.tables, self._row, self._cell = "", [], None, None  # type: ignore[var-annotated]
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "h2":
            self._in_h2, self.section = True, ""
        elif tag == "table":
            self.tables.append((self.section, []))
        elif tag == "tr":
            self._row = []
            self.tables[-1][1].append(self._row)
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False
        elif tag in ("td", "th") and self._row is not None:
            self._row.append((self._cell or "").strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.section += data
        if self._cell is not None:
            self._cell += data


def headline(html: str, section: str) -> dict[str, str]:
    """Figure name -> period cell of the first table of a section."""
    p = Tables()
    p.feed(html)
    table = next(rows for sec, rows in p.tables if sec.strip().startswith(section))
    return {re.sub(r"[¹²³⁴]", "", row[0]): row[1] for row in table[1:]}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path, Path, str]:
    d = tmp_path_factory.mktemp("report")
    rows = synthetic_rows()
    results, cfg = d / "results.jsonl", d / "ripple.toml"
    results.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    cfg.write_text(CONFIG)
    out = d / "report.html"
    code = main(["report", "--results", str(results), "--config", str(cfg), "--since", iso(SINCE),
                 "--until", iso(UNTIL), "--out", str(out), "--prometheus", "none"])  # fmt: skip
    assert code == 0
    return rows, results, out, out.read_text()


def pct(v: float) -> str:
    return f"{v * 100:.2f}%" if abs(v) >= 0.01 else f"{v * 100:.3g}%"


def test_headline_figures_equal_independent_sums(made) -> None:  # type: ignore[no-untyped-def]
    rows, _, _, html = made
    for brand in BRANDS:
        got = headline(html, f"Brand {brand}")
        mentions = total(rows, "mentions", brand=brand)
        reach = total(rows, "potential_reach", brand=brand)
        eng = total(rows, "engagements", brand=brand)
        assert got["Mentions"] == f"{mentions:,.0f}"
        assert got["Unique authors (sum of hourly unique authors)"] == f"{total(rows, 'unique_authors', '1h', brand=brand):,.0f}"  # fmt: skip
        assert got["Potential reach (sum over 1m windows)"] == f"{reach:,.0f}"
        assert got["Engagements"] == f"{eng:,.0f}"
        assert got["Engagement rate"] == pct(eng / reach)  # a ratio of sums ...
        averaged = [r["value"] for r in rows if r["metric"] == "engagement_rate" and in_period(r) and r["labels"]["brand"] == brand]  # fmt: skip
        assert got["Engagement rate"] != pct(sum(averaged) / len(averaged))  # ... not an average
        assert got["Share of voice"] == pct(mentions / total(rows, "mentions"))
        assert got["Amplification"] == "–"  # no counts in the rows: explained in a footnote
    site = headline(html, f"Site {SITE}")
    pv, clicks = total(rows, "pageviews"), total(rows, "share_clicks")
    refs, conv = total(rows, "social_referrals"), total(rows, "social_conversions")
    assert site["Pageviews"] == f"{pv:,.0f}"
    assert site["Social referrals"] == f"{refs:,.0f}"
    assert site["Share rate (share clicks / pageviews)"] == pct(clicks / pv)
    assert site["Referral yield (social referrals / share clicks, 1h windows)"] == pct(
        total(rows, "social_referrals", "1h") / total(rows, "share_clicks", "1h")
    )
    assert site["Social conversion rate (conversions / social referrals)"] == pct(conv / refs)
    assert site["Social conversion value"] == f"{total(rows, 'social_conversion_value'):,.2f}"
    assert site["Paid social referrals"] == f"{total(rows, 'paid_social_referrals'):,.0f}"
    # The alerts that overlap the period, with the numbers the rule looked at.
    assert "EngagementDrop" in html and "SocialReferralDrop" in html and "still firing" in html
    assert "engagements in the 15 minutes before: 0" in html
    assert "https://acme.com/p/1?a=&lt;b&gt;" in html  # user input is escaped


def _marks(svg: str) -> int:
    """Drawn items inside Vega's mark groups (paths with geometry, rects, lines)."""
    root = ET.fromstring(svg)
    n = 0
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if "role-mark" in (g.get("class") or "") and "role-axis" not in (g.get("class") or ""):
            for el in g.iter():
                tag = el.tag.split("}")[-1]
                if (tag == "path" and (el.get("d") or "").strip()) or tag in ("rect", "line"):
                    n += 1
    return n


def test_every_chart_has_data(made) -> None:  # type: ignore[no-untyped-def]
    html = made[3]
    charts = dict(
        re.findall(r'<figure data-chart="([^"]+)"><h4>.*?</h4>(<svg.*?</svg>)', html, re.S)
    )
    per_brand = ("sov", "mentions", "engagements", "er", "amplification", "sentiment", "net-sentiment")  # fmt: skip
    per_site = ("traffic", "referrals", "shares", "share-rate", "yield", "conversions", "paid", "value")  # fmt: skip
    expected = {f"{b}-{k}" for b in BRANDS for k in per_brand} | {f"{SITE}-{k}" for k in per_site}
    assert set(charts) == expected | {"alerts"}
    empty = [k for k, svg in charts.items() if _marks(svg) == 0]
    assert not empty
    assert "<script" not in html and not re.search(r'(src|href)="https?:', html)


def test_page_renders_in_chromium_without_errors(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if chromium_binary() is None:
        pytest.skip("Debian's chromium is not installed (make install installs it)")
    out = made[2]
    problems, requests, info = asyncio.run(_load(out, tmp_path))
    assert not problems
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert info["svgs"] == info["figures"] > 0 and info["width"] > 600
    png = tmp_path / "report-first-page.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


async def _load(html: Path, tmp: Path) -> tuple[list[Any], list[str], dict[str, Any]]:
    async with chromium_page(tmp / "profile") as page:
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride", width=1000, height=1400,
                        deviceScaleFactor=1, mobile=False)  # fmt: skip
        await page.send("Page.navigate", url=html.as_uri())
        await page.wait_event("Page.loadEventFired")
        await asyncio.sleep(0.5)
        info = await page.evaluate(
            "({svgs: document.querySelectorAll('figure svg').length,"
            " figures: document.querySelectorAll('figure').length,"
            " width: document.querySelector('figure svg').getBoundingClientRect().width})"
        )
        shot = await page.send("Page.captureScreenshot", format="png")
        (tmp / "report-first-page.png").write_bytes(base64.b64decode(shot["data"]))
        problems, requests = [], []
        while not page.events.empty():
            msg = page.events.get_nowait()
            method, params = msg.get("method"), msg.get("params", {})
            if (
                method == "Runtime.exceptionThrown"
                or (
                    method == "Runtime.consoleAPICalled"
                    and params.get("type") in ("error", "assert")
                )
                or (method == "Log.entryAdded" and params["entry"].get("level") == "error")
            ):
                problems.append(params)
            if method == "Network.requestWillBeSent":
                requests.append(params["request"]["url"])
        return problems, requests, info


def test_pdf(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if chromium_binary() is None:
        pytest.skip("Debian's chromium is not installed (make install installs it)")
    _, results, _, _ = made
    pdf = tmp_path / "report.pdf"
    code = main(["report", "--results", str(results), "--since", iso(SINCE), "--until", iso(UNTIL),
                 "--out", str(tmp_path / "r.html"), "--pdf", str(pdf), "--prometheus", "none"])  # fmt: skip
    assert code == 0
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page\b", data)) >= 3


def test_clear_errors(made, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    results = made[1]
    out = str(tmp_path / "x.html")
    assert main(["report", "--results", str(results), "--since", "2020-01-01T00:00:00Z",
                 "--until", "2020-01-02T00:00:00Z", "--out", out]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "no results rows between 2020-01-01T00:00:00Z and 2020-01-02T00:00:00Z" in err
    assert "the source holds rows from 2025-11-20T08:00:00Z to 2025-11-20T12:00:00Z" in err
    assert main(["report", "--results", str(tmp_path / "missing.jsonl"), "--out", out]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"metric": "mentions"}\nnot json\n')
    assert main(["report", "--results", str(bad), "--out", out]) == 2
    assert "line 2 is not JSON" in capsys.readouterr().err
    assert main(["report", "--results", str(results), "--compare", "yesterday", "--out", out]) == 2
    assert "--compare must be" in capsys.readouterr().err
    assert not Path(out).exists()


def test_pipeline_section_says_when_prometheus_is_not_reachable(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from deploy.stack.ports import free_port

    out = tmp_path / "r.html"
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["report", "--results", str(made[1]), "--out", str(out), "--prometheus", url,
                 "--pipeline-namespace", "ripple"]) == 0  # fmt: skip
    html = out.read_text()
    assert f"Pipeline figures not available: Prometheus at {url} did not answer" in html
    assert "campaigns are counted only as Prometheus" in html  # no campaign rows in the file


# --- against the real broker ------------------------------------------------------------


def _without_source(html: str) -> str:
    return re.sub(r'<p class="source">.*?</p>', "", html, flags=re.S)


def test_namespace_report_equals_results_file_report(stack, namespace: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from deploy.history import HistorySpec, generate
    from tests.processors.replay_helpers import replay_config, run_replay

    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(generate(HistorySpec(hours=1.0, seed=5))) + b"\n")
    cfg = replay_config(
        stack.config_path, Path("deploy/demo.toml").read_text(), tmp_path / "r.toml"
    )
    results = tmp_path / "results.jsonl"
    run_replay(cfg, namespace, results, "--input", str(events))
    html = {}
    for name, source in (("file", ["--results", str(results)]), ("topic", ["--namespace", namespace])):  # fmt: skip
        out = tmp_path / f"{name}.html"
        assert main(["report", *source, "--config", str(cfg), "--out", str(out),
                     "--prometheus", "none"]) == 0  # fmt: skip
        html[name] = out.read_text()
    assert "Brand acme" in html["file"] and "Site acme.com" in html["file"]
    assert _without_source(html["topic"]) == _without_source(html["file"])
