"""Which way of dropping HTML boilerplate keeps a manual's content and leaves none of its chrome.

Compares, on every page of the Python docs (Sphinx, from Debian's python3.11-doc) and on the
non-Sphinx pages of tests/fixtures/html:

  unstructured        partition_html on the whole page (what Holdfast did before)
  unstructured-skip   the same with ``skip_headers_and_footers=True``
  trafilatura         trafilatura.extract, Markdown output, tables and formatting on
  trafilatura-recall  the same with ``favor_recall=True``
  readability         readability-lxml's summary, then partition_html
  main+unstructured   ingestion.boilerplate.extract_main, then partition_html (the chosen one)

For each: seconds a page, characters kept, word recall against the reference text, pages with
chrome strings left (beyond their count in the reference), code blocks kept with their line
breaks, tables kept as tables, headings kept as headings. The reference of a Sphinx page is the
text of ``div[role=main]`` without permalink marks and link-only toctrees; chrome is the list in
``CHROME``. trafilatura and readability-lxml are not Holdfast dependencies: install them into a
separate folder and put it on PYTHONPATH to include them, e.g.

    uv pip install --target /tmp/evaldeps trafilatura==2.3.1 readability-lxml==0.9
    PYTHONPATH=/tmp/evaldeps .venv/bin/python -m benchmarks.html_extractors [--limit N]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lxml import html as lxml_html

from ingestion.boilerplate import extract_main

DOCS = Path("/usr/share/doc/python3.11/html")
FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures" / "html"
REPORTS = Path(__file__).parent / "reports"

# Strings of the Python docs' navigation, sidebar, search box and footer.
CHROME = (
    "Previous topic",
    "Next topic",
    "This Page",
    "Report a Bug",
    "Show Source",
    "Quick search",
    "Table of Contents",
    "Navigation",
    "modules |",
    "next |",
    "previous |",
    "Python »",
    "Documentation »",
    "© Copyright",
    "Last updated on",
    "Found a bug",
    "Created using Sphinx",
    "Please donate",
    "Theme",
    "¶",
)
# Strings of the non-Sphinx fixtures' chrome.
FIXTURE_CHROME = (
    "Prev",
    "Home",
    "Next:",
    "Up:",
    "Skip to content",
    "Back to top",
    "Recent posts",
    "This site uses cookies",
    "All rights reserved",
    "Archive",
    "Table of Contents",
    "Assertion testing",
    "Navigation header",
)


@dataclass
class Output:
    text: str
    code_blocks: list[str] = field(default_factory=list)
    tables: int = 0
    headings: int = 0


@dataclass
class Tally:
    pages: int = 0
    seconds: float = 0.0
    chars: int = 0
    recall_sum: float = 0.0
    chrome_pages: int = 0
    chrome_hits: Counter[str] = field(default_factory=Counter)
    code_ref: int = 0
    code_kept: int = 0
    tables_ref: int = 0
    tables_out: int = 0
    headings_ref: int = 0
    headings_out: int = 0
    failures: int = 0


def _elements_output(elements: list) -> Output:
    out = Output("\n".join(e.text or "" for e in elements))
    for element in elements:
        kind = type(element).__name__
        if kind == "CodeSnippet":
            out.code_blocks.append(element.text or "")
        elif kind == "Table":
            out.tables += 1
        elif kind == "Title":
            out.headings += 1
    return out


def _unstructured(raw: bytes, **kwargs: object) -> Output:
    from unstructured.partition.html import partition_html

    return _elements_output(partition_html(text=raw.decode("utf-8", "replace"), **kwargs))


def _main_unstructured(raw: bytes) -> Output:
    from unstructured.partition.html import partition_html

    return _elements_output(partition_html(text=extract_main(raw).html))


def _readability(raw: bytes) -> Output:
    from readability import Document
    from unstructured.partition.html import partition_html

    summary = Document(raw.decode("utf-8", "replace")).summary(html_partial=True)
    return _elements_output(partition_html(text=f"<html><body>{summary}</body></html>"))


def _trafilatura(raw: bytes, *, recall: bool) -> Output:
    import trafilatura

    text = (
        trafilatura.extract(
            raw.decode("utf-8", "replace"),
            output_format="markdown",
            include_tables=True,
            include_formatting=True,
            include_comments=False,
            include_links=False,
            favor_recall=recall,
        )
        or ""
    )
    fences = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    return Output(
        text,
        code_blocks=fences,
        tables=len(re.findall(r"^\|[\s:-]*-{3}[\s|:-]*\|?\s*$", text, re.M)),
        headings=len(re.findall(r"^#{1,6} ", text, re.M)),
    )


def methods() -> dict[str, Callable[[bytes], Output]]:
    found: dict[str, Callable[[bytes], Output]] = {
        "unstructured": _unstructured,
        "unstructured-skip": lambda raw: _unstructured(raw, skip_headers_and_footers=True),
    }
    try:
        import trafilatura  # noqa: F401

        found["trafilatura"] = lambda raw: _trafilatura(raw, recall=False)
        found["trafilatura-recall"] = lambda raw: _trafilatura(raw, recall=True)
    except ImportError:
        pass
    try:
        import readability  # noqa: F401

        found["readability"] = _readability
    except ImportError:
        pass
    found["main+unstructured"] = _main_unstructured
    return found


@dataclass
class Reference:
    text: str
    code_blocks: list[str]
    tables: int
    headings: int


def sphinx_reference(raw: bytes) -> Reference:
    """The Sphinx body: ``div[role=main]`` less permalinks, toctrees, local contents, forms."""
    root = lxml_html.document_fromstring(raw)
    main = root.xpath("//*[@role='main']")[0]
    for junk in main.xpath(
        ".//a[contains(@class,'headerlink')] | .//div[contains(@class,'toctree-wrapper')]"
        " | .//nav | .//form | .//script | .//noscript"
    ):
        junk.drop_tree()
    return Reference(
        main.text_content(),
        [pre.text_content() for pre in main.iter("pre")],
        len(main.xpath(".//table")),
        len(main.xpath(".//h1|.//h2|.//h3|.//h4|.//h5|.//h6")),
    )


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def _code_kept(block: str, out: Output) -> bool:
    """The block's first two non-blank lines appear in one code block of the output, in order."""
    lines = [line.strip() for line in block.splitlines() if line.strip()][:2]
    if not lines:
        return True
    for candidate in out.code_blocks:
        got = [line.strip() for line in candidate.splitlines() if line.strip()]
        for i in range(len(got) - len(lines) + 1):
            if got[i : i + len(lines)] == lines:
                return True
    return False


