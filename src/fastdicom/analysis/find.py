"""C-FIND (PS3.4 C.4.1): each query identifier against its responses.

A key with a value is a matching key, an empty one a return key (C.2.2.1).
The checks: values with leading or trailing spaces (many archives compare
literally), ``^`` separators (PN component matching is exact per component),
wildcards where the VR forbids them or where archives often lack support,
over-defined queries (more than one unique key), zero matches while a looser
query in the same capture matched, and responses that leave requested keys
out.  The identifiers of C-MOVE and C-GET requests get the same key checks.
"""

from __future__ import annotations

from ..expert import Severity as S
from ..uids import uid_name
from .context import quoted

NAME = "find"

QUERY_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
RETRIEVE_AE_TITLE = 0x00080054
# unique keys per query level (PS3.4 C.6), from the top of the hierarchy down
LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
UNIQUE_KEYS = {"PATIENT": 0x00100020, "STUDY": 0x0020000D, "SERIES": 0x0020000E,
               "IMAGE": 0x00080018}
UNIQUE_NAMES = {0x00100020: "PatientID", 0x0020000D: "StudyInstanceUID",
                0x0020000E: "SeriesInstanceUID", 0x00080018: "SOPInstanceUID"}
# VRs on which '*' and '?' are wildcards (C.2.2.2.4); elsewhere they are literal
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST",
                      "TM", "UC", "UR", "UT"})
STUDY_ROOT_PREFIX = "1.2.840.10008.5.1.4.1.2.2."
NOT_KEYS = frozenset({QUERY_LEVEL, SPECIFIC_CHARACTER_SET})


def is_wildcard(key) -> bool:
    return key.vr in WILDCARD_VRS and any(c in key.text for c in "*?")


def is_universal(key) -> bool:
    """Empty, or a lone '*': matches everything (C.2.2.2.3, C.2.2.2.4)."""
    return key.empty or (key.vr in WILDCARD_VRS and key.text.strip(" ") in ("*", ""))


def query_level(ident) -> str:
    k = ident.get(QUERY_LEVEL) if ident else None
    return (k.text.strip().upper() if k is not None else "") or ""


def matching_keys(ident) -> dict:
    """tag -> Key of the keys that constrain the match."""
    if ident is None:
        return {}
    return {t: k for t, k in ident.keys.items() if t not in NOT_KEYS and not is_universal(k)}


def summarize(ctx, op) -> dict:
    """One C-FIND: keys asked for, responses, and which keys came back."""
    req = ctx.identifier(op.request_dataset)
    resp = [ctx.identifier(t) for t in op.response_datasets]
    resp = [r for r in resp if r is not None]
    keys = []
    if req is not None:
        for tag, k in req.keys.items():
            present = sum(1 for r in resp if tag in r.keys)
            valued = sum(1 for r in resp if tag in r.keys and not r.keys[tag].empty)
            kind = ("level" if tag == QUERY_LEVEL else "sequence" if k.vr == "SQ"
                    else "return" if k.empty else "matching")
            keys.append({"tag": f"({tag >> 16:04X},{tag & 0xFFFF:04X})", "keyword": k.keyword,
                         "vr": k.vr, "kind": kind,
                         "value": ctx.value(tag, k.text) if kind != "return" else "",
                         "returned": present, "valued": valued})
    return {"association": op.association.id, "message_id": op.message_id,
            "model": uid_name(op.affected_sop_class_uid) or op.affected_sop_class_uid,
            "level": query_level(req), "keys": keys, "matches": max(len(resp), op.pending_responses),
            "status": op.status, "status_text": op.status_text,
            "cancelled": ctx.cancel(op) is not None}


