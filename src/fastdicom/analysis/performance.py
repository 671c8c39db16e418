"""Performance: where the time goes, per operation and per association.

An operation's latency splits into (all from the capture's timestamps)::

    send        first to last byte of the request (command and data set)  -- the SCU and the network
    processing  last request byte to the first response byte              -- the SCP
    response    first to last byte of the responses (pending ones too)     -- the SCP and the network

and between two operations of one association the *think time* is the gap
from one final response to the next request: the SCU.  Add the TCP view
(zero windows: a receiver not reading; retransmissions: loss; the handshake
round trip) and the slow side can often be named.
"""

from __future__ import annotations

import statistics

from ..expert import Severity as S
from .context import fmt_bytes, fmt_secs

NAME = "performance"
MIN_SHARE = 0.6  # a component this share of the busy time names the slow side
MIN_SECONDS = 0.5  # associations shorter than this are not worth a verdict


def _s(ns):
    return None if ns is None else ns / 1e9


def timing(op, wire=None) -> dict:
    """The latency split of one operation, seconds (None where unknown).
    ``wire``: first bytes of the request's and first response's PDUs, when known."""
    rq, rq_end = op.request_time, op.request_end_time
    r0, r1 = op.first_response_start, op.response_time
    if wire:
        if wire[0] is not None and rq is not None:
            rq = min(rq, wire[0])
        if wire[1] is not None and r0 is not None:
            r0 = min(r0, wire[1])
            if rq_end is not None:
                r0 = max(r0, rq_end)
    send = _s(rq_end - rq) if rq is not None and rq_end is not None else None
    proc = _s(r0 - rq_end) if r0 is not None and rq_end is not None else None
    resp = _s(r1 - r0) if r1 is not None and r0 is not None else None
    lat = _s(r1 - rq) if r1 is not None and rq is not None else None
    return {"send": send, "processing": proc, "response": resp, "latency": lat}


def association_timings(a, wire=None) -> dict:
    """Per operation split plus think time; totals for the association."""
    ops = []
    prev_end = None
    totals = {"send": 0.0, "processing": 0.0, "response": 0.0, "think": 0.0}
    own = sorted((op for op in a.operations if op.direction == 0 and op.request_time is not None),
                 key=lambda o: o.request_time)
    think = {}
    for op in own:
        if prev_end is not None and op.request_time > prev_end:
            think[op.index] = (op.request_time - prev_end) / 1e9
        elif prev_end is None and a.ac_time is not None and op.request_time > a.ac_time:
            think[op.index] = (op.request_time - a.ac_time) / 1e9
        if op.response_time is not None:
            prev_end = max(prev_end or 0, op.response_time)
    wire = wire or {}
    for op in a.operations:
        t = timing(op, wire.get(op.index))
        t["think"] = think.get(op.index)
        ops.append((op, t))
        if op.direction == 0:
            for k in ("send", "processing", "response", "think"):
                if t.get(k) is not None and t[k] > 0:
                    totals[k] += t[k]
    dur = _s(a.end_time - a.start) if a.end_time is not None else None
    nbytes = a.bytes[0] + a.bytes[1]
    return {"operations": ops, "totals": totals, "duration": dur, "bytes": nbytes,
            "throughput": (nbytes / dur) if dur else None}


def all_timings(ctx) -> dict:
    return ctx.cached("performance.timings",
                      lambda: {a.id: association_timings(a, ctx.collector.wire)
                               for a in ctx.associations})


def run(ctx) -> list:
    out = []
    timings = all_timings(ctx)
    for a in ctx.associations:
        at = timings[a.id]
        f = _slow_side(ctx, a, at)
        if f:
            out.append(f)
        out.extend(_tcp(ctx, a, at))
    out.extend(_outliers(ctx, timings))
    out.extend(_stalls(ctx))
    f = _overall(ctx, timings)
    if f:
        out.append(f)
    return out


def _median(xs):
    return statistics.median(xs) if xs else None


