"""Association problems: rejections, aborts and unanswered requests with their
cause in PS3.8's words; TCP failures before any DICOM; AE titles that differ
only in case or padding."""

from __future__ import annotations

from ..association import AWAITING_AC
from ..decoder import ATTEMPT_TEXT
from ..events import ATTEMPT_NO_DATA, ATTEMPT_REFUSED, ATTEMPT_UNANSWERED
from ..expert import Severity as S
from .context import fmt_secs, quoted

NAME = "associations"

# PS3.8 Table 9-21, per (source, reason): the cause as a short phrase and what it means
REJECT_CAUSES = {
    (1, 1): ("no reason given", "The called application rejected the association without saying why. "
             "Its log says why; common causes are an unknown calling AE title or host, a licence "
             "limit, or a service it does not offer."),
    (1, 2): ("application context name not supported", "The called application does not speak the "
             "DICOM application context named in the request."),
    (1, 3): ("calling AE title not recognised", "The called application does not know the calling "
             "AE title: add it (with its IP address, if the SCP checks it) to the SCP's list of "
             "known peers, or correct the SCU's own AE title."),
    (1, 7): ("called AE title not recognised", "The called application does not answer to that AE "
             "title: the SCU's configuration of the remote AE title does not match the SCP's own "
             "AE title (check spelling, case and spaces)."),
    (2, 1): ("no reason given (by the service provider, ACSE)", "The DICOM upper layer of the "
             "called system rejected the association without saying why."),
    (2, 2): ("protocol version not supported", "The called system does not support the protocol "
             "version in the A-ASSOCIATE-RQ."),
    (3, 1): ("temporary congestion", "The called system is overloaded (too many associations at "
             "once): retry later, or raise its limit on simultaneous associations."),
    (3, 2): ("local limit exceeded", "The called system reached a local limit (typically the number "
             "of simultaneous associations): retry later, or raise that limit."),
}

ABORT_PROVIDER_REASONS = {
    0: ("reason not specified", "The DICOM upper layer gave no reason."),
    1: ("unrecognized PDU", "The aborting side received bytes that are not a DICOM PDU: a peer "
        "that is not speaking DICOM on this port (e.g. TLS to a plain port), or a corrupt stream."),
    2: ("unexpected PDU", "The aborting side received a PDU that is not allowed in the state the "
        "association was in (PS3.8 state machine), e.g. data before the association was "
        "accepted, or a second A-ASSOCIATE-RQ."),
    4: ("unrecognized PDU parameter", "A PDU carried an item the aborting side does not know."),
    5: ("unexpected PDU parameter", "A PDU carried an item that is not allowed where it was."),
    6: ("invalid PDU parameter value", "A PDU field held a value the aborting side rejects, e.g. "
        "a PDU longer than the maximum length it announced."),
}


def run(ctx) -> list:
    out = []
    for a in ctx.associations:
        if a.rj is not None:
            out.append(_reject(ctx, a))
        if a.abort is not None:
            out.append(_abort(ctx, a))
        if a.state == AWAITING_AC and a.rq is not None:
            out.append(_no_answer(ctx, a))
        f = _unanswered_ops(ctx, a)
        if f is not None:
            out.append(f)
    out.extend(_attempts(ctx))
    out.extend(_ae_variants(ctx))
    out.extend(_statuses(ctx))
    return out


# the C-FIND, C-MOVE and C-GET analyses explain their own failures
OWN_ANALYSIS = frozenset({"C-FIND", "C-MOVE", "C-GET"})


def _statuses(ctx):
    """Operations that ended in failure or warning, grouped per association and status."""
    groups = {}
    for a in ctx.associations:
        for op in a.operations:
            if op.command in OWN_ANALYSIS or op.status_class not in ("failure", "warning"):
                continue
            groups.setdefault((a.id, op.command, op.status), []).append(op)
    out = []
    for (aid, command, status), ops in groups.items():
        a = ops[0].association
        first = ops[0]
        failure = first.status_class == "failure"
        responder = ctx.side(a, 1 - first.direction)
        comments = sorted({op.error_comment for op in ops if op.error_comment})
        total = sum(1 for op in a.operations if op.command == command)
        expl = (f"{responder[0].upper() + responder[1:]} answered {len(ops)} of {total} "
                f"{command} request(s) with 0x{status:04x} ({first.status_text})"
                + (f"; error comment: {'; '.join(comments[:3])}" if comments else "") + ". ")
        if failure and status & 0xFF00 == 0xA700:
            expl += ("Out of resources: the receiver's storage or database is full or "
                     "overloaded; its log says which.")
        elif failure and status & 0xFF00 == 0xA900:
            expl += "The data set does not match the SOP class, in the receiver's judgement."
        elif failure and status & 0xF000 == 0xC000:
            expl += "The receiver could not process the request: its log says why."
        elif failure and status == 0x0122:
            expl += "The receiver does not support that SOP class on this association."
        elif not failure:
            expl += "A warning: the operation succeeded, but not exactly as asked."
        out.append(ctx.finding(
            NAME, "op.failed" if failure else "op.warning", S.ERROR if failure else S.WARNING,
            f"{len(ops)} {command} {'failure' if failure else 'warning'}(s) with 0x{status:04x} "
            f"({first.status_text}) on association {aid}", expl, assoc=a,
            frames=[op.response_frame for op in ops[:10]], time=first.response_time,
            command=command, status=status, count=len(ops), of=total,
            message_ids=[op.message_id for op in ops[:50]]))
    return out


