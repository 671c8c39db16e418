"""Presentation-context negotiation (PS3.8 9.3.2.2, 9.3.3.2), SCP/SCU role
selection and user identity (PS3.7 D.3.3).

``matrix(a)`` is the table of abstract syntax × proposed transfer syntax →
outcome that the report draws.  Findings: rejected contexts; an SCU that
aborts because nothing it has fits the accepted contexts; SCUs that propose
only compressed syntaxes, or leave out Implicit VR Little Endian (the default
every DICOM application must support, PS3.5 10.1); role selection and user
identity that were not confirmed.
"""

from __future__ import annotations

from ..expert import Severity as S
from ..uids import IMPLICIT_VR_LITTLE_ENDIAN, is_compressed, uid_name
from .context import syntax_name

NAME = "negotiation"

ACCEPTED, REJECTED, OFFERED, UNANSWERED = "accepted", "rejected", "offered", "no answer"
STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."


def matrix(a) -> dict:
    """``{"syntaxes": [ts...], "rows": [{context, abstract..., cells: [outcome or ""]}]}``."""
    syntaxes = []
    for c in sorted(a.contexts.values(), key=lambda c: c.id):
        for ts in c.proposed or ([c.transfer_syntax] if c.transfer_syntax else []):
            if ts not in syntaxes:
                syntaxes.append(ts)
    rows = []
    for c in sorted(a.contexts.values(), key=lambda c: c.id):
        cells = []
        for ts in syntaxes:
            if ts not in c.proposed and ts != c.transfer_syntax:
                cells.append("")
            elif c.result is None:
                cells.append(UNANSWERED)
            elif c.accepted:
                cells.append(ACCEPTED if ts == c.transfer_syntax else OFFERED)
            else:
                cells.append(REJECTED)
        rows.append({"context_id": c.id, "abstract_syntax": c.abstract_syntax,
                     "abstract_syntax_name": uid_name(c.abstract_syntax),
                     "result": c.result_text, "reason": c.reason_text,
                     "transfer_syntax": c.transfer_syntax, "cells": cells,
                     "pdvs": a.ctx_pdvs.get(c.id, 0)})
    return {"syntaxes": syntaxes, "syntax_names": [uid_name(t) for t in syntaxes], "rows": rows}


def _by_abstract(a) -> dict:
    out = {}
    for c in a.contexts.values():
        if c.abstract_syntax:
            out.setdefault(c.abstract_syntax, []).append(c)
    return out


def run(ctx) -> list:
    out = []
    for a in ctx.associations:
        if a.rq is None:
            continue
        out.extend(_rejected(ctx, a))
        f = _unsendable(ctx, a)
        if f:
            out.append(f)
        out.extend(_proposals(ctx, a))
        out.extend(_roles(ctx, a))
        out.extend(_user_info(ctx, a))
    return out