def run(ctx) -> list:
    out = []
    finds = [op for op in ctx.operations("C-FIND")]
    queries = {op.index: summarize(ctx, op) for op in finds}
    ctx._cache["find.queries"] = queries
    for op in finds:
        req = ctx.identifier(op.request_dataset)
        if req is None:
            continue
        zero = _zero_matches(op)
        out.extend(key_checks(ctx, op, req, zero or op.status_class == "failure"))
        if zero:
            out.append(_zero(ctx, op, req, finds))
        f = _missing_keys(ctx, op, req)
        if f:
            out.append(f)
        f = _over_defined(ctx, op, req, zero)
        if f:
            out.append(f)
        if ctx.cancel(op) is not None:
            out.append(_cancelled(ctx, op))
        elif op.status_class == "failure":
            out.append(_failed(ctx, op, req))
    for cmd in ("C-MOVE", "C-GET"):
        for op in ctx.operations(cmd):
            req = ctx.identifier(op.request_dataset)
            if req is not None:
                out.extend(key_checks(ctx, op, req, op.status_class == "failure"
                                      or (op.counters.get("completed") == 0
                                          and op.status_class == "success")))
    return out


def _zero_matches(op) -> bool:
    return (op.status_class == "success" and op.pending_responses == 0
            and not op.response_datasets)


def _what(op) -> str:
    return (f"{op.command}-RQ (message ID {op.message_id}, association {op.association.id}, "
            f"frame {op.request_frame})")


def key_checks(ctx, op, req, failed) -> list:
    """Spaces, separators and wildcards in the valued keys of a request identifier."""
    out = []
    a = op.association
    for tag, k in req.keys.items():
        if tag in NOT_KEYS or k.vr == "SQ" or k.empty:
            continue
        name = k.keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        shown = ctx.raw_value(k)
        raw = k.raw.rstrip(b"\x00")
        frames = [req.frame, op.request_frame]
        if k.vr == "UI":
            if raw != raw.strip(b" ") or b" " in raw:
                out.append(ctx.finding(
                    NAME, "find.uid_space", S.WARNING, f"{name} holds a space in {_what(op)}",
                    f"The UID {shown} contains a space. UIDs are padded with a NUL byte, never a "
                    "space, and archives match them exactly: this value can match nothing.",
                    assoc=a, frames=frames, time=op.request_time, keyword=name,
                    message_id=op.message_id))
            continue
        if k.vr not in TEXT_VRS:
            continue
        stripped_len = len(raw.rstrip(b" "))
        trailing = len(raw) - stripped_len
        leading = len(raw) - len(raw.lstrip(b" "))
        pad_only = trailing == 1 and stripped_len % 2 == 1 and len(raw) % 2 == 0
        if leading or trailing and (failed or not pad_only):
            where = " and ".join(w for w, n in (("leading", leading), ("trailing", trailing)) if n)
            sev = S.WARNING if failed else S.NOTE
            expl = (f"The matching key {name} of {_what(op)} is {shown} on the wire: it has "
                    f"{where} space(s). DICOM treats trailing spaces as padding and leading "
                    f"spaces as insignificant for {k.vr}, but many archives compare the value "
                    "literally, so a key copied with a stray space matches nothing.")
            if pad_only:
                expl += (" (The single trailing space may just be the padding to an even length "
                         "that every odd-length value gets.)")
            if failed:
                expl += " This query found nothing."
            out.append(ctx.finding(NAME, "find.trailing_space" if trailing else "find.leading_space",
                                   sev, f"{where} space in {name} {shown} ({_what(op)})", expl,
                                   assoc=a, frames=frames, time=op.request_time, keyword=name,
                                   vr=k.vr, leading=leading, trailing=trailing,
                                   padding_only=pad_only, matched_nothing=failed,
                                   message_id=op.message_id))
        text = k.text
        if "^" in text and k.vr != "PN":
            out.append(ctx.finding(
                NAME, "find.separator", S.WARNING, f"'^' in {name} ({_what(op)})",
                f"{name} is {shown}: '^' separates the components of a person name (PN), but "
                f"{name} is {k.vr}, where it is an ordinary character. A name in the wrong key?",
                assoc=a, frames=frames, time=op.request_time, keyword=name,
                message_id=op.message_id))
        elif "^" in text and "*" not in text and "?" not in text:
            out.append(ctx.finding(
                NAME, "find.separator", S.WARNING if failed else S.NOTE,
                f"exact person-name match on components in {name} ({_what(op)})",
                f"{name} is {shown}, with '^' component separators and no wildcard: an archive "
                "matches each component exactly, so a stored name with a middle name, prefix, "
                "different case or a different number of components does not match. "
                "'Family^Given*' or 'Family*' is more forgiving."
                + (" This query found nothing." if failed else ""),
                assoc=a, frames=frames, time=op.request_time, keyword=name,
                message_id=op.message_id))
        has_wild = any(c in text for c in "*?")
        if has_wild and k.vr not in WILDCARD_VRS:
            out.append(ctx.finding(
                NAME, "find.wildcard_vr", S.WARNING, f"wildcard in {name} ({k.vr}) ({_what(op)})",
                f"{name} is {shown}: '*' and '?' are wildcards only for text VRs such as PN, LO "
                f"and CS (PS3.4 C.2.2.2.4). For {k.vr} they are literal characters, so the SCP "
                "will look for them as written or refuse the query." +
                (" For dates and times use range matching (e.g. 20240101-20241231)."
                 if k.vr in ("DA", "TM", "DT") else ""),
                assoc=a, frames=frames, time=op.request_time, keyword=name,
                message_id=op.message_id))
        elif has_wild and text.strip() != "*":
            risky = []
            if "?" in text:
                risky.append("'?' (single character)")
            body = text.strip()
            if body.startswith("*") and len(body) > 1:
                risky.append("a leading '*'")
            if "*" in body[1:-1]:
                risky.append("'*' inside the value")
            if tag in UNIQUE_NAMES:
                risky.append(f"a wildcard in the unique key {name}")
            if risky:
                out.append(ctx.finding(
                    NAME, "find.wildcard", S.WARNING if failed else S.NOTE,
                    f"wildcard the SCP may not support in {name} ({_what(op)})",
                    f"{name} is {shown}, using {', '.join(risky)}. The standard allows it, but "
                    "many archives only support a trailing '*' (or none on IDs and UIDs) and "
                    "then match literally or find nothing." +
                    (" This query found nothing." if failed else ""),
                    assoc=a, frames=frames, time=op.request_time, keyword=name,
                    message_id=op.message_id))
    return out


