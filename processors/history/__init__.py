"""History tools: replay (files or a live topic), archive, backfill."""
