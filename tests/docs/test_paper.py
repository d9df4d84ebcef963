"""docs/report.md, the workshop paper: its sections, length and figures, and every number in it
traceable to a file of the repository that the same paragraph links to."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REPORT = DOCS / "report.md"
SECTIONS = ("Abstract", "Introduction", "Related work", "Method", "Experimental setup", "Results",
            "Limitations", "Conclusion", "References")  # fmt: skip
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# a number: digits not glued to a word before them ("SmolLM2", "Qwen2.5" are names); a unit after
# it ("1.53x", "18 GB", "135M") is not part of the number
NUMBER = re.compile(r"(?<![\w.\-/])-?\d[\d,]*(?:\.\d+)?")
YEAR = re.compile(r"^(199\d|20[0-2]\d)$")


def blocks(text: str) -> list[str]:
    """The report's paragraphs, list items and tables above the references, headings left out; a
    quotation or an indented formula belongs to the paragraph before it (which names its source),
    a table or a figure to the caption after it."""
    body = text.split("\n## References")[0]
    out: list[str] = []
    for block in re.split(r"\n\s*\n", body):
        if block.startswith("#") or not block.strip():
            continue
        captioned = block.startswith(("*Table", "*Figure")) and out and out[-1].startswith(("|", "!["))
        if out and (block.startswith((">", "    ")) or captioned):
            out[-1] += "\n" + block
        else:
            out.append(block)
    return out


def numbers(block: str) -> set[str]:
    prose = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", block)  # an image's text and path are not numbers
    prose = LINK.sub(lambda m: m.group(0).split("](")[0], prose)  # nor are link targets,
    prose = re.sub(r"\b(?:Sections?|Figures?|Tables?) \d+(?:\.\d+)?", "", prose)  # cross-references
    prose = re.sub(r"\b\d+(?:\.\d+)?[MB]\b", "", prose)  # or model sizes, which are part of names ("Qwen2.5 1.5B")
    found = {n.lstrip("-").replace(",", "") for n in NUMBER.findall(prose)}
    return {n for n in found if not YEAR.match(n) and not (n.isdigit() and int(n) <= 10)}


def sources(block: str) -> list[Path]:
    paths = []
    for target in LINK.findall(block):
        if "://" in target:
            continue
        path = (DOCS / target.split("#")[0]).resolve()
        if path.is_file() and path.suffix in (".md", ".json", ".py", ".jsonl", ".txt"):
            paths.append(path)
    return paths


def appears(number: str, text: str) -> bool:
    """`number` as written, or with thousands separators, and not inside a longer number."""
    whole, _, frac = number.partition(".")
    grouped = f"{int(whole):,}" + ("." + frac if frac else "")
    return any(re.search(r"(?<![\d.])" + re.escape(form) + r"(?![\d])", text) for form in {number, grouped})


@pytest.fixture(scope="module")
def report() -> str:
    return REPORT.read_text()


def test_the_report_has_the_sections_of_a_paper(report):
    headings = [h.lstrip("#").strip() for h in report.splitlines() if h.startswith("## ")]
    for section in SECTIONS:
        assert any(re.sub(r"^\d+ ", "", h) == section for h in headings), section
    words = len(report.split("\n## References")[0].split())
    assert words >= 3000, words


def test_the_report_shows_six_figures_from_the_repository(report):
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(images) >= 6
    for image in images:
        assert (DOCS / image).is_file(), image
    assert len(re.findall(r"^\*Figure \d+:", report, flags=re.M)) == len(images)


def test_every_number_is_in_a_file_its_paragraph_links_to(report):
    untraced = []
    for block in blocks(report):
        wanted = numbers(block)
        if not wanted:
            continue
        text = "\n".join(p.read_text(errors="replace") for p in sources(block))
        missing = sorted(n for n in wanted if not appears(n, text))
        if missing:
            untraced.append((block[:80], missing))
    assert not untraced, untraced


def test_the_traceability_check_can_fail(tmp_path):
    """The check above finds a number its paragraph's source does not hold."""
    block = "Entropy fell by 0.089 and distance rose by 5.75 in Qwen2.5 1.5B (Section 5.3) ([findings](findings.md))."
    text = "entropy -0.089 [-0.104, -0.076]"
    assert numbers(block) == {"0.089", "5.75"}
    assert appears("0.089", text) and not appears("5.75", text) and not appears("0.08", text)
    assert appears("1234", "1,234 cases") and not appears("12", "123")
