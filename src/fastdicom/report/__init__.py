"""The shareable HTML report: ONE self-contained file, no network fetch.

Layout: an overview (capture facts, counts, findings by severity), the
findings, charts (throughput over time, latency histogram per command, a
timeline of all associations) and one section per association (ladder
diagram of its PDUs, negotiation matrix, sortable and filterable operations
table with latency bars).

Charts of the whole capture are SVG written here (``charts``).  The
per-association parts are drawn by the inlined script from one JSON block
when a section is opened, so a capture of 10,000 operations stays a few MB
and opens fast.  Safety: every wire string is escaped in HTML and SVG; the
JSON block escapes ``<``, ``>`` and ``&`` so it cannot end its script
element; the script builds the DOM with ``textContent`` only; a
Content-Security-Policy forbids any network access.
"""

from __future__ import annotations

import json
import time
from importlib import resources

from .. import redact as R
from ..analysis import negotiation as NEG
from ..analysis import performance as PERF
from ..analysis.associations import abort_cause, reject_cause
from ..expert import Severity
from ..uids import uid_name
from . import charts as C
from .charts import esc

MAX_LADDER = 600  # PDUs drawn per association (the collector keeps as many)
CELL_CODES = {NEG.ACCEPTED: "a", NEG.OFFERED: "o", NEG.REJECTED: "r", NEG.UNANSWERED: "u", "": ""}
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:; base-uri 'none'; form-action 'none'")


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _json_for_script(doc) -> str:
    """JSON that is safe inside <script type="application/json">."""
    s = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, default=str)
    return (s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class _Strings:
    """A string table: repeated texts travel once."""

    def __init__(self):
        self.index = {}
        self.items = []

    def __call__(self, s) -> int:
        s = "" if s is None else str(s)
        k = self.index.get(s)
        if k is None:
            k = self.index[s] = len(self.items)
            self.items.append(s)
        return k


def _ms(ns, base) -> float | None:
    return None if ns is None else round((ns - base) / 1e6, 3)


def _r(x, scale=1000.0):
    return None if x is None else round(x * scale, 3)


def _reason(a) -> str:
    if a.rj is not None:
        return "rejected: " + reject_cause(a)[0]
    if a.abort is not None:
        who = "requestor" if a.abort_by == 0 else "acceptor"
        return f"{abort_cause(a)} (by the {who})"
    return ""


def build_data(decoder, result, redact=False) -> dict:
    ctx = result.context
    col = ctx.collector
    base = decoder.first_time or 0
    S = _Strings()
    timings = PERF.all_timings(ctx)
    ops = []
    assocs = []
    finding_idx = {}
    for i, f in enumerate(result.findings):
        for aid in f.associations:
            finding_idx.setdefault(aid, []).append(i)
    for a in decoder.associations:
        first = len(ops)
        for op, t in timings[a.id]["operations"]:
            inst = op.affected_sop_instance_uid
            ops.append([
                a.id, op.message_id, S(op.command), op.direction,
                S(uid_name(op.affected_sop_class_uid) or op.affected_sop_class_uid or ""),
                op.status, S(op.status_text or ("unanswered" if op.status is None else "")),
                S(op.status_class or "unanswered"), _ms(op.request_time, base),
                _r(t["latency"]), _r(t["send"]), _r(t["processing"]), _r(t["response"]),
                _r(t["think"]), op.dataset_bytes + op.response_dataset_bytes,
                op.request_frame, S(inst or ""), op.pending_responses,
            ])
        m = NEG.matrix(a)
        pdus = [[_ms(p.time, base), p.direction, p.type, S(p.info), p.frame, p.length]
                for p in col.pdus.get(a.id, [])[:MAX_LADDER]]
        more = len(col.pdus.get(a.id, [])) - len(pdus) + col.pdus_dropped.get(a.id, 0)
        assocs.append({
            "id": a.id, "capture": a.capture, "client": a.flow.client, "server": a.flow.server,
            "calling": a.calling_ae, "called": a.called_ae, "result": a.result, "end": a.end,
            "reason": _reason(a), "start": _ms(a.start, base),
            "duration": None if a.end_time is None else round((a.end_time - a.start) / 1e6, 3),
            "ops": [first, len(ops)], "pdus": pdus, "pdus_more": max(more, 0),
            "bytes": a.bytes[0] + a.bytes[1],
            "matrix": {"syntaxes": [uid_name(u) or u for u in m["syntaxes"]],
                       "uids": m["syntaxes"],
                       "rows": [[r["context_id"], r["abstract_syntax_name"] or r["abstract_syntax"] or "?",
                                 r["result"], r["reason"] or "", [CELL_CODES[c] for c in r["cells"]],
                                 r["pdvs"]] for r in m["rows"]]},
            "roles": a.roles(),
            "findings": finding_idx.get(a.id, []),
        })
    doc = {"base": base / 1e9, "strings": S.items, "assocs": assocs, "ops": ops}
    return R.redact_document(doc) if redact else doc


# ------------------------------------------------------------------ HTML parts
def _overview(decoder, infos, result, redact, title) -> str:
    n_ops = sum(len(a.operations) for a in decoder.associations)
    dur = ((decoder.last_time - decoder.first_time) / 1e9
           if decoder.first_time is not None and decoder.last_time is not None else 0)
    frames = sum((i.stats or {}).get("frames", 0) for i in infos)
    by_cmd = {}
    for a in decoder.associations:
        for op in a.operations:
            d = by_cmd.setdefault(op.command, {})
            k = op.status_class or "unanswered"
            d[k] = d.get(k, 0) + 1
    sev = result.by_severity()
    start = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(decoder.first_time / 1e9)) + " UTC"
             if decoder.first_time else "?")
    rows = "".join(
        f"<tr><td>{esc(i.name)}</td><td class=num>{esc(i.size if i.size is not None else '')}</td>"
        f"<td class=num>{esc((i.stats or {}).get('frames', ''))}</td>"
        f"<td>{esc(i.error or '')}</td></tr>" for i in infos)
    classes = ["success", "pending", "warning", "failure", "cancel", "unanswered"]
    ops_rows = "".join(
        f"<tr><td>{esc(cmd)}</td>" + "".join(f"<td class=num>{d.get(k, '')}</td>" for k in classes)
        + f"<td class=num>{sum(d.values())}</td></tr>" for cmd, d in sorted(by_cmd.items()))
    badges = "".join(
        f'<a class="badge sev-{s.label}" href="#findings" data-sev="{s.label}">'
        f'{sev.get(s.label, 0)} {s.label}</a>' for s in sorted(Severity, reverse=True))
    n_obj = len(decoder.objects)
    n_complete = sum(1 for t in decoder.objects if t.complete)
    out = [
        '<section id="overview"><h2>Overview</h2>',
        f'<p class="facts">{len(decoder.associations)} association(s), {n_ops} operation(s), '
        f'{n_obj} object(s) ({n_complete} complete), {decoder.pdu_count} PDUs in {frames} frames '
        f'over {esc(C.fmt_ms(dur * 1000))}, from {esc(start)}.'
        + (' Patient-identifying values are <strong>redacted</strong>.' if redact else '') + '</p>',
        f'<div class="badges">{badges}</div>',
        '<table class="plain"><thead><tr><th>capture</th><th>bytes</th><th>frames</th>'
        f'<th>error</th></tr></thead><tbody>{rows}</tbody></table>',
    ]
    if ops_rows:
        out.append('<table class="plain"><thead><tr><th>command</th>'
                   + "".join(f"<th>{k}</th>" for k in classes)
                   + f'<th>total</th></tr></thead><tbody>{ops_rows}</tbody></table>')
    slow = PERF.slowest(result.context, 10)
    if slow:
        out.append('<h3>Slowest operations</h3><table class="plain"><thead><tr><th>latency</th>'
                   '<th>association</th><th>command</th><th>ID</th><th>SCU send</th>'
                   '<th>SCP processing</th><th>response</th><th>status</th></tr></thead><tbody>')
        for lat, op, t in slow:
            out.append(
                f'<tr><td class=num>{esc(C.fmt_ms(lat * 1000))}</td><td><a href="#assoc-'
                f'{op.association.id}">{op.association.id}</a></td><td>{esc(op.command)}</td>'
                f'<td class=num>{esc(op.message_id)}</td>'
                + "".join(f'<td class=num>{esc(C.fmt_ms(t[k] * 1000) if t[k] is not None else "")}</td>'
                          for k in ("send", "processing", "response"))
                + f'<td>{esc(op.status_text or "")}</td></tr>')
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def _findings(result) -> str:
    out = ['<section id="findings"><h2>Findings</h2><div class="filters" id="finding-filters">']
    for s in sorted(Severity, reverse=True):
        out.append(f'<label><input type="checkbox" data-sev="{s.label}" checked> {s.label}</label>')
    out.append('</div><ol class="findings">')
    for i, f in enumerate(result.findings):
        links = " ".join(f'<a href="#assoc-{a}">association {a}</a>' for a in f.associations)
        frames = ", ".join(str(x) for x in f.frames[:8])
        where = []
        if links:
            where.append(links)
        if frames:
            where.append(f"frame {esc(frames)}" + (f" of {esc(f.capture)}" if f.capture else ""))
        out.append(
            f'<li class="finding sev-{f.severity.label}" id="finding-{i}" data-sev="{f.severity.label}">'
            f'<span class="badge sev-{f.severity.label}">{f.severity.label}</span> '
            f'<strong class="ftitle">{esc(f.title)}</strong> <code>{esc(f.code)}</code>'
            f'<p>{esc(f.explanation)}</p>'
            + (f'<p class="where">{" · ".join(where)}</p>' if where else "") + "</li>")
    if not result.findings:
        out.append("<li>No findings.</li>")
    out.append("</ol></section>")
    return "".join(out)


