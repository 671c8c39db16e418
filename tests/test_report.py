"""The HTML report without a browser: structure, escaping of hostile wire strings,
redaction, no external references."""

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import report_helpers as RH
from helpers import REAL

ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3",
                "p", "nav", "a", "main", "section", "table", "thead", "tbody", "tr", "th", "td",
                "strong", "div", "span", "ol", "li", "code", "label", "input", "details",
                "summary", "svg", "text", "line", "rect", "title", "script"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []
        self.attrs = []
        self.scripts = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def parse(html) -> _Tags:
    p = _Tags()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def qr_html():
    return RH.report_html(REAL / "query_retrieve.pcap", (5678, 11113))


def test_report_sections_and_charts(qr_html):
    for anchor in ('id="overview"', 'id="findings"', 'id="charts"', 'id="associations"',
                   'id="chart-throughput"', 'id="chart-timeline"', 'id="chart-latency-0"'):
        assert anchor in qr_html
    assert qr_html.count('<details class="assoc"') == 4
    assert qr_html.count('class="span ') == 4  # one timeline bar per association
    assert 'class="bar"' in qr_html
    assert "move destination &#x27;UNKNOWNDEST&#x27; unknown to ARCHIVE" in qr_html


def test_report_data_block(qr_html):
    p = parse(qr_html)
    assert len(p.scripts) == 2
    data = json.loads(p.scripts[0])
    assert len(data["ops"]) == 8 and len(data["assocs"]) == 4
    a1 = data["assocs"][1]
    assert a1["calling"] == "VIEWER" and a1["ops"] == [3, 7]
    assert len(a1["pdus"]) == 23
    assert [r[4] for r in a1["matrix"]["rows"]][0] == ["o", "a", "o", "o"]


def test_report_self_contained(qr_html):
    p = parse(qr_html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", qr_html)
    for name, value in p.attrs:
        if name in ("src", "href") and value:
            assert value.startswith("#"), (name, value)
    assert "Content-Security-Policy" in qr_html and "default-src 'none'" in qr_html


def test_hostile_strings_escaped(tmp_path):
    path = RH.hostile_capture(tmp_path / "hostile.pcap")
    html = RH.report_html(path, (104,))
    p = parse(html)
    assert set(p.tags) <= ALLOWED_TAGS, set(p.tags) - ALLOWED_TAGS
    assert p.tags.count("script") == 2  # our JSON block and our code, nothing else
    assert not any(name.startswith("on") for name, _ in p.attrs)
    assert "<svg onload" not in html and "<img" not in html and "</script><b>" not in html
    # the data block round-trips the exact wire strings
    data = json.loads(p.scripts[0])
    assert data["assocs"][0]["calling"] == RH.HOSTILE_CALLING
    assert data["assocs"][0]["called"] == RH.HOSTILE_CALLED.strip()
    assert RH.HOSTILE_UID in data["strings"]
    # visible text keeps them, escaped
    assert "&quot;&gt;&lt;svg onload=1" in html


def test_redact(tmp_path):
    path = RH.hostile_capture(tmp_path / "hostile.pcap")
    plain = RH.report_html(path, (104,))
    assert "pn&#x27;)" in plain or "alert(&#x27;pn" in plain  # the name is quoted by a finding
    red = RH.report_html(path, (104,), redact=True)
    assert "alert(&#x27;pn" not in red and "alert('pn" not in red and "&lt;redacted" in red
    assert "redacted</strong>" in red


def test_cli_report(tmp_path):
    out = tmp_path / "r.html"
    env = {"FASTDICOM_PURE_PYTHON": "1", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    r = subprocess.run([sys.executable, "-m", "fastdicom.cli", "report",
                        str(REAL / "reject_abort.pcap"), "-o", str(out), "--fail-on", "error"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "report written to" in r.stderr
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "called AE title not recognised" in html