def _names(uids, limit=6) -> str:
    names = [uid_name(u) or u for u in uids]
    s = ", ".join(names[:limit])
    return s + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _rejected(ctx, a):
    if a.ac is None:
        return []
    rejected = [c for c in a.contexts.values() if c.result not in (None, 0)]
    if not rejected:
        return []
    by_abs = _by_abstract(a)
    nowhere = sorted({c.abstract_syntax for c in rejected if c.abstract_syntax
                      and not any(x.accepted for x in by_abs.get(c.abstract_syntax, []))})
    by_reason = {}
    for c in rejected:
        by_reason.setdefault(c.reason_text, []).append(c)
    reasons = "; ".join(f"{len(cs)} {reason}" for reason, cs in by_reason.items())
    used = [c for c in rejected if a.ctx_pdvs.get(c.id)]
    expl = (f"{a.called_ae} did not accept {len(rejected)} of the {len(a.contexts)} presentation "
            f"contexts {a.calling_ae} proposed ({reasons}).")
    if nowhere:
        expl += (f" No context at all was accepted for {_names(nowhere)}: objects of "
                 f"{'these SOP classes' if len(nowhere) > 1 else 'this SOP class'} cannot be "
                 "exchanged on this association.")
    reason_codes = {c.result for c in rejected}
    if 3 in reason_codes:
        expl += (" 'abstract-syntax-not-supported' means the SCP does not offer that service or "
                 "SOP class (or is not configured to)")
        expl += "." if 4 not in reason_codes else ";"
    if 4 in reason_codes:
        expl += (" 'transfer-syntaxes-not-supported' means it supports the SOP class but none of "
                 "the transfer syntaxes proposed for it.")
    if used:
        expl += f" Data was nevertheless sent on rejected context(s) {', '.join(str(c.id) for c in used)}."
    sev = S.WARNING if used else S.NOTE
    return [ctx.finding(NAME, "pctx.rejected", sev,
                        f"{len(rejected)} presentation context(s) rejected by {a.called_ae} "
                        f"on association {a.id}", expl, assoc=a,
                        frames=[ctx.pdu_frame(a, 2)], time=a.ac_time,
                        contexts=[{"id": c.id, "abstract_syntax": c.abstract_syntax,
                                   "abstract_syntax_name": uid_name(c.abstract_syntax),
                                   "proposed": list(c.proposed), "reason": c.reason_text}
                                  for c in sorted(rejected, key=lambda c: c.id)],
                        not_accepted_at_all=nowhere)]


def _unsendable(ctx, a):
    """An SCU that aborts with nothing outstanding: it had something no accepted
    context fits (dcmtk storescu: 'no presentation context for ...')."""
    if a.ac is None or a.abort is None or a.abort_by != 0 or a.abort.source != 0:
        return None
    t = a.abort_time
    if any(op.response_time is None and op.request_time is not None and op.request_time <= t
           for op in a.operations):
        return None
    if any(op.status_class not in ("success", "pending", "warning", None) for op in a.operations):
        return None
    accepted = [c for c in a.contexts.values() if c.accepted]
    rejected = [c for c in a.contexts.values() if c.result not in (None, 0)]
    offered = sorted({ts for c in a.contexts.values() for ts in c.proposed})
    compressed = [ts for ts in offered if is_compressed(ts)]
    storage = sorted({c.abstract_syntax for c in a.contexts.values()
                      if (c.abstract_syntax or "").startswith(STORAGE_PREFIX)})
    sent = len(a.operations)
    parts = [f"{a.calling_ae} aborted the association "
             + ("right after it was accepted, without sending anything"
                if not sent else f"after {sent} successful operation(s), with nothing outstanding")
             + ", instead of releasing it. An SCU does this when it has an object it cannot send "
               "on any accepted presentation context: no context was accepted for the object's "
               "SOP class, or none for its transfer syntax."]
    if rejected:
        parts.append(f"Rejected here: {_names(sorted({c.abstract_syntax or '?' for c in rejected}))}.")
    if storage and not compressed:
        parts.append("Every transfer syntax proposed was uncompressed ("
                     + ", ".join(syntax_name(t) for t in offered)
                     + "): a compressed object (JPEG, JPEG 2000, RLE...) has no context to travel "
                       "on unless the SCU proposes its transfer syntax or decompresses it first.")
    elif compressed:
        acc_ts = sorted({c.transfer_syntax for c in accepted if c.transfer_syntax})
        parts.append(f"Accepted transfer syntaxes: {', '.join(syntax_name(t) for t in acc_ts)}.")
    parts.append("The SCU's log names the file it skipped.")
    return ctx.finding(NAME, "pctx.unsendable", S.WARNING,
                       f"{a.calling_ae} aborted: possibly an object with no accepted presentation "
                       f"context (association {a.id})", " ".join(parts), assoc=a,
                       frames=[ctx.pdu_frame(a, 2), a.abort_frame], time=a.abort_time,
                       operations_before=sent, proposed_transfer_syntaxes=offered,
                       only_uncompressed=bool(storage and not compressed))


