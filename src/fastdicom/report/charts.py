"""SVG charts for the HTML report, written by hand: small, fast, no library.

Every function returns one ``<svg>`` element as a string.  Every text that
comes from the wire goes through ``esc``.  Sizes are bounded whatever the
capture: the throughput chart has at most ``MAX_BINS`` bars, a histogram
``HIST_BINS`` bars, the timeline ``MAX_ROWS`` associations.
"""

from __future__ import annotations

import math
from html import escape

MAX_BINS = 240
HIST_BINS = 24
MAX_ROWS = 400
W = 900  # viewBox width
FONT = 11


def esc(s) -> str:
    """Text for HTML and SVG: markup escaped, and control characters written as
    ``\\xNN`` (they are invalid in XML, and would reach a terminal that shows
    the file)."""
    from ..show import safe_text
    return escape(safe_text(s), quote=True)


def _num(x) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _nice_step(span, ticks=5):
    if span <= 0:
        return 1
    raw = span / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _fmt_rate(v) -> str:
    for unit in ("B/s", "KB/s", "MB/s", "GB/s"):
        if abs(v) < 1024 or unit == "GB/s":
            return f"{v:.0f} {unit}" if unit == "B/s" else f"{v:.1f} {unit}"
        v /= 1024
    return f"{v:.1f} GB/s"


def fmt_ms(ms) -> str:
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 1000:
        return f"{ms:.1f} ms"
    return f"{ms / 1000:.2f} s"


def empty(id_, text) -> str:
    return (f'<svg id="{esc(id_)}" class="chart empty" viewBox="0 0 {W} 40" role="img">'
            f'<text x="10" y="24">{esc(text)}</text></svg>')


def throughput(times, sizes, t0, id_="chart-throughput") -> str:
    """Bytes per second over time, as bars; times in seconds since the epoch."""
    if not times:
        return empty(id_, "no DICOM traffic")
    lo = min(times)
    hi = max(times)
    span = max(hi - lo, 1e-3)
    n = min(MAX_BINS, max(10, int(len(times) ** 0.5) * 4))
    width = span / n
    bins = [0.0] * n
    for t, b in zip(times, sizes):
        k = min(n - 1, int((t - lo) / width))
        bins[k] += b
    rates = [b / width for b in bins]
    top = max(rates) or 1.0
    ml, mr, mt, mb = 70, 10, 10, 30
    h = 220
    pw, ph = W - ml - mr, h - mt - mb
    bw = pw / n
    out = [f'<svg id="{esc(id_)}" class="chart" viewBox="0 0 {W} {h}" role="img" '
           f'aria-label="throughput over time">']
    step = _nice_step(top, 4)
    v = 0.0
    while v <= top * 1.0001:
        y = mt + ph - v / top * ph
        out.append(f'<line class="grid" x1="{ml}" x2="{W - mr}" y1="{_num(y)}" y2="{_num(y)}"/>'
                   f'<text class="tick" x="{ml - 4}" y="{_num(y + 4)}" text-anchor="end">'
                   f'{esc(_fmt_rate(v))}</text>')
        v += step
    base = lo - t0
    xstep = _nice_step(span, 6)
    x = math.ceil(base / xstep) * xstep
    while x <= base + span:
        px = ml + (x - base) / span * pw
        out.append(f'<text class="tick" x="{_num(px)}" y="{h - 10}" text-anchor="middle">'
                   f'{esc(_num(x))} s</text>')
        x += xstep
    for k, r in enumerate(rates):
        if r <= 0:
            continue
        bh = r / top * ph
        out.append(f'<rect class="bar" x="{_num(ml + k * bw)}" y="{_num(mt + ph - bh)}" '
                   f'width="{_num(max(bw - 0.5, 0.5))}" height="{_num(bh)}">'
                   f'<title>{esc(_num(base + k * width))} s: {esc(_fmt_rate(r))}</title></rect>')
    out.append(f'<line class="axis" x1="{ml}" x2="{W - mr}" y1="{mt + ph}" y2="{mt + ph}"/></svg>')
    return "".join(out)