def measure(
    name: str,
    method: Callable[[bytes], Output],
    pages: list[tuple[Path, Reference | None]],
    chrome: tuple[str, ...],
) -> Tally:
    tally = Tally()
    for path, ref in pages:
        raw = path.read_bytes()
        start = time.perf_counter()
        try:
            out = method(raw)
        except Exception:  # an extractor that fails on a page keeps nothing of it
            tally.failures += 1
            out = Output("")
        tally.seconds += time.perf_counter() - start
        tally.pages += 1
        tally.chars += len(" ".join(out.text.split()))
        ref_text = ref.text if ref is not None else ""
        left = {s: out.text.count(s) - ref_text.count(s) for s in chrome}
        left = {s: n for s, n in left.items() if n > 0}
        tally.chrome_hits.update(left)
        tally.chrome_pages += bool(left)
        tally.headings_out += out.headings
        tally.tables_out += out.tables
        if ref is None:
            continue
        ref_words, out_words = _words(ref.text), _words(out.text)
        total = sum(ref_words.values())
        tally.recall_sum += sum((ref_words & out_words).values()) / total if total else 1.0
        tally.code_ref += len(ref.code_blocks)
        tally.code_kept += sum(_code_kept(block, out) for block in ref.code_blocks)
        tally.tables_ref += ref.tables
        tally.headings_ref += ref.headings
    return tally


def _row(name: str, t: Tally, *, with_ref: bool) -> str:
    per_page = 1000 * t.seconds / max(t.pages, 1)
    top = ", ".join(f"{s!r} x{n}" for s, n in t.chrome_hits.most_common(4)) or "none"
    if not with_ref:
        return (
            f"| {name} | {per_page:.0f} | {t.chars:,} | {t.chrome_pages}/{t.pages} | {top} "
            f"| {t.tables_out} | {t.headings_out} | {t.failures} |"
        )
    return (
        f"| {name} | {per_page:.0f} | {t.chars:,} | {t.recall_sum / max(t.pages, 1):.3f} "
        f"| {t.chrome_pages}/{t.pages} | {top} | {t.code_kept}/{t.code_ref} "
        f"| {t.tables_out}/{t.tables_ref} | {t.headings_out}/{t.headings_ref} | {t.failures} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--limit", type=int, default=0, help="first N pages only (0: all)")
    parser.add_argument("--only", default="", help="comma-separated method names")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

    docs = sorted(args.docs.rglob("*.html"))
    if args.limit:
        docs = docs[: args.limit]
    sphinx = [(p, sphinx_reference(p.read_bytes())) for p in docs]
    fixtures: list[tuple[Path, Reference | None]] = [
        (p, None) for p in sorted(FIXTURES.glob("*.html")) if not p.name.startswith("sphinx-")
    ]
    chosen = methods()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    _unstructured(b"<html><body><p>Warm up the spaCy model once.</p></body></html>")

    lines = [
        f"# HTML boilerplate removal compared — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Python docs: {len(sphinx)} pages of {args.docs} (Sphinx). Fixtures: "
        f"{len(fixtures)} non-Sphinx pages of tests/fixtures/html. {os.cpu_count()} cores, "
        "one process; spaCy loaded before timing.",
        "",
        "Word recall: share of the reference's words (multiset) found in the output; the "
        "reference is the text of `div[role=main]` without permalinks and link-only toctrees. "
        "Chrome: pages whose output holds a chrome string more often than the reference does.",
        "",
        "| method | ms/page | chars kept | word recall | pages with chrome | most left "
        "| code blocks kept | tables | headings | failures |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    fixture_rows = [
        "",
        "## Non-Sphinx pages (DocBook, Texinfo, gtk-doc, Node.js, a blog page)",
        "",
        "| method | ms/page | chars kept | pages with chrome | chrome left | tables | headings "
        "| failures |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for name, method in chosen.items():
        tally = measure(name, method, sphinx, CHROME)
        lines.append(_row(name, tally, with_ref=True))
        print(lines[-1], flush=True)
        fixture_rows.append(
            _row(name, measure(name, method, fixtures, FIXTURE_CHROME), with_ref=False)
        )
        print(fixture_rows[-1], flush=True)
    REPORTS.mkdir(exist_ok=True)
    out = REPORTS / f"html-extractors-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.md"
    out.write_text("\n".join(lines + fixture_rows) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