def _proposals(ctx, a):
    out = []
    by_abs = _by_abstract(a)
    only_compressed = [abs_ for abs_, cs in by_abs.items()
                       if all(ts and is_compressed(ts) for c in cs for ts in c.proposed)
                       and any(c.proposed for c in cs)]
    if only_compressed:
        rejected = [x for x in only_compressed if not any(c.accepted for c in by_abs[x])]
        expl = (f"{a.calling_ae} proposed only compressed transfer syntaxes for "
                f"{_names(only_compressed)}. An SCP is not required to support any compressed "
                "syntax; without an uncompressed alternative (Explicit or Implicit VR Little "
                "Endian) the object cannot be sent to an SCP that lacks the codec.")
        if rejected:
            expl += f" It was indeed refused for {_names(rejected)}."
        out.append(ctx.finding(NAME, "pctx.only_compressed", S.WARNING if rejected else S.NOTE,
                               f"only compressed transfer syntaxes proposed for "
                               f"{len(only_compressed)} SOP class(es) on association {a.id}",
                               expl, assoc=a, frames=[a.start_frame], time=a.rq_time,
                               abstract_syntaxes=only_compressed, not_accepted=rejected))
    no_implicit = [abs_ for abs_, cs in by_abs.items()
                   if not any(IMPLICIT_VR_LITTLE_ENDIAN in c.proposed for c in cs)]
    if no_implicit:
        refused = [x for x in no_implicit if a.ac is not None
                   and not any(c.accepted for c in by_abs[x])]
        expl = (f"{a.calling_ae} did not propose Implicit VR Little Endian for "
                f"{_names(no_implicit)}. It is the default transfer syntax that every DICOM "
                "application must support (PS3.5 10.1); an SCP that supports nothing else "
                "will reject such contexts.")
        if refused:
            expl += f" Not accepted: {_names(refused)}."
        out.append(ctx.finding(NAME, "pctx.no_implicit", S.WARNING if refused else S.NOTE,
                               f"Implicit VR Little Endian not proposed for {len(no_implicit)} "
                               f"SOP class(es) on association {a.id}", expl, assoc=a,
                               frames=[a.start_frame], time=a.rq_time,
                               abstract_syntaxes=no_implicit, not_accepted=refused))
    return out


def _plain_names(names, limit=5) -> str:
    s = ", ".join(names[:limit])
    return s + (f" and {len(names) - limit} more SOP classes" if len(names) > limit else "")


def _role_text(scu, scp) -> str:
    if scu is None and scp is None:
        return "no reply"
    roles = [r for r, v in (("SCU", scu), ("SCP", scp)) if v]
    return "+".join(roles) if roles else "neither role"