def _slow_side(ctx, a, at):
    tot = at["totals"]
    busy = sum(tot.values())
    n = sum(1 for op, t in at["operations"] if t["latency"] is not None and op.direction == 0)
    if not n or not busy or (at["duration"] or 0) < MIN_SECONDS:
        return None
    share = {k: v / busy for k, v in tot.items()}
    top = max(share, key=share.get)
    scu, scp = a.calling_ae or "the SCU", a.called_ae or "the SCP"
    lines = (f"Over {n} operation(s) in {fmt_secs(at['duration'])}: SCU sending "
             f"{share['send']:.0%}, SCP processing {share['processing']:.0%}, responses "
             f"{share['response']:.0%}, SCU think time between operations {share['think']:.0%}.")
    proc = _median([t["processing"] for op, t in at["operations"]
                    if t["processing"] is not None and op.direction == 0])
    stats = a.flow.tcp
    zw_server = stats[7] if stats else 0
    if share[top] < MIN_SHARE:
        verdict, side, sev = "no single side dominates", None, S.CHAT
    elif top == "processing":
        verdict, side, sev = (f"{scp} (the SCP) is the slow side: it takes a median "
                              f"{fmt_secs(proc)} between the last byte of a request and its "
                              "response (storage, database or forwarding work)"), "scp", S.NOTE
    elif top == "think":
        verdict, side, sev = (f"{scu} (the SCU) is the slow side: the association is idle "
                              "between operations, waiting for the SCU to send the next request "
                              "(reading files, compressing, or a slow queue)"), "scu", S.NOTE
    elif top == "send":
        if zw_server:
            verdict, side = (f"{scp} is the slow side: sending takes most of the time and {scp} "
                             f"advertised a zero TCP window {zw_server} time(s), so it does not "
                             "read the data fast enough"), "scp"
        else:
            verdict, side = ("sending the requests takes most of the time: the network path or "
                             f"{scu} sending slowly"), "network"
        sev = S.NOTE
    else:
        verdict, side, sev = "receiving the responses takes most of the time", "scp", S.NOTE
    return ctx.finding(NAME, "perf.slow_side", sev,
                       f"association {a.id} ({scu} → {scp}): {verdict.split(':')[0]}",
                       f"{lines} {verdict[0].upper() + verdict[1:]}. Throughput "
                       f"{fmt_bytes(at['throughput'] or 0)}/s.", assoc=a, time=a.start,
                       shares={k: round(v, 4) for k, v in share.items()},
                       totals={k: round(v, 6) for k, v in tot.items()}, side=side,
                       throughput=at["throughput"], operations=n)


def _tcp(ctx, a, at):
    out = []
    fl = a.flow
    s = fl.tcp
    scu, scp = a.calling_ae or fl.client, a.called_ae or fl.server
    if s:
        zw_c, zw_s = s[6], s[7]
        for n, who, role in ((zw_s, scp, "SCP"), (zw_c, scu, "SCU")):
            if n:
                out.append(ctx.finding(
                    NAME, "tcp.zero_window", S.WARNING,
                    f"{who} ({role}) advertised a zero TCP window {n} time(s) (association {a.id})",
                    f"{who}'s receive buffer was full {n} time(s): its application did not read "
                    "the incoming data fast enough (busy disk, CPU, or a slow database), so the "
                    "sender had to stop and wait. The slowness is on this side, not the network.",
                    assoc=a, time=a.start, count=n, side=role.lower()))
        rc, rs = s[2], s[3]
        if rc or rs:
            sent = max(1, s[0] + s[1])
            out.append(ctx.finding(
                NAME, "tcp.retransmissions", S.WARNING if (rc + rs) > 10 else S.NOTE,
                f"{rc + rs} TCP retransmission(s) on association {a.id}",
                f"{rc} from {fl.client} ({scu}) and {rs} from {fl.server} ({scp}) for "
                f"{fmt_bytes(sent)} carried. Retransmissions mean lost packets (or a tap that "
                "dropped them): each one can stall the transfer for a retransmission timeout.",
                assoc=a, time=a.start, client=rc, server=rs))
    rtt = fl.handshake_rtt
    if rtt is not None and rtt > 0.05:
        n_ops = len(a.operations)
        out.append(ctx.finding(
            NAME, "tcp.rtt", S.NOTE,
            f"round trip of {fmt_secs(rtt)} between {fl.client} and {fl.server}",
            f"The TCP handshake took {fmt_secs(rtt)} (a WAN or VPN path). Every operation costs "
            f"at least one round trip; {n_ops} operation(s) one after the other cost at least "
            f"{fmt_secs(rtt * n_ops)} in round trips alone. Asynchronous operations or several "
            "associations in parallel help on such links.", assoc=a, time=a.start, rtt=rtt))
    return out


