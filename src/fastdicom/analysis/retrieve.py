"""C-MOVE and C-GET (PS3.4 C.4.2, C.4.3): where the objects went.

A C-MOVE makes the SCP open a *sub-association* to the move destination and
send C-STORE sub-operations on it; ``links(ctx)`` ties each C-MOVE to those
associations (called AE title = the destination, opened while the C-MOVE was
outstanding, preferably from the SCP's address; the C-STOREs' Move
Originator AE Title and Message ID (0000,1030/1031) settle any doubt), and to
TCP attempts from the SCP's address that failed in that time.  A C-GET's
sub-operations run on the same association, in the SCP role that role
selection (PS3.7 D.3.3.4) must have given the SCP for each storage SOP class.
"""

from __future__ import annotations

from ..events import ATTEMPT_REFUSED, ATTEMPT_UNANSWERED
from ..expert import Severity as S
from ..uids import uid_name
from .context import fmt_secs, quoted

NAME = "retrieve"
SLACK_NS = 2_000_000_000  # a sub-association may start just after the last response is seen


def _fold(ae) -> str:
    return (ae or "").strip(" \x00").upper()


def _window(ctx, op):
    start = op.request_time or op.association.start
    end = op.response_time
    if end is None:
        end = op.association.end_time or ctx.decoder.last_time or start
    return start, end + SLACK_NS


def _stores(a, direction=None):
    return [op for op in a.operations if op.command == "C-STORE"
            and (direction is None or op.direction == direction)]


def _originator(op):
    """(Move Originator AE, Message ID) of a C-STORE sub-operation, if given."""
    r = op.request
    if r is None:
        return None, None
    return r.get("move_originator_ae"), r.get("move_originator_message_id")


def links(ctx) -> list:
    """One dict per C-MOVE: the operation, its sub-associations and failed attempts."""
    return ctx.cached("retrieve.links", lambda: _build_links(ctx))


def _build_links(ctx):
    moves = sorted(ctx.operations("C-MOVE"), key=lambda o: o.request_time or 0)
    taken = set()
    used_attempts = set()
    out = []
    for op in moves:
        m = op.association
        dest = _fold(op.move_destination)
        t0, t1 = _window(ctx, op)
        scored = []
        for s in ctx.associations:
            if s is m or s.id in taken or s.rq is None or not (t0 <= s.start <= t1):
                continue
            origin = [_originator(x) for x in _stores(s)]
            by_origin = any(_fold(ae) == _fold(m.calling_ae) and mid == op.message_id
                            for ae, mid in origin if ae or mid is not None)
            if _fold(s.called_ae) != dest and not by_origin:
                continue
            score = (2 if by_origin else 0) + (1 if s.flow.client_ip == m.flow.server_ip else 0)
            scored.append((-score, s.start, s))
        scored.sort(key=lambda x: (x[0], x[1]))
        subs = [s for _, _, s in scored]
        for s in subs:
            taken.add(s.id)
        attempts = [at for at in ctx.decoder.attempts
                    if id(at) not in used_attempts and t0 <= at.time <= t1
                    and at.outcome in (ATTEMPT_REFUSED, ATTEMPT_UNANSWERED)
                    and at.client.rsplit(":", 1)[0].strip("[]") == m.flow.server_ip]
        for at in attempts:
            used_attempts.add(id(at))
        stores = [x for s in subs for x in _stores(s)]
        out.append({"op": op, "destination": op.move_destination, "subs": subs,
                    "attempts": attempts, "stores": stores})
    return out


def explained_attempts(ctx) -> dict:
    out = {}
    for link in links(ctx):
        op = link["op"]
        for at in link["attempts"]:
            out[id(at)] = (f"It is {op.association.called_ae}'s attempt to reach the move "
                           f"destination {link['destination']} for the C-MOVE (message ID "
                           f"{op.message_id}) on association {op.association.id}.")
    return out


def run(ctx) -> list:
    out = []
    for link in links(ctx):
        out.extend(_move(ctx, link))
    for a in ctx.associations:
        for op in a.operations:
            if op.command == "C-GET":
                out.extend(_get(ctx, op))
    return out


def _counts(stores) -> dict:
    c = {"success": 0, "warning": 0, "failure": 0, "unanswered": 0}
    for s in stores:
        cls = s.status_class
        if cls is None:
            c["unanswered"] += 1
        elif cls in c:
            c[cls] += 1
        else:
            c["failure"] += 1
    return c


def _what(op) -> str:
    return f"{op.command} (message ID {op.message_id}, association {op.association.id})"


def _final_counters(op) -> dict:
    return {k: op.counters.get(k) for k in ("completed", "failed", "warning", "remaining")
            if op.counters.get(k) is not None}