def _roles(ctx, a):
    roles = a.roles()
    if not roles:
        return []
    out = []
    gets = [op for op in a.operations if op.command == "C-GET"]
    lines = {}
    for r in roles:
        uid = r["sop_class_uid"]
        name = uid_name(uid) or uid
        prop = _role_text(r.get("proposed_scu"), r.get("proposed_scp"))
        acc = _role_text(r.get("accepted_scu"), r.get("accepted_scp"))
        lines.setdefault(f"proposed {prop}, accepted {acc}", []).append(name)
        if r.get("proposed_scu") is None and a.ac is not None:
            out.append(ctx.finding(
                NAME, "role.unsolicited", S.WARNING,
                f"role selection answered for {name} that was not proposed (association {a.id})",
                f"{a.called_ae} answered an SCP/SCU role selection for {name}, which "
                f"{a.calling_ae} never proposed. PS3.7 D.3.3.4 allows a reply only to a "
                "proposal; some requestors abort on it.", assoc=a, frames=[ctx.pdu_frame(a, 2)],
                time=a.ac_time, sop_class_uid=uid))
            continue
        if a.ac is None:
            continue
        gave_more = ((r.get("accepted_scu") and not r.get("proposed_scu"))
                     or (r.get("accepted_scp") and not r.get("proposed_scp")))
        if gave_more:
            out.append(ctx.finding(
                NAME, "role.invalid", S.WARNING,
                f"role selection accepted a role that was not proposed for {name}",
                f"For {name}, {a.calling_ae} proposed {prop} and {a.called_ae} accepted {acc}. An "
                "acceptor may only accept or refuse the roles proposed (PS3.7 D.3.3.4).",
                assoc=a, frames=[ctx.pdu_frame(a, 2)], time=a.ac_time, sop_class_uid=uid))
        if r.get("proposed_scp") and not r.get("accepted_scp"):
            sev = S.WARNING if gets else S.NOTE
            expl = (f"{a.calling_ae} asked to act as SCP for {name} (so that {a.called_ae} can "
                    f"send it objects on this association, as C-GET needs) but {a.called_ae} "
                    f"answered {acc}. {a.called_ae} may therefore not send {name} objects "
                    "as C-GET sub-operations on this association.")
            out.append(ctx.finding(NAME, "role.scp_refused", sev,
                                   f"SCP role not accepted for {name} (association {a.id})", expl,
                                   assoc=a, frames=[ctx.pdu_frame(a, 2)], time=a.ac_time,
                                   sop_class_uid=uid, proposed=prop, accepted=acc))
    out.append(ctx.finding(NAME, "role.selection", S.CHAT,
                           f"SCP/SCU role selection for {len(roles)} SOP class(es) on association "
                           f"{a.id}", "; ".join(
                               f"{_plain_names(names)}: {outcome}" for outcome, names in lines.items())
                           + ".",
                           assoc=a, frames=[a.start_frame], time=a.rq_time, roles=roles))
    return out


def _user_info(ctx, a):
    out = []
    rq = a.rq.user_info
    ac = a.ac.user_info if a.ac is not None else None
    ui = rq.user_identity
    if ui is not None:
        who = "<redacted>" if ctx.redact else ui.primary_field.decode("utf-8", "replace")
        confirmed = ac is not None and ac.user_identity_response is not None
        expl = (f"{a.calling_ae} identified itself with user identity type {ui.type} "
                f"({ui.type_text}), user '{who}'"
                + (f", with a {len(ui.secondary_field)}-byte passcode" if ui.type == 2 else "")
                + ("; it asked for a positive response" if ui.positive_response_requested
                   else "") + ". ")
        sev = S.CHAT
        if a.ac is None:
            expl += "The association was not accepted."
        elif confirmed:
            expl += f"{a.called_ae} confirmed it (User Identity server response)."
        elif ui.positive_response_requested:
            expl += (f"{a.called_ae} accepted the association but sent no User Identity server "
                     "response, although one was requested: it does not support user identity "
                     "negotiation, or ignored it, so the identity may not have been checked "
                     "(PS3.7 D.3.3.7).")
            sev = S.NOTE
        else:
            expl += f"{a.called_ae} accepted the association (no confirmation was requested)."
        out.append(ctx.finding(NAME, "user_identity", sev,
                               f"user identity ({ui.type_text}) on association {a.id}"
                               + ("" if confirmed or a.ac is None or not ui.positive_response_requested
                                  else ": not confirmed"),
                               expl, assoc=a, frames=[a.start_frame], time=a.rq_time,
                               type=ui.type, type_text=ui.type_text,
                               positive_response_requested=bool(ui.positive_response_requested),
                               confirmed=confirmed))
    if rq.async_ops_invoked is not None and ac is not None:
        if ac.async_ops_invoked is None:
            out.append(ctx.finding(
                NAME, "async.not_answered", S.CHAT,
                f"asynchronous operations window not answered (association {a.id})",
                f"{a.calling_ae} proposed up to {rq.async_ops_invoked} outstanding operations "
                f"invoked and {rq.async_ops_performed} performed; {a.called_ae} did not answer, "
                "so operations are synchronous: one at a time.", assoc=a,
                frames=[ctx.pdu_frame(a, 2)], time=a.ac_time,
                proposed=[rq.async_ops_invoked, rq.async_ops_performed]))
    return out
