"""Print the report page to PDF with Debian's headless Chromium (no browser download)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pdf-header-footer",
)


class PdfError(Exception):
    pass


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise PdfError("chromium is not installed (Debian: apt-get install chromium)")
    return found


def print_pdf(html: Path, pdf: Path, timeout: float = 120) -> None:
    """``html`` printed to ``pdf``; a fresh profile each time, so nothing of a user's leaks in."""
    pdf = pdf.resolve()
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="ripple-pdf-") as profile:
        cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf}",
               html.resolve().as_uri()]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PdfError(f"chromium did not print within {timeout:.0f}s") from None
    if not pdf.exists() or pdf.read_bytes()[:5] != b"%PDF-":
        raise PdfError(f"chromium wrote no PDF (exit {proc.returncode}): {proc.stderr[-800:]}")
