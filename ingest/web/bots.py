"""Bot traffic on the website: crawlers by User-Agent, automated browsers by their own word.

Crawlers are recognised by ``crawlerdetect`` (a port of the maintained CrawlerDetect list:
search engines, AI crawlers, HTTP libraries, headless browsers), never by a hand-written
regex. Browsers driven by automation say so in ``navigator.webdriver``, which the snippet
sends as ``"automated": true``. Either way the request is answered 204 and counted, and
nothing of it reaches Kafka (METRICS.md r2: bot traffic is kept out of every metric).
"""

from __future__ import annotations

from functools import lru_cache

from crawlerdetect import CrawlerDetect

# Longer User-Agent strings are cut before matching: the list's regexes stay cheap on junk.
_MAX_UA = 512
_detector = CrawlerDetect()


@lru_cache(maxsize=4096)  # real traffic repeats a few hundred browser strings
def is_crawler(user_agent: str | None) -> bool:
    """True for a crawler's User-Agent. A missing or empty one is not judged a crawler."""
    if not user_agent:
        return False
    return bool(_detector.isCrawler(user_agent[:_MAX_UA]))
