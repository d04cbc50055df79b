"""Plain text and links out of the HTML fragments that polling sources carry.

Hacker News and RSS send HTML fragments, Reddit markdown (with ``raw_json=1``) plus an HTML
rendering; plain-text links and hashtags are ``ingest.sources.textutil``'s. Regexes on
purpose: the fragments are small and platform-generated, and a full HTML parser would cost
most of the parse time.
"""

from __future__ import annotations

import html
import re

from ingest.sources.textutil import hashtags_in_text, links_in_text, unique

# Block-level boundaries become line breaks so words on either side do not run together.
_BLOCK = re.compile(
    r"<\s*(?:br\s*/?|/?p|/?div|/?li|/?ul|/?ol|/?blockquote|/?pre|/?h[1-6]|/?tr|/?table)\b[^>]*>",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^>]*>")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_DROP = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLANKS = re.compile(r"[ \t\r\f\v]*\n[ \t\r\f\v\n]*")
_ANCHOR = re.compile(r"<a\b[^>]*>.*?</a\s*>", re.IGNORECASE | re.DOTALL)
_HREF = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)


def html_to_text(fragment: str | None) -> str:
    """An HTML fragment as plain text: paragraphs as blank lines, entities decoded."""
    if not fragment:
        return ""
    if "<" not in fragment and "&" not in fragment:
        return fragment.strip()
    s = _COMMENT.sub("", fragment)
    s = _DROP.sub("", s)
    s = _BLOCK.sub(lambda m: "\n\n" if _is_paragraph(m.group(0)) else "\n", s)
    s = _TAG.sub("", s)
    s = html.unescape(s)
    s = _BLANKS.sub(lambda m: "\n\n" if m.group(0).count("\n") > 1 else "\n", s)
    return s.strip()


def _is_paragraph(tag: str) -> bool:
    return tag[1:].lstrip("/ ").lower().startswith(("p", "div", "blockquote", "pre", "h"))


def hrefs(fragment: str | None) -> list[str]:
    """Absolute http(s) link targets of the ``<a href>`` elements, in order, de-duplicated."""
    if not fragment or "href" not in fragment:
        return []
    out = []
    for m in _HREF.finditer(fragment):
        url = html.unescape(m.group(1) or m.group(2) or m.group(3) or "").strip()
        if url[:7].lower() == "http://" or url[:8].lower() == "https://":
            out.append(url)
    return unique(out)


def html_links(fragment: str | None) -> list[str]:
    """Link targets of an HTML fragment plus the URLs written out in its text.

    Anchor texts are left out: sites shorten them ("https://example.com/a/...").
    """
    if not fragment:
        return []
    found = hrefs(fragment)
    if "http" in fragment or "HTTP" in fragment:
        rest = html.unescape(_TAG.sub(" ", _ANCHOR.sub(" ", fragment)))
        found += links_in_text(rest)
    return unique(found)


def hashtags(text: str) -> list[str]:
    """``textutil``'s hashtags, de-duplicated, with a fast path for text without any."""
    return unique(hashtags_in_text(text)) if "#" in text or "\uff03" in text else []
