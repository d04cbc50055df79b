"""The report's HTML: one self-contained page (inline CSS and SVG, no script, no network),
from a Jinja2 template with autoescaping (post ids, author ids and links are user input)."""

from __future__ import annotations

import time

import jinja2

from deploy.report import charts
from deploy.report.figures import Report
from processors.core.windows import iso

TEMPLATE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ripple report {{ r.period.label }}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2329;
         max-width: 980px; margin: 0 auto; padding: 24px; }
  h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 32px 0 8px;
  border-bottom: 2px solid #1d2329; padding-bottom: 2px; } h3 { font-size: 16px; margin: 20px 0 6px; }
  h4 { font-size: 13px; margin: 14px 0 2px; color: #4a5561; font-weight: 600; }
  table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
  th, td { padding: 3px 10px; border-bottom: 1px solid #e3e7eb; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  th { font-weight: 600; background: #f4f6f8; white-space: normal; }
  .up { color: #1f7a33; } .down { color: #b3261e; } .none, .flat { color: #7a8590; }
  .muted, .source { color: #5c6773; } .source { font-size: 12px; }
  figure { margin: 0 0 10px; break-inside: avoid; } figure svg { max-width: 100%; height: auto; }
  .tag { font-size: 11px; background: #eef1f4; border-radius: 3px; padding: 1px 6px; margin-left: 6px; }
  .wrap { word-break: break-all; text-align: left; max-width: 520px; white-space: normal; }
  footer { margin-top: 32px; font-size: 12px; color: #4a5561; } footer p { margin: 4px 0; }
  @page { size: A4; margin: 12mm; }
  @media print { body { padding: 0; } h2 { break-before: auto; } table, figure { break-inside: avoid; } }
</style></head>
<body>
<h1>Ripple report</h1>
<p><strong>{{ r.period.label }}</strong>{% if r.compare %}, compared with {{ r.compare.label }}{% endif %}.</p>
<p class="source">Source: {{ r.source }}. Generated {{ generated }}.</p>
{% if r.compare and not r.compare_has_rows %}<p class="muted">The comparison period has no
rows in the source: changes are shown as "–".</p>{% endif %}

{% macro change(f) %}<td class="{{ f.direction }}">{{ f.change }}</td>{% endmacro %}
{% macro figtable(figs) %}
<table><tr><th>figure</th><th>period</th><th>comparison</th><th>change</th></tr>
{% for f in figs %}<tr><td>{{ f.name }}{% if f.note %}<sup>{{ f.note }}</sup>{% endif %}</td>
<td>{{ f.shown }}</td><td>{{ f.shown_previous }}</td>{{ change(f) }}</tr>
{% endfor %}</table>{% endmacro %}
{% macro breakdown(first, items, attr) %}
{% if items %}<table><tr><th>{{ first }}</th>{% for f in items[0].figures %}<th>{{ f.name }}</th><th>change</th>{% endfor %}</tr>
{% for it in items %}<tr><td>{{ it[attr] }}</td>{% for f in it.figures %}<td>{{ f.shown }}</td>{{ change(f) }}{% endfor %}</tr>
{% endfor %}</table>{% endif %}{% endmacro %}
{% macro chartlist(items) %}{% for s, svg in items %}
<figure data-chart="{{ s.key }}"><h4>{{ s.title }}</h4>{{ svg | safe }}</figure>{% endfor %}{% endmacro %}

<h2>At a glance</h2>
{% if r.brands %}<table><tr><th>brand</th><th>mentions</th><th>change</th><th>engagements</th><th>change</th>
<th>engagement rate</th><th>change</th><th>share of voice</th><th>change</th></tr>
{% for b in r.brands %}{% set h = b.headline %}<tr><td>{{ b.name }}{% if b.competitor %}<span class="tag">competitor</span>{% endif %}</td>
<td>{{ h[0].shown }}</td>{{ change(h[0]) }}<td>{{ h[3].shown }}</td>{{ change(h[3]) }}
<td>{{ h[4].shown }}</td>{{ change(h[4]) }}<td>{{ h[6].shown }}</td>{{ change(h[6]) }}</tr>
{% endfor %}</table>{% else %}<p class="muted">No brand rows in the period.</p>{% endif %}
{% for s in r.sites %}<p>Site <strong>{{ s.name }}</strong>: {% for f in s.headline[:6] %}{{ f.name.split(' (')[0].lower() }}
{{ f.shown }} (<span class="{{ f.direction }}">{{ f.change }}</span>){% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endfor %}
<p>Alerts in the period: {{ r.alerts | length }}{% if r.alerts %} ({% for a in r.alerts %}{{ a.label }}{% if not loop.last %}; {% endif %}{% endfor %}){% endif %}.</p>

{% for b in r.brands %}
<h2 id="brand-{{ b.name }}">Brand {{ b.name }}{% if b.competitor %}<span class="tag">competitor</span>{% endif %}</h2>
{{ figtable(b.headline) }}
<h3>By platform</h3>{{ breakdown("platform", b.platforms, "platform") }}
{{ chartlist(brand_charts[b.name]) }}
{% if b.sentiment %}<h3>Sentiment</h3>{{ figtable(b.sentiment) }}{% else %}<p class="muted">No sentiment rows (mentions_by_sentiment) for {{ b.name }} in the period.</p>{% endif %}
{% if b.tops %}{% for metric, entries in b.tops.items() %}<h3>{{ top_titles[metric] }}</h3>
<table><tr><th>#</th><th>{{ top_keys[metric] }}</th><th>platform</th><th>{{ top_values[metric] }}</th><th>hours in top 10</th></tr>
{% for e in entries %}<tr><td>{{ loop.index }}</td><td class="wrap">{{ e.what }}</td><td>{{ e.platform }}</td><td>{{ '{:,.0f}'.format(e.value) }}</td><td>{{ e.hours }}</td></tr>
{% endfor %}</table>{% endfor %}{% else %}<p class="muted">No top posts, authors or links rows for {{ b.name }} in the period.</p>{% endif %}
{% endfor %}

<h2>Campaigns</h2>
{% if r.campaign_rows %}<table><tr><th>campaign</th><th>metric</th><th>labels</th><th>sum (1m rows)</th></tr>
{% for c, m, rest, v in r.campaign_rows %}<tr><td>{{ c }}</td><td>{{ m }}</td><td>{{ rest }}</td><td>{{ '{:,.0f}'.format(v) }}</td></tr>{% endfor %}</table>
{% else %}<p>The results rows carry no campaign figures: campaigns are counted only as Prometheus
counters (<code>ripple_smm_campaign_mentions_total</code>, <code>ripple_smo_campaign_pageviews_total</code>).</p>
{% if r.pipeline and r.pipeline.available %}{% for t in r.pipeline.campaigns %}<h4>{{ t.title }}</h4>
{% if t.rows %}<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>{% for row in t.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p class="muted">no samples in the period</p>{% endif %}{% endfor %}
{% else %}<p class="muted">Prometheus figures {{ r.pipeline.note if r.pipeline else "not available" }}.</p>{% endif %}{% endif %}

{% for s in r.sites %}
<h2 id="site-{{ s.name }}">Site {{ s.name }}</h2>
{{ figtable(s.headline) }}
<h3>By network</h3>{{ breakdown("network", s.networks, "network") }}
{{ chartlist(site_charts[s.name]) }}
{% endfor %}
{% if not r.sites %}<h2>Sites</h2><p class="muted">No site rows in the period.</p>{% endif %}

<h2>Alerts</h2>
{% if r.alerts %}<figure data-chart="alerts"><h4>Alerts firing in the period</h4>{{ alert_svg | safe }}</figure>
<table><tr><th>alert</th><th>labels</th><th>fired</th><th>resolved</th><th>why</th></tr>
{% for a in r.alerts %}<tr><td>{{ a.alertname }}</td><td>{{ a.subject }}</td><td>{{ ts(a.fired) if a.fired is not none else "before the rows" }}</td>
<td>{{ ts(a.resolved) if a.resolved is not none else "still firing" }}</td><td class="wrap">{{ a.why }}</td></tr>{% endfor %}</table>
{% else %}<p class="muted">No alert fired in the period (no "alert" rows).</p>{% endif %}

<h2>Pipeline</h2>
{% if r.pipeline and r.pipeline.available %}<p class="muted">{{ r.pipeline.note }}.</p>
{% for t in r.pipeline.tables %}<h4>{{ t.title }}</h4>{% if t.rows %}<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p class="muted">none in the period</p>{% endif %}{% endfor %}
{% else %}<p>Pipeline figures {{ r.pipeline.note if r.pipeline else "not available" }}.</p>{% endif %}

<footer><h3>Notes</h3>{% for n in r.footnotes %}<p>{{ n }}</p>{% endfor %}
{% if r.r2_metrics %}<p>Revision 2 rows present: {{ r.r2_metrics | join(", ") }}.</p>{% endif %}</footer>
</body></html>
"""

TOP_TITLES = {"top_posts": "Top posts", "top_authors": "Top authors", "top_links": "Top links"}
TOP_KEYS = {"top_posts": "post", "top_authors": "author", "top_links": "link"}
TOP_VALUES = {
    "top_posts": "engagements",
    "top_authors": "mentions",
    "top_links": "posts with the link",
}

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
_template = _env.from_string(TEMPLATE)


def render(report: Report, generated: float | None = None) -> str:
    length = report.period.until - report.period.since
    brand_charts = {
        b.name: [(s, charts.render(s, length)) for s in b.charts] for b in report.brands
    }
    site_charts = {s.name: [(c, charts.render(c, length)) for c in s.charts] for s in report.sites}
    return _template.render(
        r=report,
        generated=iso(generated if generated is not None else time.time()),
        brand_charts=brand_charts,
        site_charts=site_charts,
        alert_svg=charts.render_timeline(report.alerts, report.alert_chart, length),
        top_titles=TOP_TITLES,
        top_keys=TOP_KEYS,
        top_values=TOP_VALUES,
        ts=iso,
    )
