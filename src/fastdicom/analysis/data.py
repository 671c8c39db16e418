"""Data sets: objects that do not parse, SOP Class/Instance UIDs that differ
from the command's (PS3.7 9.1.1: the data set must match the Affected SOP
Class and Instance UIDs), and text the declared Specific Character Set
(0008,0005) cannot decode."""

from __future__ import annotations

from ..expert import Severity as S
from ..uids import uid_name

NAME = "data"
MAX_LISTED = 10


def _what(t) -> str:
    cmd = t.command
    mid = None
    if cmd is not None:
        mid = cmd.responded_id if cmd.is_response else cmd.message_id
    name = cmd.name if cmd is not None else "data set"
    return f"{name} (message ID {mid}, association {t.association.id})"


def run(ctx) -> list:
    out = []
    checks = sorted(ctx.collector.objects.values(), key=lambda c: c.transfer.index)
    malformed = [c for c in checks if c.malformed]
    for c in malformed[:MAX_LISTED]:
        t = c.transfer
        out.append(ctx.finding(
            NAME, "data.malformed", S.ERROR, f"data set does not parse: {_what(t)}",
            f"The data set of {_what(t)} ({t.length} bytes) breaks the encoding rules of its "
            f"transfer syntax: {c.malformed}. The receiver may reject it or store it damaged.",
            assoc=t.association, frames=[t.frame_first, t.frame_last], time=t.time_first,
            problem=c.malformed, transfer_syntax=t.transfer_syntax))
    if len(malformed) > MAX_LISTED:
        out.append(_more(ctx, "data.malformed", S.ERROR, malformed, "data sets do not parse"))
    mism = []
    for c in checks:
        t = c.transfer
        cmd = t.command
        if cmd is None or cmd.is_response:
            continue
        cc, ci = cmd.get("affected_sop_class_uid"), cmd.get("affected_sop_instance_uid")
        diffs = []
        if cc and c.sop_class_uid and cc != c.sop_class_uid:
            diffs.append(("SOP Class UID", cc, c.sop_class_uid))
        if ci and c.sop_instance_uid and ci != c.sop_instance_uid:
            diffs.append(("SOP Instance UID", ci, c.sop_instance_uid))
        if diffs:
            mism.append((c, diffs))
    for c, diffs in mism[:MAX_LISTED]:
        t = c.transfer
        text = "; ".join(f"the command's {n} is {x}{_nm(x)}, the data set's {y}{_nm(y)}"
                         for n, x, y in diffs)
        out.append(ctx.finding(
            NAME, "data.uid_mismatch", S.WARNING, f"{', '.join(d[0] for d in diffs)} of "
            f"{_what(t)} differ from the data set",
            f"{text}. The receiver may file the object under the command's UID, refuse it "
            "(0xA900 / 0xB007 Data Set does not match SOP Class) or keep the inconsistency.",
            assoc=t.association, frames=[t.frame_first], time=t.time_first,
            differences=[{"attribute": n, "command": x, "data_set": y} for n, x, y in diffs]))
    if len(mism) > MAX_LISTED:
        out.append(_more(ctx, "data.uid_mismatch", S.WARNING, [c for c, _ in mism],
                         "data sets whose UIDs differ from their command"))
    cs = [c for c in checks if c.charset_problems]
    for c in cs[:MAX_LISTED]:
        t = c.transfer
        first = c.charset_problems[0]
        names = ", ".join(dict.fromkeys(p[1] for p in c.charset_problems))
        declared = c.charset if c.charset else "none (the default repertoire, ASCII)"
        out.append(ctx.finding(
            NAME, "data.charset", S.WARNING,
            f"text the character set cannot decode: {names} in {_what(t)}",
            f"Specific Character Set (0008,0005) is {declared}, but {names} hold(s) bytes "
            f"it cannot decode ({first[2]}). The sender wrote the text in another encoding "
            "(e.g. UTF-8 or Latin-1 without declaring it): receivers show garbled names or "
            "reject the object.", assoc=t.association, frames=[t.frame_first],
            time=t.time_first, charset=c.charset, elements=[p[1] for p in c.charset_problems]))
    if len(cs) > MAX_LISTED:
        out.append(_more(ctx, "data.charset", S.WARNING, cs, "data sets with undecodable text"))
    return out


def _nm(uid) -> str:
    n = uid_name(uid)
    return f" ({n})" if n else ""


def _more(ctx, code, sev, checks, what):
    rest = checks[MAX_LISTED:]
    return ctx.finding(NAME, code, sev, f"{len(rest)} more {what}",
                       f"{len(checks)} in all; the first {MAX_LISTED} are listed separately.",
                       assoc=sorted({c.transfer.association for c in rest}, key=lambda a: a.id)[:50],
                       frames=[c.transfer.frame_first for c in rest[:10]], count=len(rest))