def _charts(decoder, result) -> str:
    col = result.context.collector
    base = (decoder.first_time or 0) / 1e9
    last = (decoder.last_time or 0) / 1e9
    out = ['<section id="charts"><h2>Charts</h2><h3>Throughput over time</h3>',
           C.throughput(col.traffic_t, col.traffic_n, base)]
    by_cmd = {}
    for a in decoder.associations:
        for op, t in PERF.all_timings(result.context)[a.id]["operations"]:
            if t["latency"] is not None:
                by_cmd.setdefault(op.command, []).append(t["latency"] * 1000)
    out.append('<h3>Latency per command</h3><div class="hists">')
    for k, (cmd, xs) in enumerate(sorted(by_cmd.items())):
        out.append(C.histogram(cmd, xs, f"chart-latency-{k}"))
    if not by_cmd:
        out.append(C.empty("chart-latency-0", "no answered operation"))
    out.append('</div><h3>Associations over time</h3>')
    rows = [{"id": a.id, "label": f"{a.calling_ae or '?'} → {a.called_ae or '?'}",
             "start": a.start / 1e9, "end": None if a.end_time is None else a.end_time / 1e9,
             "outcome": a.end if a.result != "rejected" else "rejected", "ops": len(a.operations)}
            for a in decoder.associations]
    out.append(C.timeline(rows, base, last))
    out.append('<p class="legend"><span class="key ok"></span> released '
               '<span class="key bad"></span> aborted <span class="key warn"></span> rejected '
               '<span class="key unk"></span> no end seen</p></section>')
    return "".join(out)