def _norm(text: str) -> str:
    return text.strip(" \x00").upper()


def _zero(ctx, op, req, finds):
    a = op.association
    mine = matching_keys(req)
    level = query_level(req)
    looser = []
    for other in finds:
        if other is op or _zero_matches(other):
            continue
        oreq = ctx.identifier(other.request_dataset)
        if oreq is None:
            continue
        n = max(other.pending_responses, len(other.response_datasets))
        if n and set(matching_keys(oreq)) <= set(mine):
            looser.append((other, n))
    parts = [f"{_what(op)} at level {level or '?'} matched nothing."]
    if mine:
        parts.append("Its matching keys: " + ", ".join(
            f"{k.keyword or hex(t)}={ctx.raw_value(k)}" for t, k in mine.items()) + ".")
    hints = {}
    for tag, k in mine.items():
        if is_wildcard(k):
            continue
        values = []
        for other in finds:
            for t in other.response_datasets:
                r = ctx.identifier(t)
                if r is not None and tag in r.keys and not r.keys[tag].empty:
                    values.append(r.keys[tag].text)
        if not values:
            continue
        near = [v for v in values if _norm(v) == _norm(k.text) and v != k.text]
        name = k.keyword or hex(tag)
        if near:
            parts.append(f"{name} {ctx.raw_value(k)} differs only in case or spaces from "
                         f"{quoted(ctx.value(tag, near[0]))}, returned by another query.")
            hints[name] = near[0]
        elif _norm(k.text) not in {_norm(v) for v in values}:
            uniq = sorted(set(values))
            shown = ", ".join(quoted(ctx.value(tag, v)) for v in uniq[:6])
            parts.append(f"No response in this capture has that {name}; values returned: "
                         f"{shown}{' and more' if len(uniq) > 6 else ''}.")
    if looser:
        other, n = looser[0]
        parts.append(f"A looser query in the same capture, {_what(other)}, matched {n}.")
    parts.append("Check the values for typing errors, stray spaces, case, and the level: keys "
                 "of a level below the query level cannot match.")
    sev = S.WARNING if looser or hints else S.NOTE
    return ctx.finding(NAME, "find.zero_matches", sev,
                       f"C-FIND matched nothing: {_what(op)}", " ".join(parts), assoc=a,
                       frames=[op.request_frame, op.response_frame], time=op.request_time,
                       message_id=op.message_id, level=level,
                       matching_keys=[k.keyword for k in mine.values()],
                       looser_query=None if not looser else {
                           "association": looser[0][0].association.id,
                           "message_id": looser[0][0].message_id, "matches": looser[0][1]},
                       near_values=hints)


