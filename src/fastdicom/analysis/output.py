"""Running the analyses over captures, and their text and JSON output."""

from __future__ import annotations

import textwrap

from ..expert import Severity
from . import Collector, analyze

SEVERITY_HEADINGS = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings",
                     Severity.NOTE: "Notes", Severity.CHAT: "Facts"}


def sinks():
    """The sinks an analysis run needs: (summary sink, collector), collector last."""
    from ..summary import SummarySink
    return SummarySink(), Collector()


# the decoder options an analysis run needs (PDU records for the ladders)
DECODER_OPTIONS = {"keep_pdus": True}


def run_analyses(decoder, collector, redact=False):
    return analyze(decoder, collector, redact=redact)


def document(decoder, infos, result) -> dict:
    """The JSON output of ``fastdicom analyze``."""
    from .. import __version__
    doc = {
        "fastdicom": __version__,
        "captures": [i.to_json() for i in infos],
        "counts": {"associations": len(decoder.associations),
                   "operations": sum(len(a.operations) for a in decoder.associations),
                   "objects": len(decoder.objects), "tcp_attempts": len(decoder.attempts)},
    }
    doc.update(result.to_json())
    return doc


def render_text(decoder, infos, result, out, minimum=Severity.CHAT, width=100) -> None:
    from ..show import safe_text
    caps = safe_text(", ".join(i.name for i in infos))
    n_ops = sum(len(a.operations) for a in decoder.associations)
    counts = result.by_severity()
    out.write(f"fastdicom analyze: {caps}\n")
    out.write(f"{len(decoder.associations)} associations, {n_ops} operations, "
              f"{len(decoder.objects)} objects; findings: "
              + (", ".join(f"{counts[s.label]} {s.label}" for s in sorted(Severity, reverse=True)
                           if s.label in counts) or "none") + "\n")
    for sev in sorted(Severity, reverse=True):
        if sev < minimum:
            continue
        items = [f for f in result.findings if f.severity == sev]
        if not items:
            continue
        out.write(f"\n{SEVERITY_HEADINGS[sev]} ({len(items)})\n")
        for f in items:
            where = []
            if f.associations:
                where.append("association " + ", ".join(map(str, f.associations)))
            if f.frames:
                where.append("frame " + ", ".join(map(str, f.frames[:6])))
            out.write(f"- {safe_text(f.title)}  [{f.code}"
                      + (f"; {'; '.join(where)}" if where else "") + "]\n")
            for line in textwrap.wrap(safe_text(f.explanation), width - 4):
                out.write(f"    {line}\n")


def exit_status(result, fail_on) -> int:
    if not fail_on:
        return 0
    limit = Severity.parse(fail_on)
    return 1 if any(f.severity >= limit for f in result.findings) else 0