def _associations(decoder, result) -> str:
    count = {}
    for f in result.findings:
        for aid in f.associations:
            worst = count.get(aid)
            if worst is None or f.severity > worst[0]:
                count[aid] = (f.severity, (worst[1] if worst else 0) + 1)
            else:
                count[aid] = (worst[0], worst[1] + 1)
    out = ['<section id="associations"><h2>Associations</h2>']
    for a in decoder.associations:
        sev, n = count.get(a.id, (None, 0))
        badge = (f' <span class="badge sev-{sev.label}">{n} finding(s)</span>'
                 if sev is not None and sev >= Severity.NOTE else "")
        dur = "" if a.end_time is None else C.fmt_ms((a.end_time - a.start) / 1e6)
        out.append(
            f'<details class="assoc" id="assoc-{a.id}" data-id="{a.id}"><summary>'
            f'<strong>{a.id}</strong> {esc(a.calling_ae or "?")} → {esc(a.called_ae or "?")} '
            f'<span class="muted">{esc(a.flow.client)} → {esc(a.flow.server)}</span> '
            f'<span class="state {esc(a.end)}">{esc(a.result)}, {esc(a.end)}</span> '
            f'{len(a.operations)} op(s) {esc(dur)}{badge}</summary>'
            f'<div class="body"></div></details>')
    out.append("</section>")
    return "".join(out)


def build_html(decoder, infos, result, summary_sink=None, redact=False, title=None) -> str:
    from .. import __version__
    title = title or ("fastdicom report: " + ", ".join(i.name for i in infos))
    data = build_data(decoder, result, redact)
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    body = "".join([
        f'<header><h1>{esc(title)}</h1><p class="muted">fastdicom {esc(__version__)}, '
        f'generated {esc(generated)}</p><nav><a href="#overview">Overview</a> '
        '<a href="#findings">Findings</a> <a href="#charts">Charts</a> '
        '<a href="#associations">Associations</a></nav></header><main>',
        _overview(decoder, infos, result, redact, title),
        _findings(result),
        _charts(decoder, result),
        _associations(decoder, result),
        "</main>",
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_asset('report.css')}</style></head><body>"
            f"{body}<script type=\"application/json\" id=\"fd-data\">{_json_for_script(data)}"
            f"</script><script>{_asset('report.js')}</script></body></html>\n")


def write_report(path, decoder, infos, result, summary_sink=None, redact=False, title=None) -> int:
    html = build_html(decoder, infos, result, summary_sink, redact, title)
    data = html.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


__all__ = ["build_html", "build_data", "write_report"]
