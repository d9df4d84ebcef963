"""A Markdown document (the report, the findings) as a PDF: markdown-it writes the HTML, with
tables and with any raw HTML in the text escaped, and headless Chromium prints it, so the figures
the document links beside it appear on the pages."""

from __future__ import annotations

import html
from pathlib import Path

from attnlens.errors import InputError
from attnlens.runtime import CHROMIUM

STYLE = """
body { font-family: "DejaVu Serif", Georgia, serif; font-size: 10.5pt; line-height: 1.45; margin: 0 auto; max-width: 46em; }
h1 { font-size: 18pt; margin-bottom: 0.2em; } h2 { font-size: 13.5pt; margin-top: 1.4em; } h3 { font-size: 11.5pt; }
table { border-collapse: collapse; font-size: 8pt; margin: 0.6em 0; page-break-inside: avoid; }
th, td { border: 1px solid #bbb; padding: 2px 5px; vertical-align: top; } th { background: #f2f2f2; }
img { max-width: 100%; page-break-inside: avoid; } code { font-size: 8.5pt; } pre { white-space: pre-wrap; font-size: 8pt; }
blockquote { color: #444; border-left: 3px solid #ccc; margin-left: 0; padding-left: 1em; }
"""


def to_html(markdown: str, title: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")  # fmt: skip


def render_pdf(source: Path, pdf: Path | None = None) -> Path:
    """Print `source` (Markdown) to `pdf` (default: beside it, .pdf); returns the PDF's path."""
    from playwright.sync_api import sync_playwright

    source = Path(source)
    if source.suffix != ".md" or not source.is_file():
        raise InputError(f"{source} is not a Markdown file")
    if not Path(CHROMIUM).is_file():
        raise InputError(f"rendering a PDF needs Chromium at {CHROMIUM} (apt-get install chromium, or set ATTNLENS_CHROMIUM)")
    pdf = Path(pdf) if pdf else source.with_suffix(".pdf")
    page_html = source.with_name(f".{source.stem}.print.html")  # beside the source: its relative figure links resolve
    page_html.write_text(to_html(source.read_text(encoding="utf-8"), source.stem), encoding="utf-8")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True)
            page = browser.new_page()
            page.goto(page_html.resolve().as_uri(), wait_until="load")
            pdf.parent.mkdir(parents=True, exist_ok=True)
            page.pdf(path=str(pdf), format="A4", margin={"top": "18mm", "bottom": "18mm", "left": "16mm", "right": "16mm"},
                     print_background=True, display_header_footer=True, header_template="<span></span>",
                     footer_template='<div style="font-size:8pt;width:100%;text-align:center"><span class="pageNumber"></span></div>')  # fmt: skip
            browser.close()
    finally:
        page_html.unlink(missing_ok=True)
    return pdf
