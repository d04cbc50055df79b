"""Brand and campaign matching rules of METRICS.md, table-driven."""

from __future__ import annotations

import pytest

from ingest.config import Brand, Campaign, Config
from processors.core.matching import Tracker

CONFIG = Config(
    brands=[
        Brand(
            name="acme",
            terms=["acme", "acme shoes"],
            hashtags=["AcmeShoes"],
            domains=["acme.com"],
            accounts={"bluesky": ["did:plc:acme"], "x": ["1001"]},
        ),  # fmt: skip
        Brand(name="globex", terms=["globex corp"], domains=["globex.io"], competitor=True),
    ],
    campaigns=[
        Campaign(
            name="bf",
            brand="acme",
            hashtags=["acmeblackfriday"],
            terms=["black friday"],
            utm_campaign=["BF2026"],
        )
    ],  # fmt: skip
)
T = Tracker(CONFIG)


def mentions(
    text: str = "",
    hashtags=(),
    links=(),
    reply_to_author=None,
    quote_author=None,
    platform="bluesky",
):
    return set(T.content_mentions(platform, text, hashtags, links, reply_to_author, quote_author))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"text": "Acme!"}, {"acme"}),
        ({"text": "I love #acme"}, {"acme"}),
        ({"text": "acmegrowth is a different thing"}, set()),
        ({"text": "nacme"}, set()),
        ({"text": "acme_shoes"}, set()),
        ({"text": "ACME's new line"}, {"acme"}),
        ({"text": "new ACME\n  shoes"}, {"acme"}),
        ({"text": "globex corporation"}, set()),
        ({"text": "Globex   Corp rocks"}, {"globex"}),
        ({"hashtags": ["acmeshoes"]}, {"acme"}),
        ({"hashtags": ["acme"]}, set()),  # a hashtag is not a term match: only the hashtags list
        ({"text": "#AcmeShoes"}, set()),  # hashtags are read from the field, not the text
        ({"links": ["https://acme.com/p/1"]}, {"acme"}),
        ({"links": ["https://shop.acme.com/x"]}, {"acme"}),
        ({"links": ["https://WWW.ACME.COM:443/x"]}, {"acme"}),
        ({"links": ["https://notacme.com/"]}, set()),
        ({"links": ["https://acme.com.evil.io/"]}, set()),
        ({"links": ["not a url"]}, set()),
        ({"reply_to_author": "did:plc:acme"}, {"acme"}),
        ({"quote_author": "did:plc:acme"}, {"acme"}),
        ({"reply_to_author": "1001"}, set()),  # an x account id does not count on bluesky
        ({"reply_to_author": "1001", "platform": "x"}, {"acme"}),
        ({"text": "acme vs globex corp", "links": ["https://globex.io"]}, {"acme", "globex"}),
    ],
)
def test_content_mentions(kwargs: dict, expected: set[str]) -> None:
    assert mentions(**kwargs) == expected


@pytest.mark.parametrize(
    ("platform", "author", "expected"),
    [
        ("bluesky", "did:plc:acme", {"acme"}),
        ("x", "1001", {"acme"}),
        ("x", "did:plc:acme", set()),
        ("bluesky", None, set()),
        ("mastodon", "1001", set()),
    ],  # fmt: skip
)
def test_owners(platform: str, author: str | None, expected: set[str]) -> None:
    assert set(T.owners(platform, author)) == expected


@pytest.mark.parametrize(
    ("text", "hashtags", "utm", "expected_post", "expected_utm"),
    [
        ("Black  Friday deals", [], None, {"bf"}, set()),
        ("", ["AcmeBlackFriday"], "bf2026", {"bf"}, {"bf"}),
        ("blackfriday", [], "BF2026 ", set(), {"bf"}),
        ("", [], "other", set(), set()),
    ],
)
def test_campaigns(
    text: str, hashtags: list[str], utm: str | None, expected_post: set[str], expected_utm: set[str]
) -> None:
    assert set(T.campaigns_of_post(text, hashtags)) == expected_post
    assert set(T.campaigns_of_utm(utm)) == expected_utm
