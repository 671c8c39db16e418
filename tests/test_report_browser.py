"""The HTML report in a real browser (headless Chromium through Playwright).

Needs the optional extra ``pip install ".[browser]"`` (Playwright, without its
own browser download) and Debian's ``chromium`` package; set
FASTDICOM_CHROMIUM to use another Chromium binary.  Skipped, saying which is
missing, when either is absent.
"""

import os
import shutil
from pathlib import Path

import pytest

import report_helpers as RH
from helpers import REAL

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("FASTDICOM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if sync_playwright is None:
    pytest.skip("playwright is not installed: pip install '.[browser]' to run the browser tests",
                allow_module_level=True)
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set FASTDICOM_CHROMIUM) "
                "to run the browser tests", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Page:
    """A loaded report page that records console errors and dialogs."""

    def __init__(self, browser, path, hash_=""):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors = []
        self.dialogs = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append("request " + r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(Path(path).resolve().as_uri() + hash_)
        self.page.wait_for_selector("html[data-ready]")


@pytest.fixture(scope="module")
def qr_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "qr.html"
    out.write_text(RH.report_html(REAL / "query_retrieve.pcap", (5678, 11113)), encoding="utf-8")
    return out


def test_loads_without_console_errors(browser, qr_report):
    pg = Page(browser, qr_report)
    assert pg.errors == [] and pg.dialogs == []
    assert pg.page.title().startswith("fastdicom report")
    # four associations: few enough that every section is drawn at load
    assert pg.page.locator("details.assoc[open]").count() == 4
    pg.page.close()


def test_charts_render(browser, qr_report):
    pg = Page(browser, qr_report)
    p = pg.page
    assert p.locator("#chart-throughput rect.bar").count() > 0
    assert p.locator("svg[id^=chart-latency-] rect.bar").count() > 0
    assert p.locator("#chart-timeline rect.span").count() == 4
    box = p.locator("#chart-throughput").bounding_box()
    assert box["width"] > 300 and box["height"] > 50
    # the ladder of association 1: one arrow per PDU
    assert p.locator("#assoc-1 svg.ladder g.pdu").count() == 23
    assert p.locator("#assoc-1 table.matrix td.c.a").count() == 3
    pg.page.close()


def _latencies(p, assoc):
    return [float(x.split()[0]) for x in
            p.locator(f"#assoc-{assoc} table.ops tbody td.lat").all_inner_texts()]


def test_sort_and_filter_operations(browser, qr_report):
    pg = Page(browser, qr_report, "#assoc-1")
    p = pg.page
    rows = p.locator("#assoc-1 table.ops tbody tr")
    assert rows.count() == 4
    header = p.locator("#assoc-1 table.ops th", has_text="latency")
    header.click()
    up = _latencies(p, 1)
    assert up == sorted(up) and len(up) == 4
    header.click()
    down = _latencies(p, 1)
    assert down == sorted(down, reverse=True)
    p.locator("#assoc-1 th", has_text="command").click()
    cmds = p.locator("#assoc-1 table.ops tbody tr td:nth-child(2)").all_inner_texts()
    assert cmds == sorted(cmds)
    p.locator("#assoc-1 input.ops-filter").fill("c-move")
    assert rows.count() == 2
    p.locator("#assoc-1 input.ops-filter").fill("")
    p.locator("#assoc-1 select.ops-class").select_option("failure")
    assert rows.count() == 1 and "0xa801" in rows.first.inner_text()
    assert pg.errors == []
    p.close()


def test_findings_filter(browser, qr_report):
    pg = Page(browser, qr_report)
    p = pg.page
    total = p.locator("li.finding").count()
    p.locator("#finding-filters input[data-sev=chat]").uncheck()
    visible = p.locator("li.finding:visible").count()
    assert 0 < visible < total
    p.close()


def test_hostile_strings_stay_text(browser, tmp_path):
    out = tmp_path / "hostile.html"
    out.write_text(RH.report_html(RH.hostile_capture(tmp_path / "h.pcap"), (104,)), encoding="utf-8")
    pg = Page(browser, out)
    p = pg.page
    assert pg.dialogs == [] and pg.errors == []
    assert p.locator("img").count() == 0
    assert p.locator("#associations svg[onload]").count() == 0
    summary = p.locator("#assoc-0 summary").inner_text()
    assert RH.HOSTILE_CALLING in summary
    assert RH.HOSTILE_CALLED in p.locator("#assoc-0 svg.ladder").text_content()
    # the UID is data: the table filter finds it
    p.locator("#assoc-0 input.ops-filter").fill("onerror")
    assert p.locator("#assoc-0 table.ops tbody tr").count() == 1
    p.close()


def test_terminal_escapes_and_markup_stay_text(browser, tmp_path):
    """The capture of tests/test_crafted.py (escapes, rich markup, HTML in AE
    titles, UIDs, a patient name, an error comment): nothing runs, nothing
    is fetched, every association section opens."""
    from test_crafted import hostile_capture
    out = tmp_path / "escapes.html"
    out.write_text(RH.report_html(hostile_capture(tmp_path / "e.pcap"), (104,)), encoding="utf-8")
    pg = Page(browser, out)
    p = pg.page
    for d in p.locator("#associations details").all():
        d.evaluate("e => e.open = true")
    p.wait_for_timeout(200)
    assert pg.dialogs == [] and pg.errors == []
    assert p.locator("img").count() == 0 and p.locator("script").count() == 2
    assert "[bold]X[/bold]" in p.content()
    p.close()
