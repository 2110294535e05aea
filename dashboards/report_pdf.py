"""Printable A4 PDF of a report page: headless Chromium's ``--print-to-pdf``.

Chromium comes from Debian's ``chromium`` package (``services/bootstrap`` installs it). The
page is self-contained (inline CSS and PNGs), so Chromium fetches nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


class PdfError(RuntimeError):
    """Chromium is missing or failed; the message is one line for the user."""


def find_chromium(name: str) -> str:
    for candidate in (name, "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(candidate)
        if path:
            return path
    raise PdfError(
        f"no Chromium found ({name!r}); install Debian's chromium package (services/bootstrap) "
        "or pass --no-pdf"
    )


def to_pdf(html_path: Path, chromium: str, timeout_s: float = 120.0) -> Path:
    """Print ``html_path`` to a PDF beside it (same name, .pdf); returns the PDF's path."""
    exe = find_chromium(chromium)
    pdf = html_path.with_suffix(".pdf")
    with tempfile.TemporaryDirectory(prefix="sledfleet-chromium-") as profile:
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",  # root in containers; the page is our own local file
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            html_path.resolve().as_uri(),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise PdfError(
                f"chromium did not finish printing {html_path} in {timeout_s:g} s"
            ) from exc
    if proc.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PdfError(f"chromium could not print {html_path} (exit {proc.returncode}): {tail}")
    return pdf
