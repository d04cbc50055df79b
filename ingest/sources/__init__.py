"""Social platform sources, one module per platform, each behind ``ingest.sources.base.Source``."""