def _missing_keys(ctx, op, req):
    resp = [(t, ctx.identifier(t)) for t in op.response_datasets]
    resp = [(t, r) for t, r in resp if r is not None]
    if not resp:
        return None
    asked = [t for t in req.keys if t != SPECIFIC_CHARACTER_SET]
    absent = {}
    for _, r in resp:
        for t in asked:
            if t not in r.keys:
                absent[t] = absent.get(t, 0) + 1
    if not absent:
        return None
    names = []
    for t, n in absent.items():
        k = req.keys[t]
        names.append(f"{k.keyword or hex(t)} ({'missing from all' if n == len(resp) else f'missing from {n}'})")
    statuses = {r.status for r in ctx.responses(op) if r.status in (0xFF00, 0xFF01)}
    optional = 0xFF01 in statuses
    expl = (f"{len(resp)} pending response(s) to {_what(op)} came back without keys that were "
            f"asked for: {', '.join(names)}. An SCP must return every requested key, empty if it "
            "has no value (PS3.4 C.4.1.1.3.2)")
    expl += (", or flag unsupported optional keys with status 0xFF01, as it did here."
             if optional else "; a client that relies on them will show blanks or fail.")
    return ctx.finding(NAME, "find.missing_keys", S.NOTE if optional else S.WARNING,
                       f"{len(absent)} requested key(s) missing from responses ({_what(op)})",
                       expl, assoc=op.association,
                       frames=[op.request_frame] + [t.frame_first for t, _ in resp[:5]],
                       time=op.first_response_time, message_id=op.message_id,
                       missing={req.keys[t].keyword or hex(t): n for t, n in absent.items()},
                       responses=len(resp))


def _over_defined(ctx, op, req, zero):
    level = query_level(req)
    if level not in LEVELS:
        return None
    depth = LEVELS.index(level)
    valued = {t: k for t, k in matching_keys(req).items()}
    uniques = [t for t in UNIQUE_KEYS.values() if t in valued]
    study_root = (op.affected_sop_class_uid or "").startswith(STUDY_ROOT_PREFIX)
    if study_root and 0x00100020 in uniques:
        uniques.remove(0x00100020)  # PatientID is an ordinary key in the study root model
    below = [t for t in uniques if t in UNIQUE_NAMES
             and LEVELS.index(next(lv for lv, u in UNIQUE_KEYS.items() if u == t)) > depth]
    own = UNIQUE_KEYS[level]
    others = [t for t in valued if t not in UNIQUE_KEYS.values()]
    if not below and not (len(uniques) > 1 or (own in valued and others)):
        return None
    parts = [f"{_what(op)} at level {level} gives "
             + ", ".join(UNIQUE_NAMES[t] for t in uniques) + (" (unique keys)" if uniques else "")]
    if others and own in valued:
        parts[0] += " and the matching key(s) " + ", ".join(valued[t].keyword or hex(t) for t in others)
    parts[0] += "."
    if below:
        parts.append(f"{', '.join(UNIQUE_NAMES[t] for t in below)} belong(s) to a level below "
                     f"{level}: a hierarchical SCP refuses or ignores such keys.")
    parts.append("A unique key already identifies the entity: every additional key can only "
                 "make the match fail (a name spelled differently, a date in another format).")
    if zero:
        parts.append("This query found nothing.")
    return ctx.finding(NAME, "find.over_defined", S.WARNING if (below or zero) else S.NOTE,
                       f"over-defined query: {len(uniques)} unique key(s) "
                       f"{'and more keys ' if others else ''}({_what(op)})", " ".join(parts),
                       assoc=op.association, frames=[op.request_frame], time=op.request_time,
                       message_id=op.message_id, unique_keys=[UNIQUE_NAMES[t] for t in uniques],
                       below_level=[UNIQUE_NAMES[t] for t in below])


