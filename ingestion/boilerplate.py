"""The main content of an HTML page, without the chrome that every page of a site repeats.

Navigation bars, sidebars, breadcrumbs, "Prev | Up | Next | Home" tables, tables of contents,
search boxes, theme switchers, footers and permalink marks are the same on every page of a
manual; indexed, each becomes a chunk that matches many questions and answers none. They are cut
from the HTML tree before partitioning, in this order:

1. the page's main element when it names one (``role="main"``, ``<main>``, a single
   ``<article>``), otherwise the body;
2. inside it, minus what HTML semantics call chrome (``nav``, forms and scripts, the
   landmark roles navigation, banner, contentinfo, search, complementary; a ``footer``; a
   ``header`` that holds no heading; an ``aside`` outside a main element, where it is a sidebar;
   inside one it is a footnote, a note or a sidebar directive and stays, whatever its class),
   and minus hidden elements: the ``hidden`` attribute, ``aria-hidden``, an inline style
   ``display: none`` or ``visibility: hidden``. A reader never sees that text, and it is the
   classic place to hide instructions for a model that will read the page;
3. minus the markup of documentation generators and sites that is navigation by name: a class or
   id token such as ``navheader``, ``breadcrumb``, ``sidebar``, ``toctree-wrapper``, ``toc``, a
   table whose summary says "Navigation" (DocBook, gtk-doc), "Skip to content" links;
4. minus permalink anchors (``¶``, ``#``, ``§``) next to headings and definitions.

Everything else stays as HTML, so headings, code blocks and tables keep their structure for the
partitioner. Disclosure widgets (``details``/``summary``, the FAQ accordion) and figure captions
become plain blocks first: the partitioner drops them, and their text is what the reader opens
or reads under the figure. Only lxml is used: it is already a dependency of unstructured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

from ingestion.xml_elements import remove_keeping_tail

# Tags that are never content.
_DROP_TAGS = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "canvas",
        "iframe",
        "object",
        "embed",
        "form",
        "button",
        "input",
        "select",
        "textarea",
        "nav",
        "dialog",
        "link",
        "meta",
        "footer",
    }
)
_DROP_ROLES = frozenset(
    {
        "navigation",
        "banner",
        "contentinfo",
        "search",
        "complementary",
        "menu",
        "menubar",
        "toolbar",
        "dialog",
        "alertdialog",
    }
)
# Whole class or id tokens (never substrings: "table-header" or "navigable" are content).
_DROP_NAMES = frozenset(
    {
        # generic site chrome
        "nav",
        "navbar",
        "navigation",
        "menu",
        "breadcrumb",
        "breadcrumbs",
        "sidebar",
        "skip-link",
        "skiplink",
        "skip-to-content",
        "site-header",
        "site-footer",
        "page-footer",
        "footer",
        "cookie-banner",
        "theme-switcher",
        "edit-this-page",
        "prev-next-area",
        "prev-next-footer",
        "related",
        "relbar",
        # Sphinx
        "sphinxsidebar",
        "sphinxsidebarwrapper",
        "toctree-wrapper",
        "indextable",  # genindex and py-modindex: every name of the manual, as links
        "genindextable",
        "modindextable",
        "genindex-jumpbox",
        "modindex-jumpbox",
        "rst-footer-buttons",
        "mobile-nav",
        "sidebarbutton",
        # DocBook, gtk-doc, Texinfo
        "navheader",
        "navfooter",
        "toc",
        "list-of-tables",
        "list-of-figures",
        "list-of-examples",
        "nav-panel",
        # Node.js API docs
        "gtoc",
        "column2",
    }
)
# Texinfo's "Next: … Up: …" bar is a div.header without a heading; so is much site chrome.
_HEADER_NAMES = frozenset({"header", "page-header"})
_PERMALINK_NAMES = frozenset(
    {"headerlink", "anchor", "anchorjs-link", "copiable-anchor", "id_link", "permalink"}
)
_PERMALINK_TEXT = frozenset({"", "¶", "#", "§", "🔗", "⚓", "link", "permalink"})
_SKIP_TEXT = re.compile(r"^\s*(skip to (main )?content|skip navigation|back to top|jump to)", re.I)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\s*(?:!\s*important\s*)?(?:;|$)",
    re.I,
)
# Read as plain blocks: what the partitioner would drop although a reader sees it.
_AS_BLOCKS = {"details": "div", "summary": "p", "figure": "div", "figcaption": "p"}
_PILCROW_END = re.compile(r"\s*¶\s*$")


@dataclass(frozen=True, slots=True)
class MainContent:
    title: str  # the <title> text, whitespace-collapsed ("" when the page has none)
    html: str  # one <html><body> with the main content only
    selector: str  # which rule chose the main element (for reports)


def _tokens(element: etree._Element) -> set[str]:
    names = set((element.get("class") or "").split())
    element_id = element.get("id")
    if element_id:
        names.add(element_id)
    return {n.lower() for n in names}


def is_hidden(hidden: str | None, aria_hidden: str | None, style: str | None) -> bool:
    """Whether an element with these attributes is invisible to a reader."""
    if hidden is not None or (aria_hidden or "").strip().lower() == "true":
        return True
    return bool(style and _HIDING_STYLE.search(style))


def _has_heading(element: etree._Element) -> bool:
    return element.tag in _HEADINGS or any(True for _ in element.iter(*_HEADINGS))


def _is_chrome(element: etree._Element, *, inside_main: bool) -> bool:
    tag = element.tag
    if not isinstance(tag, str):  # comments, processing instructions
        return True
    if tag in _DROP_TAGS:
        return True
    if is_hidden(element.get("hidden"), element.get("aria-hidden"), element.get("style")):
        return True
    role = (element.get("role") or "").lower()
    if role in _DROP_ROLES:
        return True
    if tag == "aside":  # in a main element: a footnote, a note, a docutils sidebar directive
        return not inside_main
    names = _tokens(element)
    if names & _DROP_NAMES:
        return True
    if (tag == "header" or names & _HEADER_NAMES) and not _has_heading(element):
        return True
    if tag == "table" and (element.get("summary") or "").lower().startswith("navigation"):
        return True
    if tag == "a":
        text = (element.text_content() or "").strip()
        href = element.get("href") or ""
        if names & _PERMALINK_NAMES:
            return True
        if href.startswith("#") and text.lower() in _PERMALINK_TEXT and len(element) == 0:
            return True
        if _SKIP_TEXT.match(text):
            return True
    return False


def _strip_chrome(root: etree._Element, *, inside_main: bool) -> None:
    # Walk top-down and skip the subtree of anything dropped: one pass, no re-scans.
    stack = list(root)
    doomed = []
    while stack:
        element = stack.pop()
        if _is_chrome(element, inside_main=inside_main):
            doomed.append(element)
        else:
            stack.extend(element)
    for element in doomed:
        remove_keeping_tail(element)


def _strip_pilcrows(root: etree._Element) -> None:
    """A trailing ``¶`` in a heading or a definition term is a permalink mark without markup;
    anywhere else (a legal text, a code sample) the sign is content and stays."""
    for element in root.iter(*_HEADINGS, "dt", "caption"):
        last = element[-1] if len(element) else None
        if last is not None and last.tail and last.tail.rstrip().endswith("¶"):
            last.tail = _PILCROW_END.sub("", last.tail)
        elif last is None and element.text and element.text.rstrip().endswith("¶"):
            element.text = _PILCROW_END.sub("", element.text)


def _main_element(body: etree._Element) -> tuple[etree._Element, str]:
    for selector, xpath in (
        ('[role="main"]', "//*[@role='main']"),
        ("main", "//main"),
    ):
        found = body.xpath(xpath)
        if found:
            return found[0], selector
    articles = body.xpath("//article")
    if len(articles) == 1:
        return articles[0], "article"
    return body, "body"


def _parse(raw: bytes | str) -> etree._Element:
    """UTF-8 unless the bytes are not (then lxml reads the page's own charset declaration): a
    page that declares no charset is not read as Latin-1."""
    if isinstance(raw, str):
        data, encoding = raw.encode("utf-8"), "utf-8"  # lxml refuses str with an XML declaration
    else:
        try:
            raw.decode("utf-8")
            data, encoding = raw, "utf-8"
        except UnicodeDecodeError:
            data, encoding = raw, None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    parser = lxml_html.HTMLParser(encoding=encoding, remove_comments=True, remove_pis=True)
    return lxml_html.document_fromstring(data, parser=parser)


def visible_fragment(fragment: str) -> str:
    """An HTML fragment (a Markdown file's HTML block) without its comments and hidden
    elements; what a reader of the rendered file sees of it."""
    parser = lxml_html.HTMLParser(remove_comments=True, remove_pis=True)
    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div", parser=parser)
    except etree.ParserError:
        return ""  # nothing but comments
    hidden = [
        e
        for e in root.iter()
        if e is not root
        and isinstance(e.tag, str)
        and is_hidden(e.get("hidden"), e.get("aria-hidden"), e.get("style"))
    ]
    for element in hidden:
        remove_keeping_tail(element)
    inner = (root.text or "") + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )
    return inner.strip()


def extract_main(raw: bytes | str) -> MainContent:
    """The main content of an HTML document, as HTML, with the page's <title>."""
    document = _parse(raw)
    title_element = document.find(".//title")
    title = " ".join((title_element.text_content() if title_element is not None else "").split())
    body = document.find("body")
    if body is None:
        body = document
    main, selector = _main_element(body)
    _strip_chrome(main, inside_main=selector != "body")
    _strip_pilcrows(main)
    for element in main.iter(*_AS_BLOCKS):
        element.tag = _AS_BLOCKS[element.tag]
    wrapper = lxml_html.Element("html")
    wrapper_body = etree.SubElement(wrapper, "body")
    if main.tag == "body":
        wrapper_body.text = main.text
        for child in list(main):
            wrapper_body.append(child)
    else:
        main.tail = None
        wrapper_body.append(main)
    return MainContent(title, etree.tostring(wrapper, encoding="unicode", method="html"), selector)
