"""The website collector (``ripple ingest web``): the SMO side of Ripple.

A site's pages load ``/ripple.js``, which posts ``pageview``, ``share_click`` and
``conversion`` events to ``/e``; the collector turns them into canonical events
(``wire``), checks the site and origin (``sites``), rate-limits clients (``ratelimit``) and
delivers to Kafka, falling back to a local spool while Kafka is away (``sink``, ``spool``).
"""