def _cancelled(ctx, op):
    ct, cf = ctx.cancel(op)
    rs = ctx.responses(op)
    before = sum(1 for r in rs if r.time < ct and r.status in (0xFF00, 0xFF01))
    after = sum(1 for r in rs if r.time >= ct and r.status in (0xFF00, 0xFF01))
    final = op.status
    parts = [f"The SCU sent a C-CANCEL-RQ for {_what(op)} after {before} match(es), "
             f"{(ct - op.request_time) / 1e9 * 1000:.1f} ms after the request."]
    if final is None:
        parts.append("The SCP never sent a final response.")
        sev = S.WARNING
    else:
        took = (op.response_time - ct) / 1e9 * 1000
        if final == 0xFE00:
            parts.append(f"The SCP stopped with status 0xFE00 (Cancel) {took:.1f} ms later"
                         + (f", after {after} more pending response(s) already on their way."
                            if after else "."))
            sev = S.NOTE
        else:
            parts.append(f"The SCP ended with status 0x{final:04x} ({op.status_text}) instead of "
                         f"0xFE00 (Cancel), {took:.1f} ms later, after {after} more pending "
                         "response(s): it did not act on the cancel.")
            sev = S.WARNING
    return ctx.finding(NAME, "find.cancelled", sev, f"C-FIND cancelled by the SCU ({_what(op)})",
                       " ".join(parts), assoc=op.association,
                       frames=[op.request_frame, cf, op.response_frame], time=ct,
                       message_id=op.message_id, matches_before_cancel=before,
                       pending_after_cancel=after, final_status=final)


FAILURE_HINTS = {
    0xA900: "The identifier does not fit the information model: a key the model does not "
            "define at that level, or a wrong Query/Retrieve Level.",
    0xA700: "The SCP ran out of resources: too many matches (narrow the query) or it is "
            "overloaded.",
}


def _failed(ctx, op, req):
    st = op.status
    hint = FAILURE_HINTS.get(st & 0xFF00 if st & 0xFF00 == 0xA700 else st, "")
    if not hint and st & 0xF000 == 0xC000:
        hint = ("The SCP could not process the query: often a key it does not support, a "
                "wildcard or range where it cannot match one, or an internal error.")
    keys = ", ".join(f"{k.keyword}={ctx.raw_value(k)}" for k in matching_keys(req).values())
    comment = f" Error comment: {op.error_comment}." if op.error_comment else ""
    return ctx.finding(NAME, "find.failed", S.ERROR,
                       f"C-FIND failed with 0x{st:04x} ({op.status_text}) ({_what(op)})",
                       f"Level {query_level(req) or '?'}; matching keys: {keys or 'none'}. "
                       f"{hint}{comment}", assoc=op.association,
                       frames=[op.request_frame, op.response_frame], time=op.response_time,
                       message_id=op.message_id, status=st)