def _outliers(ctx, timings):
    by_cmd = {}
    for a in ctx.associations:
        for op, t in timings[a.id]["operations"]:
            if t["latency"] is not None:
                by_cmd.setdefault(op.command, []).append((t["latency"], op, t))
    out = []
    for cmd, rows in by_cmd.items():
        if len(rows) < 10:
            continue
        med = _median([r[0] for r in rows])
        slow = [r for r in rows if r[0] > max(10 * med, 0.1)]
        if not slow:
            continue
        slow.sort(key=lambda r: -r[0])
        worst = slow[0]
        t = worst[2]
        parts = ", ".join(f"{k} {fmt_secs(t[k])}" for k in ("send", "processing", "response")
                          if t[k] is not None)
        out.append(ctx.finding(
            NAME, "perf.outliers", S.NOTE,
            f"{len(slow)} {cmd} operation(s) over 10× the median of {fmt_secs(med)}",
            f"The slowest, message ID {worst[1].message_id} on association "
            f"{worst[1].association.id}, took {fmt_secs(worst[0])} ({parts}).",
            assoc=sorted({r[1].association for r in slow[:20]}, key=lambda x: x.id),
            frames=[worst[1].request_frame, worst[1].response_frame], time=worst[1].request_time,
            command=cmd, median=med, count=len(slow),
            slowest=[{"association": r[1].association.id, "message_id": r[1].message_id,
                      "latency": r[0]} for r in slow[:10]]))
    return out


def slowest(ctx, n=10) -> list:
    rows = []
    for a in ctx.associations:
        for op, t in all_timings(ctx)[a.id]["operations"]:
            if t["latency"] is not None:
                rows.append((t["latency"], op, t))
    rows.sort(key=lambda r: -r[0])
    return rows[:n]


def _overall(ctx, timings):
    d = ctx.decoder
    if d.first_time is None or d.last_time is None or not ctx.associations:
        return None
    dur = (d.last_time - d.first_time) / 1e9
    nbytes = sum(a.bytes[0] + a.bytes[1] for a in ctx.associations)
    n_ops = sum(len(a.operations) for a in ctx.associations)
    top = slowest(ctx, 5)
    expl = (f"{n_ops} operation(s) on {len(ctx.associations)} association(s) moved "
            f"{fmt_bytes(nbytes)} in {fmt_secs(dur)}"
            + (f" ({fmt_bytes(nbytes / dur)}/s overall)." if dur > 0 else "."))
    if top:
        expl += " Slowest: " + "; ".join(
            f"{op.command} ID {op.message_id} on association {op.association.id} "
            f"{fmt_secs(lat)} (SCP processing {fmt_secs(t['processing'])})" for lat, op, t in top)
        expl += "."
    return ctx.finding(NAME, "perf.summary", S.CHAT, "throughput and slowest operations", expl,
                       time=d.first_time, seconds=dur, bytes=nbytes, operations=n_ops,
                       throughput=(nbytes / dur) if dur > 0 else None,
                       slowest=[{"association": op.association.id, "message_id": op.message_id,
                                 "command": op.command, "latency": lat, **t}
                                for lat, op, t in top])


STALL_SECONDS = 0.02


def _stalls(ctx):
    """Small PDUs that took tens of milliseconds to cross: the sender wrote the PDU in
    pieces and waited for the receiver's (delayed) ACK in between (Nagle's algorithm
    meeting delayed ACKs): a fixed ~40 ms (Linux) or ~200 ms (Windows) per message."""
    out = []
    for a in ctx.associations:
        for direction in (0, 1):
            slow = [p for p in ctx.collector.pdus.get(a.id, ())
                    if p.direction == direction and p.type == 4 and p.length < 16384
                    and (p.time_last - p.time) / 1e9 > STALL_SECONDS]
            if len(slow) < 2:
                continue
            total = sum(p.time_last - p.time for p in slow) / 1e9
            sender = ctx.side(a, direction)
            typical = statistics.median((p.time_last - p.time) / 1e9 for p in slow)
            out.append(ctx.finding(
                NAME, "tcp.nagle", S.NOTE,
                f"{len(slow)} small PDU(s) from {sender} stalled {fmt_secs(typical)} each "
                f"(association {a.id})",
                f"{len(slow)} P-DATA PDUs of under 16 KB from {sender} took a median "
                f"{fmt_secs(typical)} from their first to their last byte ({fmt_secs(total)} in "
                "all). The sender wrote each PDU in pieces (header, then body) and the second "
                "piece waited for the receiver's delayed ACK: Nagle's algorithm meeting delayed "
                "ACKs. Setting TCP_NODELAY on the sender's socket (or writing each PDU in one "
                "call) removes the wait.", assoc=a,
                frames=[p.frame for p in slow[:10]], time=slow[0].time, count=len(slow),
                median=typical, total=total, side="requestor" if direction == 0 else "acceptor"))
    return out