def histogram(command, latencies_ms, id_) -> str:
    """Latency histogram of one command, log-scaled bins."""
    xs = [x for x in latencies_ms if x is not None and x >= 0]
    if not xs:
        return empty(id_, f"{command}: no answered operation")
    lo = max(min(xs), 1e-3)
    hi = max(max(xs), lo * 1.0001)
    llo, lhi = math.log10(lo), math.log10(hi)
    if lhi - llo < 0.3:
        llo, lhi = llo - 0.15, lhi + 0.15
    n = HIST_BINS
    counts = [0] * n
    for x in xs:
        k = int((math.log10(max(x, lo)) - llo) / (lhi - llo) * n)
        counts[min(max(k, 0), n - 1)] += 1
    top = max(counts)
    ml, mr, mt, mb = 40, 10, 22, 30
    w, h = 440, 180
    pw, ph = w - ml - mr, h - mt - mb
    bw = pw / n
    out = [f'<svg id="{esc(id_)}" class="chart hist" viewBox="0 0 {w} {h}" role="img" '
           f'aria-label="{esc(command)} latency histogram">'
           f'<text class="title" x="{ml}" y="14">{esc(command)}: {len(xs)} operations, median '
           f'{esc(fmt_ms(sorted(xs)[len(xs) // 2]))}</text>']
    for k, c in enumerate(counts):
        if not c:
            continue
        a = 10 ** (llo + k * (lhi - llo) / n)
        b = 10 ** (llo + (k + 1) * (lhi - llo) / n)
        bh = c / top * ph
        out.append(f'<rect class="bar" x="{_num(ml + k * bw)}" y="{_num(mt + ph - bh)}" '
                   f'width="{_num(bw - 1)}" height="{_num(bh)}"><title>{c} operation(s) '
                   f'from {esc(fmt_ms(a))} to {esc(fmt_ms(b))}</title></rect>')
    for frac, anchor in ((0, "start"), (0.5, "middle"), (1, "end")):
        v = 10 ** (llo + frac * (lhi - llo))
        out.append(f'<text class="tick" x="{_num(ml + frac * pw)}" y="{h - 10}" '
                   f'text-anchor="{anchor}">{esc(fmt_ms(v))}</text>')
    out.append(f'<text class="tick" x="{ml - 4}" y="{mt + 8}" text-anchor="end">{top}</text>'
               f'<line class="axis" x1="{ml}" x2="{w - mr}" y1="{mt + ph}" y2="{mt + ph}"/></svg>')
    return "".join(out)


OUTCOME_CLASS = {"released": "ok", "aborted": "bad", "rejected": "warn", "incomplete": "unk"}


def timeline(rows, t0, t1, id_="chart-timeline") -> str:
    """Gantt chart: one bar per association (dicts: id, label, start, end, outcome, ops)."""
    if not rows:
        return empty(id_, "no association")
    shown = rows[:MAX_ROWS]
    span = max(t1 - t0, 1e-3)
    ml, mr, mt, mb = 230, 10, 10, 28
    rh = 14
    h = mt + mb + rh * len(shown)
    pw = W - ml - mr
    out = [f'<svg id="{esc(id_)}" class="chart" viewBox="0 0 {W} {h}" role="img" '
           f'aria-label="associations over time">']
    step = _nice_step(span, 6)
    x = 0.0
    while x <= span * 1.0001:
        px = ml + x / span * pw
        out.append(f'<line class="grid" x1="{_num(px)}" x2="{_num(px)}" y1="{mt}" '
                   f'y2="{h - mb}"/><text class="tick" x="{_num(px)}" y="{h - 10}" '
                   f'text-anchor="middle">{esc(_num(x))} s</text>')
        x += step
    for i, r in enumerate(shown):
        y = mt + i * rh
        x0 = ml + (r["start"] - t0) / span * pw
        x1 = ml + ((r["end"] if r["end"] is not None else t1) - t0) / span * pw
        cls = OUTCOME_CLASS.get(r["outcome"], "unk")
        label = f'{r["id"]}: {r["label"]}'
        if len(label) > 36:
            label = label[:35] + "…"
        out.append(f'<a href="#assoc-{r["id"]}"><text class="lane" x="{ml - 6}" y="{y + 11}" '
                   f'text-anchor="end">{esc(label)}</text><rect class="span {cls}" '
                   f'x="{_num(x0)}" y="{y + 2}" width="{_num(max(x1 - x0, 1.5))}" height="{rh - 4}">'
                   f'<title>association {r["id"]} {esc(r["label"])}: {esc(r["outcome"])}, '
                   f'{r["ops"]} operation(s), {esc(fmt_ms((r["end"] - r["start"]) * 1000) if r["end"] is not None else "?")}'
                   f'</title></rect></a>')
    out.append("</svg>")
    if len(rows) > MAX_ROWS:
        out.append(f'<p class="note">The first {MAX_ROWS} of {len(rows)} associations are drawn.</p>')
    return "".join(out)