MOVE_FAILURES = {
    0xA701: "The SCP could not even count the matches (out of resources).",
    0xA702: "The SCP could not perform the sub-operations (out of resources); with a move "
            "destination that cannot be reached many archives report this status.",
    0xA900: "The identifier does not fit the information model (a key not defined at that "
            "level, or a wrong Query/Retrieve Level).",
}


def _move(ctx, link):
    op = link["op"]
    m = op.association
    scp = m.called_ae or m.flow.server
    dest = link["destination"]
    out = []
    subs, attempts, stores = link["subs"], link["attempts"], link["stores"]
    frames = [op.request_frame, op.response_frame]
    counters = _final_counters(op)
    seen = _counts(stores)
    for s in subs:
        delay = (s.start - op.request_time) / 1e9 if op.request_time else None
        out.append(ctx.finding(
            NAME, "move.linked", S.CHAT,
            f"C-MOVE to {dest} → sub-association {s.id}: {s.flow.client} → {s.flow.server}",
            f"{_what(op)} from {m.calling_ae} at {m.flow.client_ip} asked {scp} to send to {dest}. "
            f"{s.calling_ae} opened association {s.id} from {s.flow.client} to {s.called_ae} at "
            f"{s.flow.server} {fmt_secs(delay)} after the request; it was {s.result} and carried "
            f"{len(_stores(s))} C-STORE(s) ({', '.join(f'{n} {k}' for k, n in _counts(_stores(s)).items() if n) or 'none'}).",
            assoc=[m, s], frames=frames + [s.start_frame], time=s.start,
            move_message_id=op.message_id, destination=dest, sub_association=s.id,
            destination_address=s.flow.server, from_address=s.flow.client))
        if s.rj is not None:
            from .associations import reject_cause
            phrase, meaning = reject_cause(s)
            out.append(ctx.finding(
                NAME, "move.callback_rejected", S.ERROR,
                f"move destination {dest} rejected {scp}'s association: {phrase}",
                f"For {_what(op)}, {s.calling_ae} at {s.flow.client_ip} called {dest} at "
                f"{s.flow.server}, which rejected the association ({s.rj.result_text}, "
                f"{s.rj.source_text}: {s.rj.reason_text}). {meaning}", assoc=[m, s],
                frames=frames + [s.start_frame], time=s.rj_time, destination=dest,
                cause=phrase, sub_association=s.id))
    if subs:
        dest_ip = subs[0].flow.server_ip
        if dest_ip != m.flow.client_ip:
            same_ae = _fold(dest) == _fold(m.calling_ae)
            expl = (f"{scp} sent the objects for {_what(op)} to {dest} at "
                    f"{subs[0].flow.server}, while the C-MOVE came from {m.calling_ae} at "
                    f"{m.flow.client_ip}.")
            if same_ae:
                expl += (f" The requester moved to its own AE title, so {scp}'s table of AE "
                         f"titles maps {dest} to the wrong address: the objects go to another "
                         "machine than the one that asked.")
            else:
                expl += (" That is expected when moving to a third system; if the requester "
                         f"expected the objects itself, {scp}'s AE table maps {dest} to another "
                         "machine.")
            out.append(ctx.finding(
                NAME, "move.destination_address", S.WARNING if same_ae else S.NOTE,
                f"move destination {dest} is at {subs[0].flow.server}, not at the requester "
                f"{m.flow.client_ip}", expl, assoc=[m, subs[0]], frames=frames,
                time=subs[0].start, destination=dest, destination_address=subs[0].flow.server,
                requester_address=m.flow.client_ip, same_ae=same_ae))
    for at in attempts:
        refused = at.outcome == ATTEMPT_REFUSED
        out.append(ctx.finding(
            NAME, "move.connect_failed", S.ERROR,
            f"{scp} could not connect to the move destination {dest}: "
            f"{'connection refused' if refused else 'no answer'} at {at.server}",
            f"For {_what(op)}, {scp} tried to open the sub-association to {dest} at {at.server} "
            + ("and got a TCP reset (RST): nothing listens on that port. Check that the "
               f"destination is running and that {scp}'s AE table has the right port for {dest}."
               if refused else
               "and got no answer to its SYN: the address is wrong or unreachable, or a "
               "firewall drops the connection.")
            + (f" The C-MOVE then ended with 0x{op.status:04x} ({op.status_text})."
               if op.status is not None else ""),
            assoc=m, frames=frames + [at.frame], time=at.time, destination=dest,
            destination_address=at.server, outcome="refused" if refused else "unanswered",
            move_status=op.status))
    st = op.status
    if st == 0xA801:
        known = sorted({x.called_ae for x in ctx.associations if x.called_ae
                        and _fold(x.called_ae) == _fold(dest) and x.called_ae != dest})
        expl = (f"{scp} refused {_what(op)} with 0xA801 (Refused: Move Destination unknown): "
                f"it has no address for {quoted(dest)}. Add {dest} (AE title, IP address, port) "
                f"to {scp}'s list of known destinations, or correct the destination AE title in "
                f"{m.calling_ae}.")
        if known:
            expl += f" Note that {', '.join(quoted(k) for k in known)} is spelled differently."
        title = f"move destination {quoted(dest)} unknown to {scp}"
        if attempts:
            title = f"move destination {quoted(dest)} unreachable (reported as unknown by {scp})"
            expl = (f"{scp} answered {_what(op)} with 0xA801 (Refused: Move Destination "
                    f"unknown), but the capture shows it did know an address for {quoted(dest)}: "
                    f"it tried {attempts[0].server} and could not connect. Some SCPs (pynetdicom "
                    "among them) report an unreachable destination this way: start the "
                    f"destination or correct its address and port in {scp}'s AE table.")
        out.append(ctx.finding(NAME, "move.destination_unknown", S.ERROR, title, expl,
                               assoc=m, frames=frames, time=op.response_time, destination=dest,
                               status=st))
    elif op.status_class == "failure" and st is not None:
        out.append(ctx.finding(
            NAME, "move.failed", S.ERROR, f"C-MOVE to {dest} failed: 0x{st:04x} ({op.status_text})",
            f"{_what(op)} ended with 0x{st:04x} ({op.status_text}). "
            + MOVE_FAILURES.get(st, "")
            + (f" Error comment: {op.error_comment}." if op.error_comment else ""),
            assoc=m, frames=frames, time=op.response_time, destination=dest, status=st,
            sub_operations=counters))
    expected = sum(counters.get(k) or 0 for k in ("completed", "failed", "warning"))
    if not subs and not attempts and st != 0xA801 and (expected or op.status is None):
        out.append(ctx.finding(
            NAME, "move.no_callback", S.WARNING,
            f"no sub-association to {dest} in the capture for {_what(op)}",
            f"{scp} reported {expected} sub-operation(s) for {_what(op)} "
            f"({', '.join(f'{k} {v}' for k, v in counters.items())}), but the capture holds no "
            f"association to {dest} and no attempt to connect while the C-MOVE was "
            "outstanding. The tap may not see the path from the SCP to the destination, or "
            "the SCP used an existing association.", assoc=m, frames=frames,
            time=op.request_time, destination=dest, sub_operations=counters))
    if subs and op.status is not None:
        mismatch = []
        if counters.get("completed") is not None and counters["completed"] != seen["success"] + seen["warning"]:
            mismatch.append(f"{counters['completed']} completed reported, "
                            f"{seen['success'] + seen['warning']} C-STORE succeeded in the capture")
        if counters.get("failed") and counters["failed"] != seen["failure"] + seen["unanswered"]:
            mismatch.append(f"{counters['failed']} failed reported, "
                            f"{seen['failure'] + seen['unanswered']} C-STORE failed or unanswered")
        if mismatch:
            out.append(ctx.finding(
                NAME, "move.count_mismatch", S.WARNING,
                f"C-MOVE sub-operation counts differ from the C-STOREs seen ({_what(op)})",
                "; ".join(mismatch) + ". Either the capture misses part of the traffic, or the "
                "SCP counts differently (e.g. objects it skipped before sending).", assoc=[m] + subs,
                frames=frames, time=op.response_time, reported=counters, seen=seen))
        fails = [x for x in stores if x.status_class == "failure"]
        if fails:
            statuses = sorted({f"0x{x.status:04x} ({x.status_text})" for x in fails})
            out.append(ctx.finding(
                NAME, "move.store_failed", S.ERROR,
                f"{len(fails)} C-STORE sub-operation(s) to {dest} failed",
                f"{dest} refused {len(fails)} of the {len(stores)} objects {scp} sent for "
                f"{_what(op)}: {', '.join(statuses)}. The destination's log says why.",
                assoc=[m] + subs, frames=[x.response_frame for x in fails[:10]],
                time=fails[0].response_time, statuses=statuses))
    return out


