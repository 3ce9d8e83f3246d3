"""The Python 3.11 documentation as an eval corpus: which pages, their plain text, text windows.

A page id is the path relative to the HTML root (``library/functools.html``). The corpus is every
HTML page of Debian's ``python3.11-doc`` except the pages Sphinx generates as link lists (the
general index, the module index, the full table of contents and the search page): they hold no
prose, only the names of everything, and would match every question by name.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import lxml.html

DEFAULT_ROOT = Path("/usr/share/doc/python3.11/html")
ROOT_ENV = "HOLDFAST_PYDOCS_ROOT"
CACHE_ENV = "HOLDFAST_EVAL_CACHE"
EXCLUDED = re.compile(r"^(genindex(-[^/]*)?|py-modindex|search|contents)\.html$")
_BLOCK_TAGS = (
    "p", "div", "section", "li", "dt", "dd", "tr", "pre", "br", "table", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "caption", "dl", "ul", "ol",
)  # fmt: skip
_CELL_TAGS = ("td", "th")
_SPACE = re.compile(r"\s+")
_TITLE_SUFFIX = re.compile(r"\s+[—-]\s+Python [\d.]+ documentation$")
_VERSION = re.compile(r"Python (\d+\.\d+(?:\.\d+)?) documentation")


class DocsMissingError(RuntimeError):
    """The documentation is not installed where it is looked for."""


@dataclass(frozen=True)
class Page:
    page_id: str
    title: str
    text: str  # the main body, tags stripped, whitespace collapsed to single spaces


def docs_root() -> Path:
    """Where the HTML lives: ``$HOLDFAST_PYDOCS_ROOT`` or Debian's path."""
    root = Path(os.environ.get(ROOT_ENV, str(DEFAULT_ROOT)))
    if not (root / "library" / "functools.html").is_file():
        raise DocsMissingError(
            f"Python 3.11 HTML docs not found under {root}: run scripts/install-python-docs.sh "
            f"(or point {ROOT_ENV} at an html/ folder)"
        )
    return root


def cache_dir() -> Path:
    """Window embeddings and ingest records: ``$HOLDFAST_EVAL_CACHE`` or ~/.cache/holdfast-evals."""
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "holdfast-evals")
    path = Path(base) / "python-docs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def page_ids(root: Path) -> list[str]:
    """Every page of the corpus, sorted."""
    ids = (p.relative_to(root).as_posix() for p in root.rglob("*.html"))
    return sorted(i for i in ids if not i.startswith("_") and not EXCLUDED.match(i))


def all_html_ids(root: Path) -> set[str]:
    """Every HTML file under the root, the excluded index pages included."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*.html")}


def html_to_page(page_id: str, html: bytes) -> Page:
    """Title and the plain text of the page's main body (navigation, sidebar, footer dropped)."""
    tree = lxml.html.fromstring(html.decode("utf-8", errors="replace"))
    raw_title = tree.findtext(".//title") or page_id
    title = _TITLE_SUFFIX.sub("", raw_title.strip())
    bodies = tree.xpath('//div[@role="main"]')
    body = bodies[0] if bodies else tree
    for bad in body.xpath('.//script|.//style|.//a[@class="headerlink"]'):
        bad.drop_tree()
    for el in body.iter(*_BLOCK_TAGS):
        el.tail = "\n" + (el.tail or "")
    for el in body.iter(*_CELL_TAGS):
        el.tail = " " + (el.tail or "")
    text = _SPACE.sub(" ", body.text_content()).strip()
    return Page(page_id=page_id, title=title, text=text)


@lru_cache(maxsize=2048)
def _load(root: str, page_id: str) -> Page:
    return html_to_page(page_id, (Path(root) / page_id).read_bytes())


def load_page(root: Path, page_id: str) -> Page:
    return _load(str(root), page_id)


def load_pages(root: Path, ids: Sequence[str] | None = None) -> list[Page]:
    return [load_page(root, i) for i in (ids if ids is not None else page_ids(root))]


def docs_version(root: Path) -> str:
    """Release from the docs' own title plus a digest of page names and sizes: a cache key."""
    title = (root / "index.html").read_text(encoding="utf-8", errors="replace")[:4000]
    match = _VERSION.search(title)
    release = match.group(1) if match else "unknown"
    digest = hashlib.sha256()
    for page_id in page_ids(root):
        digest.update(f"{page_id}\0{(root / page_id).stat().st_size}\n".encode())
    return f"{release}-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class Window:
    page_id: str
    text: str


def windows(page: Page, size: int = 200, overlap: int = 50) -> Iterator[Window]:
    """Overlapping word windows of the page body, each prefixed with the page title."""
    words = page.text.split()
    if not words:
        yield Window(page.page_id, page.title)
        return
    step = max(1, size - overlap)
    for start in range(0, max(1, len(words) - overlap), step):
        chunk = " ".join(words[start : start + size])
        yield Window(page.page_id, f"{page.title}\n{chunk}")
