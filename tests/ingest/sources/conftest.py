"""Fixtures for source tests; the helpers themselves live in ingest_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cursors import CursorStore


@pytest.fixture
def cursor_store(tmp_path: Path) -> CursorStore:
    return CursorStore(tmp_path / "cursors")
