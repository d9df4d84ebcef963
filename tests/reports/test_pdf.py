"""Markdown to PDF through headless Chromium (reports.pdf, `attnlens pdf`)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from attnlens.reports.pdf import render_pdf, to_html

ATTNLENS = str(Path(sys.executable).with_name("attnlens"))


def test_html_has_tables_and_escapes_raw_html():
    page = to_html("# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script>\n", "t")
    assert "<table>" in page and "<td>2</td>" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page


@pytest.mark.slow
def test_a_report_with_a_figure_prints_to_pdf(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    (tmp_path / "data").mkdir()
    fig.savefig(tmp_path / "data" / "plot.png")
    doc = tmp_path / "report.md"
    doc.write_text("# Report\n\n" + "Some words. " * 400 + "\n\n![plot](data/plot.png)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    pdf = render_pdf(doc)
    data = pdf.read_bytes()
    assert pdf == tmp_path / "report.pdf" and data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 2  # the text runs over a page
    assert b"/Subtype /Image" in data or b"/Subtype/Image" in data  # the figure was found and embedded
    assert not list(tmp_path.glob(".*.print.html"))  # the page it printed is cleaned up


def test_cli_refuses_what_is_not_markdown(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    done = subprocess.run([ATTNLENS, "pdf", str(tmp_path / "notes.txt")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is not a Markdown file" in done.stderr and "Traceback" not in done.stderr