# ------------------------------------------------------------------ rejections
def reject_cause(a) -> tuple:
    rj = a.rj
    phrase, meaning = REJECT_CAUSES.get((rj.source, rj.reason), (rj.reason_text, ""))
    return phrase, meaning


def _reject(ctx, a):
    rj = a.rj
    phrase, meaning = reject_cause(a)
    called_raw = a.rq.called_ae_raw.decode("latin-1").rstrip(" ") if a.rq else None
    calling = a.calling_ae or "?"
    if (rj.source, rj.reason) == (1, 7):
        title = (f"called AE title not recognised: {a.called_ae} was called as {quoted(called_raw)} "
                 f"by {calling} at {a.flow.client_ip}")
    elif (rj.source, rj.reason) == (1, 3):
        title = (f"calling AE title not recognised: {a.called_ae} at {a.flow.server} does not know "
                 f"{quoted(calling)} (from {a.flow.client_ip})")
    else:
        title = f"association rejected ({phrase}): {calling} → {a.called_ae} at {a.flow.server}"
    permanence = ("permanent: retrying will not help until a configuration changes"
                  if rj.result == 1 else "transient: the same request may succeed later")
    expl = (f"{a.called_ae or 'The acceptor'} at {a.flow.server} answered the A-ASSOCIATE-RQ from "
            f"{ctx.requestor(a)} with an A-ASSOCIATE-RJ: {rj.result_text} ({permanence}), "
            f"source {rj.source_text}, reason {rj.reason_text}. {meaning}")
    accepted_as = sorted({o.called_ae for o in ctx.associations
                          if o is not a and o.ac is not None and o.flow.server == a.flow.server
                          and o.called_ae})
    if (rj.source, rj.reason) == (1, 7) and accepted_as:
        expl += (f" The same address accepted associations called as "
                 f"{', '.join(quoted(x) for x in accepted_as)}.")
    if (rj.source, rj.reason) == (1, 3):
        known = sorted({o.calling_ae for o in ctx.associations
                        if o is not a and o.ac is not None and o.flow.server == a.flow.server
                        and o.calling_ae})
        if known:
            expl += f" It accepted associations from {', '.join(quoted(x) for x in known)}."
    return ctx.finding(NAME, "assoc.rejected", S.ERROR, title, expl, assoc=a,
                       frames=[a.start_frame, ctx.pdu_frame(a, 3)], time=a.rj_time,
                       result=rj.result_text, source=rj.source_text, reason=rj.reason_text,
                       cause=phrase, calling_ae=a.calling_ae, called_ae=a.called_ae,
                       called_ae_raw=called_raw, client=a.flow.client, server=a.flow.server)


# ---------------------------------------------------------------------- aborts
def abort_cause(a) -> str:
    ab = a.abort
    if ab.source == 2:
        phrase = ABORT_PROVIDER_REASONS.get(ab.reason, (ab.reason_text, ""))[0]
        return f"association aborted by the service provider: {phrase}"
    if ab.source == 0:
        return "association aborted by the service user"
    return f"association aborted ({ab.source_text})"


