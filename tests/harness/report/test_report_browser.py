"""``report.html`` in a real headless browser (Debian's ``chromium``): the page opens with the
verdict table, every embedded plot decodes to an image with a width, and clicking a header sorts
its table (numbers numerically, ``-`` / ``not reached`` last).

Not skipped when no browser is found: it fails, naming the install (``apt-get install -y
chromium``; CI's ``.ci/run`` installs it). ``PATHBENCH_CHROMIUM`` may name another binary.
The page's inline script has two hooks for this test: ``?click=T.C`` clicks header C of table T
once parsed, and after ``load`` the ``<body>`` says how many images decoded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from pathbench.report.leaderboard import write_report
from tests.harness.report.test_report import write_runs

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    path = os.environ.get("PATHBENCH_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if not path:
        pytest.fail("no headless chromium on PATH (tried " + ", ".join(BROWSERS) + "): install it with "
                    "`apt-get update && apt-get install -y chromium` (CI's .ci/run does), or set PATHBENCH_CHROMIUM")
    return path


def test_a_headless_browser_is_installed():
    """A failure, not a skip, where there is none (the tests below then error in their fixture)."""
    assert os.access(_browser(), os.X_OK)


class Dom(HTMLParser):
    """What the test reads from the rendered DOM: the body's attributes, h2s and tables in page
    order (class, header cells with aria-sort, body rows as cell texts), and the images."""

    def __init__(self, text: str):
        super().__init__()
        self.body: dict = {}
        self.order: list[tuple[str, object]] = []
        self.tables: list[dict] = []
        self.images: list[dict] = []
        self._cell: list[str] | None = None
        self._h2: list[str] | None = None
        self._section = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "h2":
            self._h2 = []
        elif tag == "table":
            self.tables.append({"class": attrs.get("class", ""), "headers": [], "sort": [], "rows": []})
            self.order.append(("table", self.tables[-1]))
        elif tag in ("thead", "tbody"):
            self._section = tag
        elif tag == "tr" and self.tables and self._section == "tbody":
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td") and self.tables:
            self._cell = []
            if tag == "th":
                self.tables[-1]["sort"].append(attrs.get("aria-sort"))

    def handle_endtag(self, tag):
        if tag == "h2" and self._h2 is not None:
            self.order.append(("h2", "".join(self._h2).strip()))
            self._h2 = None
        elif tag in ("th", "td") and self._cell is not None:
            text = "".join(self._cell).strip()
            table = self.tables[-1]
            (table["headers"] if tag == "th" else table["rows"][-1]).append(text)
            self._cell = None

    def handle_data(self, data):
        for sink in (self._cell, self._h2):
            if sink is not None:
                sink.append(data)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """(browser, report.html, a profile folder, dump(query) -> Dom)."""
    browser = _browser()
    root = write_runs(tmp_path_factory.mktemp("browser-sweep"))
    result = write_report(root, root / "out", title="browser <test>")
    profile = tmp_path_factory.mktemp("chromium-profile")

    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-3000:]}"
        return done

    def dump(query: str = "") -> Dom:
        return Dom(run("--dump-dom", result["report_html"].resolve().as_uri() + query).stdout)

    return result, run, dump


def _number(cell: str) -> float | None:
    match = re.match(r"[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?", cell, re.I)
    return float(match.group(0)) if match else None


def test_the_rendered_page_opens_with_the_verdict_and_every_plot_decodes(rendered):
    result, _, dump = rendered
    dom = dump()
    # the primary scorer (SmolLM2 by default) first, the sweep's own AR scorer after it
    assert dom.order[0] == ("h2", "The paper's question: KL vs Fisher-Rao vs linear at matched entropy")
    assert ("h2", "Verdict: gen-PPL at matched entropy (smollm2)") in dom.order[:3]
    first_table = next(item for kind, item in dom.order if kind == "table")
    assert "verdict" in first_table["class"].split()
    assert first_table["headers"][:3] == ["rank", "method", "matched gen PPL"] and len(first_table["rows"]) == 3
    titles = [item for kind, item in dom.order if kind == "h2"]
    assert titles.index("Unconditional leaderboard (scorer smollm2)") > titles.index(
        "Verdict: gen-PPL at matched entropy (smollm2)")
    settings = [t for t in dom.tables if "settings" in t["class"].split()]
    assert len(settings) == len(result["tables"]) == 4 and all(t["rows"] for t in settings)
    # the plots: every <img> decoded by the browser, with a natural width > 0
    assert len(dom.images) == len(result["plots"]) >= 2
    # no plot of single points: every setting has one NFE, so the NFE plot is a sentence instead
    assert "ppl_vs_nfe" not in result["plots"] and not any("vs NFE" in img["alt"] for img in dom.images)
    assert "No gen-PPL-vs-NFE plot: each setting was sampled at one NFE only" in result["report_html"].read_text()
    assert dom.body.get("data-images") == dom.body.get("data-images-decoded") == str(len(dom.images))
    assert all(int(img["data-natural-width"]) > 0 for img in dom.images)
    assert all(img["src"].startswith("data:image/png;base64,") for img in dom.images)


def test_clicking_a_header_sorts_its_table(rendered):
    _, _, dump = rendered
    static = dump()
    index = next(i for i, t in enumerate(static.tables) if "settings" in t["class"].split())
    table = static.tables[index]
    col = table["headers"].index("gen PPL")
    values = [_number(r[col]) for r in table["rows"]]
    assert values != sorted(values)  # as written the rows are by method, not by gen PPL

    ascending = dump(f"?click={index}.{col}").tables[index]
    assert ascending["sort"][col] == "ascending" and sorted(ascending["rows"]) == sorted(table["rows"])
    assert [_number(r[col]) for r in ascending["rows"]] == sorted(values)
    descending = dump(f"?click={index}.{col}&click={index}.{col}").tables[index]  # a second click reverses
    assert descending["sort"][col] == "descending"
    assert [_number(r[col]) for r in descending["rows"]] == sorted(values, reverse=True)

    # the verdict's "matched gen PPL": numbers in order, "not reached" last whichever the direction
    verdict = next(i for i, t in enumerate(static.tables) if "verdict" in t["class"].split())
    vcol = static.tables[verdict]["headers"].index("matched gen PPL")
    for query, reverse in ((f"?click={verdict}.{vcol}", False), (f"?click={verdict}.{vcol}&click={verdict}.{vcol}", True)):
        cells = [r[vcol] for r in dump(query).tables[verdict]["rows"]]
        reached = [c for c in cells if c != "not reached"]
        assert cells == reached + ["not reached"] * (len(cells) - len(reached)) and reached
        assert [_number(c) for c in reached] == sorted(map(_number, reached), reverse=reverse)


def test_a_screenshot_of_the_report(rendered, tmp_path):
    result, run, _ = rendered
    shot = tmp_path / "report.png"
    run("--hide-scrollbars", "--window-size=1280,2000", f"--screenshot={shot}", result["report_html"].resolve().as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a page with tables, not a blank one


def test_conditional_and_code_pages_open_with_their_own_verdict_and_scroll_wide_tables(rendered, tmp_path):
    _, run, _ = rendered
    root = write_runs(tmp_path / "res")
    for folder in (root / "runs").glob("u*"):
        shutil.rmtree(folder)  # a conditional + code sweep: no unconditional sample to rank
    result = write_report(root, tmp_path / "out", title="tasks")
    dom = Dom(run("--dump-dom", result["report_html"].resolve().as_uri()).stdout)
    assert dom.order[0] == ("h2", "Verdict: Seq2seq (headline_lead)")
    first = next(item for kind, item in dom.order if kind == "table")
    assert "verdict" in first["class"].split() and first["headers"][0] == "method"
    # every metric cell value [interval] (#rank); the last column says whether each model learned
    assert first["headers"][-1] == "learned"
    assert all(re.fullmatch(r"[\d.]+ \[[\d.]+, [\d.]+\] \(#\d\)", cell) for row in first["rows"] for cell in row[1:-1])
    titles = [item for kind, item in dom.order if kind == "h2"]
    assert titles[1] == "Verdict: Code infilling (humaneval_infill)" and "Plots" not in titles  # no empty heading
    assert not dom.images
    # every table sits in a box that scrolls sideways; the protocol is folded
    page = result["report_html"].read_text()
    assert page.count('<div class="scroll"><table') == len(dom.tables) and "overflow-x:auto" in page
    assert "<details><summary>" in page