def _get(ctx, op):
    a = op.association
    out = []
    t0 = op.request_time or a.start
    t1 = op.response_time if op.response_time is not None else (a.end_time or t0)
    stores = [s for s in _stores(a, direction=1 - op.direction)
              if s.request_time is not None and t0 <= s.request_time <= t1]
    seen = _counts(stores)
    counters = _final_counters(op)
    frames = [op.request_frame, op.response_frame]
    roles = {r["sop_class_uid"]: r for r in a.roles()}
    classes = sorted({s.affected_sop_class_uid for s in stores if s.affected_sop_class_uid})
    out.append(ctx.finding(
        NAME, "get.linked", S.CHAT,
        f"C-GET → {len(stores)} C-STORE sub-operation(s) on association {a.id}",
        f"{_what(op)}: {a.called_ae} sent {len(stores)} object(s) back on the same association "
        f"({', '.join(f'{n} {k}' for k, n in seen.items() if n) or 'none'}); final status "
        + (f"0x{op.status:04x} ({op.status_text})" if op.status is not None else "not seen")
        + (f", reported {', '.join(f'{k} {v}' for k, v in counters.items())}." if counters else "."),
        assoc=a, frames=frames, time=op.request_time, sub_operations=len(stores), seen=seen,
        reported=counters, sop_classes=classes))
    for uid in classes:
        r = roles.get(uid)
        if r is None or not r.get("accepted_scp"):
            out.append(ctx.finding(
                NAME, "get.role", S.WARNING,
                f"C-STORE sub-operations for {uid_name(uid) or uid} without the SCP role "
                f"(association {a.id})",
                f"{a.called_ae} sent {uid_name(uid) or uid} objects for {_what(op)}, but role "
                "selection did not give the C-GET SCU the SCP role for that SOP class "
                + ("(it was not proposed)" if r is None else
                   f"(proposed SCP={r.get('proposed_scp')}, accepted SCP={r.get('accepted_scp')})")
                + ". PS3.4 C.4.3 requires it; a strict SCU or SCP refuses these sub-operations.",
                assoc=a, frames=frames, time=op.request_time, sop_class_uid=uid))
    failed = counters.get("failed") or 0
    if failed and not stores:
        storage_roles = [uid_name(u) or u for u, r in roles.items() if r.get("accepted_scp")]
        expl = (f"{a.called_ae} reported {failed} failed sub-operation(s) for {_what(op)} and sent "
                "no object at all. ")
        if not storage_roles:
            expl += ("No SCP/SCU role selection gave the C-GET SCU the SCP role for any storage "
                     "SOP class: the SCU must propose, for each SOP class it wants to receive, a "
                     "presentation context and the SCP role (PS3.7 D.3.3.4).")
        else:
            expl += (f"SCP role accepted for: {', '.join(storage_roles[:6])}; the objects are "
                     "probably of another SOP class or transfer syntax, with no context for them.")
        out.append(ctx.finding(NAME, "get.no_subops", S.ERROR,
                               f"C-GET sent nothing: {failed} sub-operation(s) failed "
                               f"(association {a.id})", expl, assoc=a, frames=frames,
                               time=op.response_time, reported=counters))
    elif op.status is not None and counters:
        mismatch = []
        if counters.get("completed") is not None and counters["completed"] != seen["success"] + seen["warning"]:
            mismatch.append(f"{counters['completed']} completed reported, "
                            f"{seen['success'] + seen['warning']} C-STORE succeeded")
        if failed and failed != seen["failure"] + seen["unanswered"]:
            mismatch.append(f"{failed} failed reported, {seen['failure']} C-STORE failed")
        if mismatch:
            out.append(ctx.finding(
                NAME, "get.count_mismatch", S.WARNING,
                f"C-GET sub-operation counts differ from the C-STOREs seen ({_what(op)})",
                "; ".join(mismatch) + ".", assoc=a, frames=frames, time=op.response_time,
                reported=counters, seen=seen))
    if ctx.cancel(op) is not None:
        ct, cf = ctx.cancel(op)
        out.append(ctx.finding(
            NAME, "get.cancelled", S.NOTE, f"C-GET cancelled by the SCU ({_what(op)})",
            f"The SCU sent a C-CANCEL-RQ after {sum(1 for s in stores if s.request_time < ct)} "
            "sub-operation(s); final status "
            + (f"0x{op.status:04x} ({op.status_text})." if op.status is not None else "not seen."),
            assoc=a, frames=[cf, op.response_frame], time=ct))
    if op.status_class == "failure" and not (failed and not stores):
        st = op.status
        out.append(ctx.finding(
            NAME, "get.failed", S.ERROR, f"C-GET failed: 0x{st:04x} ({op.status_text})",
            f"{_what(op)} ended with 0x{st:04x} ({op.status_text}). " + MOVE_FAILURES.get(st, "")
            + (f" Error comment: {op.error_comment}." if op.error_comment else ""),
            assoc=a, frames=frames, time=op.response_time, status=st))
    return out