def _abort(ctx, a):
    ab = a.abort
    by = a.abort_by
    sender = ctx.side(a, by)
    where = a.flow.client_ip if by == 0 else a.flow.server
    title = f"{abort_cause(a)} ({sender} at {where})"
    t = a.abort_time
    outstanding = [op for op in a.operations if op.response_time is None
                   and op.request_time is not None and op.request_time <= t]
    done = [op for op in a.operations if op.response_time is not None and op.response_time <= t]
    parts = [f"{sender[0].upper() + sender[1:]} sent an A-ABORT "
             f"(source: {ab.source_text}; reason: {ab.reason_text})."]
    severity = S.WARNING
    if ab.source == 2:
        parts.append(ABORT_PROVIDER_REASONS.get(ab.reason, ("", ""))[1])
        severity = S.ERROR
    if a.ac is None and a.rj is None:
        waited = (t - (a.rq_time or a.start)) / 1e9
        parts.append("The association had not been accepted yet: the acceptor aborted instead of "
                     "answering with an A-ASSOCIATE-AC or -RJ." if by == 1 else
                     f"The requestor gave up {fmt_secs(waited)} after its A-ASSOCIATE-RQ, which "
                     f"{a.called_ae or 'the acceptor'} at {a.flow.server} never answered (no "
                     "A-ASSOCIATE-AC or -RJ): typically the requestor's association (ACSE) "
                     "timeout. The process behind that port accepted the TCP connection but did "
                     "not answer: hung, overloaded, expecting TLS, or not a DICOM application.")
        severity = S.ERROR
    elif outstanding:
        op = outstanding[0]
        req_end = op.request_end_time or op.request_time
        waited = (t - req_end) / 1e9
        what = f"{op.command}-RQ (message ID {op.message_id})"
        if op.direction == by:
            parts.append(f"It gave up waiting for the response to its {what}: {fmt_secs(waited)} "
                         "after the request's last byte. That is usually a timeout on this side "
                         "(its DIMSE or network timeout) while the other side was still working.")
        else:
            parts.append(f"It did so while {what} from the other side was outstanding, "
                         f"{fmt_secs(waited)} after the request's last byte, instead of answering "
                         "with a status. Its log should say why: typically an internal error "
                         "(storage, database) or an object it will not accept.")
        severity = S.ERROR
    elif by == 0 and ab.source == 0:
        if not a.operations:
            parts.append("It did so right after the association was accepted, without sending "
                         "anything: an SCU does this when none of the accepted presentation "
                         "contexts fits what it has to send (see the negotiation findings).")
        else:
            bad = [op for op in done if op.status_class not in ("success", "pending")]
            parts.append(f"It did so after {len(done)} completed operation(s) and nothing "
                         "outstanding"
                         + (f" ({len(bad)} not successful)" if bad else ", all successful")
                         + ", instead of releasing. SCUs do this when they have an object they "
                           "cannot send on the accepted presentation contexts (SOP class or "
                           "transfer syntax not accepted), or on an error of their own.")
    elif by == 1 and ab.source == 0:
        last = max((op.response_time for op in done), default=a.ac_time or a.start)
        idle = (t - last) / 1e9
        parts.append(f"No operation was outstanding; the association had been idle for "
                     f"{fmt_secs(idle)}. An SCP does this on an idle timeout or when shutting "
                     "down.")
    return ctx.finding(NAME, "assoc.aborted", severity, title, " ".join(p for p in parts if p),
                       assoc=a, frames=[a.abort_frame], time=t,
                       by="requestor" if by == 0 else "acceptor", source=ab.source_text,
                       reason=ab.reason_text, cause=abort_cause(a),
                       outstanding=[{"command": op.command, "message_id": op.message_id}
                                    for op in outstanding],
                       completed_operations=len(done))


def _no_answer(ctx, a):
    end = a.end_time if a.end_time is not None else a.start
    waited = (end - (a.rq_time or a.start)) / 1e9
    from .. import events as E
    closed = a.flow.end_reason in (E.END_FIN, E.END_RST)
    how = {E.END_FIN: "the connection was closed", E.END_RST: "the connection was reset",
           E.END_IDLE: "the connection went idle"}.get(a.flow.end_reason, "the capture ended")
    title = (f"A-ASSOCIATE-RQ never answered: {a.called_ae} at {a.flow.server} sent no "
             f"A-ASSOCIATE-AC to {a.calling_ae}")
    expl = (f"{ctx.requestor(a)} asked for an association with {a.called_ae} at {a.flow.server}, "
            f"and got no A-ASSOCIATE-AC, -RJ or A-ABORT in {fmt_secs(waited)}, until {how}. The "
            "process behind the port accepted the TCP connection but did not speak DICOM back: "
            "it may be hung or overloaded, it may expect TLS, or it is not a DICOM application.")
    return ctx.finding(NAME, "assoc.no_answer", S.ERROR if closed else S.WARNING, title, expl,
                       assoc=a, frames=[a.start_frame, a.end_frame], time=a.rq_time,
                       waited=waited, ended=how)


def _unanswered_ops(ctx, a):
    ops = [op for op in a.operations if op.response_time is None and op.request_time is not None]
    if not ops:
        return None
    if a.abort is not None and all(op.request_time <= a.abort_time for op in ops):
        return None  # the abort finding tells this story
    names = ", ".join(f"{op.command}-RQ ID {op.message_id}" for op in ops[:5])
    more = f" and {len(ops) - 5} more" if len(ops) > 5 else ""
    ended = {"released": "was released", "aborted": "was aborted"}.get(a.end, "ended")
    capture_end = a.end == "incomplete"
    expl = (f"{len(ops)} request(s) got no final response before the association {ended}: "
            f"{names}{more}.")
    if capture_end:
        expl += (" The capture may simply have stopped before the answers came.")
    return ctx.finding(NAME, "op.unanswered", S.NOTE if capture_end else S.WARNING,
                       f"{len(ops)} operation(s) never answered on {ctx.label(a)}", expl, assoc=a,
                       frames=[op.request_frame for op in ops[:10]], time=ops[0].request_time,
                       operations=[{"command": op.command, "message_id": op.message_id}
                                   for op in ops])


