"""The HTML report on 10,000 operations: build time, file size, and load time in
headless Chromium.

Run with ``pytest benchmarks/test_bench_report.py --benchmark-only``.  The capture
(20 associations of 500 C-STOREs) is made with tests/pcapgen.py.  Every benchmark
reports ``extra_info``: ``operations``, ``report_bytes``; the load benchmark
``load_seconds`` (navigation start to the page's script having run, per round).
Limits checked: under 5 MB, loaded in under 3 s.  The load benchmark is
skipped, with the reason, without Playwright or Chromium.
"""

import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import report_helpers as RH  # noqa: E402

OPERATIONS = 10_000
MAX_BYTES = 5 * 1024 * 1024
MAX_LOAD_SECONDS = 3.0
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def ops_capture(tmp_path_factory):
    return RH.many_operations_capture(tmp_path_factory.mktemp("bench") / "ops.pcap", OPERATIONS)


@pytest.fixture(scope="module")
def report_file(ops_capture):
    html = RH.report_html(ops_capture, (104,))
    out = ops_capture.with_suffix(".html")
    out.write_text(html, encoding="utf-8")
    return out


def test_build_report(benchmark, ops_capture, rounds):
    """Capture to HTML: decoding, the analyses and the page."""
    html = benchmark.pedantic(lambda: RH.report_html(ops_capture, (104,)), rounds=rounds,
                              iterations=1)
    size = len(html.encode("utf-8"))
    benchmark.extra_info.update(operations=OPERATIONS, report_bytes=size)
    assert size < MAX_BYTES
    assert html.count('<details class="assoc"') == 20


def test_load_in_chromium(benchmark, report_file, rounds):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install '.[browser]'")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    url = report_file.resolve().as_uri()
    loads = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def load():
            t0 = time.perf_counter()
            page.goto(url, wait_until="load")
            page.wait_for_selector("html[data-ready]")
            loads.append(time.perf_counter() - t0)

        benchmark.pedantic(load, rounds=rounds, iterations=1, warmup_rounds=1)
        # the biggest association section, opened: its table and ladder draw fast too
        t0 = time.perf_counter()
        page.locator("#assoc-0 summary").click()
        page.wait_for_selector("#assoc-0 table.ops tbody tr")
        open_seconds = time.perf_counter() - t0
        bars = page.locator("#chart-throughput rect.bar").count()
        browser.close()
    size = report_file.stat().st_size
    benchmark.extra_info.update(operations=OPERATIONS, report_bytes=size,
                                load_seconds=[round(x, 3) for x in loads],
                                open_section_seconds=round(open_seconds, 3))
    print(f"\nreport {size / 1e6:.2f} MB; load {', '.join(f'{x:.2f}' for x in loads)} s; "
          f"open a 500-operation section {open_seconds:.2f} s")
    assert errors == [] and bars > 0
    assert size < MAX_BYTES
    assert max(loads[1:] or loads) < MAX_LOAD_SECONDS
