"""Reading a Sphinx page: main text only, tables and code kept; word windows; the page list."""

from __future__ import annotations

import pytest

from benchmarks.python_docs.corpus import EXCLUDED, Page, html_to_page, windows

pytestmark = pytest.mark.unit

HTML = b"""<html><head><title>os.path \xe2\x80\x94 Common pathname manipulations &#8212;
Python 3.11.2 documentation</title><script>var x = 1;</script></head><body>
<div class="related" role="navigation"><a href="#">Prev</a> | <a>Next</a></div>
<div class="body" role="main"><h1>os.path<a class="headerlink" href="#x">\xc2\xb6</a></h1>
<p>Return the size, in <code>bytes</code>,
of path.</p>
<table><tr><th>Directive</th><th>Meaning</th></tr>
<tr><td>%j</td><td>Day of the year</td></tr></table>
<pre>import os
os.path.getsize(p)</pre></div>
<div class="sphinxsidebar" role="navigation">Quick search</div>
<div class="footer">Copyright</div></body></html>"""


def test_page_text_is_the_main_body_without_chrome() -> None:
    page = html_to_page("library/os.path.html", HTML)
    assert page.title == "os.path — Common pathname manipulations"
    assert "Return the size, in bytes, of path." in page.text
    assert "Directive Meaning" in page.text and "%j Day of the year" in page.text
    assert "os.path.getsize(p)" in page.text
    for chrome in ("Prev", "Quick search", "Copyright", "var x", "\u00b6"):
        assert chrome not in page.text


def test_windows_overlap_and_cover_every_word() -> None:
    page = Page("p.html", "T", " ".join(f"w{i}" for i in range(450)))
    wins = list(windows(page, size=200, overlap=50))
    assert [w.text.split()[1] for w in wins] == ["w0", "w150", "w300"]
    assert wins[-1].text.split()[-1] == "w449"
    assert all(w.text.startswith("T\n") for w in wins)


def test_generated_index_pages_are_not_corpus_pages() -> None:
    excluded = ("genindex.html", "genindex-A.html", "genindex-all.html", "py-modindex.html")
    for page in (*excluded, "search.html", "contents.html"):
        assert EXCLUDED.match(page), page
    for page in ("glossary.html", "index.html", "library/json.html"):
        assert EXCLUDED.match(page) is None, page