# ------------------------------------------------------------------ TCP attempts
ATTEMPT_MEANING = {
    ATTEMPT_REFUSED: ("connection refused", S.ERROR,
                      "The server answered the connection request (SYN) with a reset (RST): "
                      "nothing listens on that port at that address, or a firewall rejects the "
                      "connection. Check the port number and that the DICOM service is running."),
    ATTEMPT_UNANSWERED: ("connection request never answered", S.ERROR,
                         "The connection request (SYN) got no answer: the host is down or "
                         "unreachable, the address is wrong, or a firewall drops the packets."),
    ATTEMPT_NO_DATA: ("TCP connection without DICOM", S.NOTE,
                      "The TCP connection opened and closed without a single byte of data: a "
                      "health check or port scan, or a client that gave up before sending its "
                      "A-ASSOCIATE-RQ."),
}


ATTEMPT_CODES = {ATTEMPT_REFUSED: "tcp.refused", ATTEMPT_UNANSWERED: "tcp.unanswered",
                 ATTEMPT_NO_DATA: "tcp.no_data"}


def _attempts(ctx):
    from .retrieve import explained_attempts
    explained = explained_attempts(ctx)
    groups = {}
    for at in ctx.decoder.attempts:
        groups.setdefault((at.server, at.outcome), []).append(at)
    out = []
    for (server, outcome), ats in groups.items():
        phrase, sev, meaning = ATTEMPT_MEANING.get(outcome, (ATTEMPT_TEXT.get(outcome, "?"), S.NOTE, ""))
        clients = sorted({at.client.rsplit(":", 1)[0] for at in ats})
        expl = (f"{len(ats)} attempt(s) from {', '.join(clients)} to {server}: {meaning}")
        linked = [explained[id(at)] for at in ats if id(at) in explained]
        if linked:
            expl += " " + linked[0]
            sev = min(sev, S.NOTE)  # the C-MOVE finding carries the error
        out.append(ctx.finding(NAME, ATTEMPT_CODES.get(outcome, "tcp.attempt"), sev, f"{phrase}: {server} ({len(ats)} time(s))", expl,
                               frames=[at.frame for at in ats[:10]], time=ats[0].time,
                               server=server, clients=clients, attempts=len(ats),
                               outcome=ATTEMPT_TEXT.get(outcome)))
    return out


# ------------------------------------------------------------------ AE titles
def _ae_variants(ctx):
    seen = {}  # folded -> {variant: [(role, association)]}

    def add(raw, role, a):
        if raw is None:
            return
        text = raw.decode("latin-1") if isinstance(raw, (bytes, bytearray)) else raw
        variant = text.rstrip(" ")  # trailing spaces are the field's padding
        folded = variant.strip(" \x00").upper()
        if folded:
            seen.setdefault(folded, {}).setdefault(variant, []).append((role, a))

    for a in ctx.associations:
        if a.rq is not None:
            add(a.rq.called_ae_raw, "called", a)
            add(a.rq.calling_ae_raw, "calling", a)
        for op in a.operations:
            if op.command == "C-MOVE" and op.request is not None and 0x0600 in op.request.raw:
                add(bytes(op.request.raw[0x0600]), "move destination", a)
    out = []
    for folded, variants in seen.items():
        if len(variants) < 2:
            continue
        shown = []
        assocs = []
        for v, uses in variants.items():
            roles = sorted({r for r, _ in uses})
            ids = sorted({x.id for _, x in uses})
            assocs.extend(x for _, x in uses)
            shown.append(f"{quoted(v)} as {' and '.join(roles)} AE in association(s) "
                         f"{', '.join(map(str, ids[:8]))}")
        failed = any(x.rj is not None for x in assocs)
        expl = ("The same AE title is written differently across associations: "
                + "; ".join(shown) + ". AE titles are case-sensitive, and leading spaces or NUL "
                "padding are significant to many systems: a peer configured with one spelling "
                "will not recognise the other.")
        out.append(ctx.finding(NAME, "ae.variants", S.WARNING if failed else S.NOTE,
                               f"AE title {folded} written {len(variants)} ways (case or padding)",
                               expl, assoc=sorted(set(assocs), key=lambda x: x.id),
                               variants=list(variants)))
    return out
