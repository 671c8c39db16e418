"""From core events to associations, DIMSE messages and operations.

The decoder is the thin Python layer between the core (bytes to PDUs) and
the sinks (summary, export, pdus, show, analyses).  It is sans-IO too: it
takes lists of core events (``feed``) and calls the sinks.  A sink is any
object with some of these methods; the decoder only calls what exists::

    on_association_start(assoc)         on_association_end(assoc)
    on_pdu(record)                      (only when the decoder keeps PDU records)
    on_command(message)                 a command set is complete
    on_transfer_start(transfer)         a data set begins
    on_data(transfer, offset, data)     data set bytes, in order, as they arrive
    on_transfer_end(transfer)           a data set ended (complete or not)
    on_operation(op)                    an operation got its final response, or never will
    on_expert(info)                     an expert info
    on_tcp_attempt(attempt)             a connection that never carried data
    on_end(decoder)                     all input consumed
"""

from __future__ import annotations

from . import events as E
from . import expert as X
from . import pdu as P
from . import limits as _limits
from . import status as ST
from ._record import field, record, replace
from .association import (
    ABORTED, ACCEPTOR, AWAITING_AC, ENDED, IDLE, OPEN, RELEASED, REJECTED, REQUESTOR, Association,
)
from .dimse import DataSetTransfer, MessageAssembler, Operation

PF_FINAL, PF_TRUNCATED = E.PF_FINAL, E.PF_TRUNCATED

END_TEXT = {
    E.END_FIN: "the connection was closed",
    E.END_RST: "the connection was reset",
    E.END_IDLE: "the connection went idle",
    E.END_EOF: "the capture ended",
    E.END_EVICTED: "the connection was evicted from the connection table",
    E.END_REUSED: "a new connection reused the same ports",
}
ATTEMPT_TEXT = {
    E.ATTEMPT_UNANSWERED: "SYN never answered",
    E.ATTEMPT_REFUSED: "connection refused (RST)",
    E.ATTEMPT_NO_DATA: "connected, closed without data",
}


@record
class Flow:
    """A TCP connection recognised as DICOM."""

    id: int
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    time: int
    frame: int
    syn_time: int
    synack_time: int
    ack_time: int
    association: Association | None = None
    associations: list = field(default_factory=list)
    end_reason: int | None = None
    end_time: int | None = None
    tcp: tuple | None = None  # EV_FLOW_END stats
    done: bool = False  # the sinks' on_connection_end has seen it

    @property
    def client(self) -> str:
        return _endpoint(self.client_ip, self.client_port)

    @property
    def server(self) -> str:
        return _endpoint(self.server_ip, self.server_port)

    def src(self, direction: int) -> str:
        return self.client if direction == 0 else self.server

    def dst(self, direction: int) -> str:
        return self.server if direction == 0 else self.client

    @property
    def handshake_rtt(self) -> float | None:
        """SYN to ACK of the three-way handshake, seconds (the tap's view)."""
        if self.syn_time >= 0 and self.ack_time >= 0:
            return (self.ack_time - self.syn_time) / 1e9
        return None


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@record
class TcpAttempt:
    frame: int
    time: int
    client: str
    server: str
    server_ip: str
    server_port: int
    outcome: int
    capture: str | None = None

    @property
    def outcome_text(self) -> str:
        return ATTEMPT_TEXT.get(self.outcome, "?")


@record
class PdvInfo:
    context_id: int
    control: int
    length: int  # PDV item length (value + 2)
    data: bytearray | None = None  # the fragment, when the decoder keeps PDV data
    command: object = None  # Command completed by this PDV
    transfer: DataSetTransfer | None = None  # data set this fragment belongs to
    last_data: bool = False  # completed a data set

    @property
    def is_command(self) -> bool:
        return bool(self.control & 1)

    @property
    def is_last(self) -> bool:
        return bool(self.control & 2)


@record
class PduRecord:
    """One PDU with where and when it crossed the wire."""

    index: int
    flow: Flow
    association: Association | None
    direction: int
    type: int
    length: int
    frame_first: int
    frame_last: int
    time_first: int
    time_last: int
    truncated: bool = False
    body: bytes | None = None  # non-P-DATA PDUs
    decoded: object = None  # AAssociate / AAssociateRJ / AAbort
    pdvs: list = field(default_factory=list)

    @property
    def src(self) -> str:
        return self.flow.src(self.direction)

    @property
    def dst(self) -> str:
        return self.flow.dst(self.direction)

    @property
    def name(self) -> str:
        return X.pdu_name(self.type)


def _take_apart(fl: Flow) -> None:
    """Cut the references of a forgotten connection's objects back up to
    their owners (a command to its operation and association, a data set to
    its command, operation and association, an assembler to its association,
    an association to its flow), so that reference counting frees them as
    soon as the decoder lets go.  Left as cycles they would wait for the
    cyclic collector, whose every pass walks them again (30,000 small
    associations: most of the collector's 1.6 s).  Only for a decoder that
    keeps nothing ended: its sinks have copied what they need."""
    def command(c):
        if c is not None:
            c.association = c.operation = None

    def transfer(t):
        if t is not None:
            command(t.command)
            t.association = t.operation = None

    for a in fl.associations:
        a.flow = None
        for asm in a.assemblers or ():
            asm.association = None
            for s in asm.ctx.values():
                transfer(s.transfer)
                command(s.last_command)
        for op in a.operations:
            op.association = None
            command(op.request)
            command(op.final)
            transfer(op.request_dataset)
            for t in op.response_datasets:
                transfer(t)
    fl.association = None
    fl.associations = []


def association_order(a):
    """Associations are numbered in the order their first PDU completed; with
    the tie-breakers, this order is the same however connections were spread
    over workers (see ``summary.canonical``)."""
    return (getattr(a, "capture_index", 0), getattr(a, "seen_frame", 0), a.start_frame,
            a.flow.client, a.flow.server, a.start)


class Decoder:
    """Consumes core events; keeps associations, operations, objects, expert info."""

    MAX_EXPERT = 200_000
    MAX_ATTEMPTS = 10_000

    def __init__(self, sinks=(), *, head_limit: int = 65536, hash_data: bool = True,
                 keep_pdus: bool = False, keep_pdv_data: bool = False, keep_objects: bool = True,
                 keep_heads: bool = True, keep_ended: bool = True):
        self.sinks = list(sinks)
        self.head_limit = head_limit
        self.hash_data = hash_data
        self.keep_pdus = keep_pdus
        self._fast_pdata = not keep_pdus  # _ev_pdata's short path (per-PDU records need the long one)
        self.keep_pdv_data = keep_pdv_data
        self.keep_objects = keep_objects
        # with keep_pdus, data set heads stay for whoever holds the PDU records;
        # a command that only streams them (pdus, show) lets them go
        self.keep_heads = keep_heads
        # keep_ended false: a connection is forgotten once it has ended and the
        # sinks' on_connection_end has seen it (its flow, and its associations,
        # whose places in ``associations`` become None: the list numbers them).
        # Memory then holds only connections in progress; association ids stay
        # those of creation (the sinks order what they keep: summary.canonical)
        self.keep_ended = keep_ended
        self.max_depth = _limits.max_depth
        self.max_inflate = _limits.max_inflate
        self.drop_capture_level = False  # set on workers > 0 of a partitioned run
        self.flows: dict[int, Flow] = {}
        self.capture_index = 0
        self.capture_name = None
        self.captures = []
        self.associations: list[Association] = []
        self.objects: list[DataSetTransfer] = []
        self.expert: list[X.ExpertInfo] = []
        self.expert_dropped = 0
        self.attempts: list[TcpAttempt] = []
        self.attempts_dropped = 0
        self.first_time = None
        self.last_time = None
        self.pdu_count = 0
        self.operation_count = 0
        self.transfer_count = 0
        self._open_pdata = {}  # (flow, direction) -> PduRecord or True
        self._cur_pdvs = None  # list of PdvInfo of the P-DATA being decoded
        self._cur_pdv = None
        self._release = (0, 0)  # of the P-DATA event being decoded
        self._associate_seen = {}  # (body, is request, truncated) -> AAssociate: see _decode_associate
        self._hooks = {}
        for name in ("on_association_start", "on_association_end", "on_pdu", "on_command",
                     "on_transfer_start", "on_data", "on_transfer_end", "on_operation",
                     "on_expert", "on_tcp_attempt", "on_connection_end", "on_end"):
            self._hooks[name] = [getattr(s, name) for s in self.sinks if hasattr(s, name)]
        self._want_data = bool(self._hooks["on_data"])
        self._dispatch = {
            E.EV_FLOW: self._ev_flow, E.EV_PDU: self._ev_pdu, E.EV_PDATA: self._ev_pdata,
            E.EV_GAP: self._ev_gap, E.EV_EXPERT: self._ev_expert,
            E.EV_FLOW_END: self._ev_flow_end, E.EV_TCP_ATTEMPT: self._ev_attempt,
            E.EV_PDATA_RUN: self._ev_pdata_run,
        }

    # ------------------------------------------------------------------ API
    def set_limits(self, max_depth=None, max_inflate=None) -> None:
        """Bounds of data set decoding (``--max-depth``, ``--max-inflate``), for
        this decoder's checks and every sink that decodes data sets."""
        _limits.set_limits(max_depth, max_inflate)
        self.max_depth = _limits.max_depth
        self.max_inflate = _limits.max_inflate

    def begin_capture(self, index: int, name: str) -> None:
        """Connections and frame numbers are per capture file."""
        self.capture_index = index
        self.capture_name = name
        self.flows = {}

    def end_capture(self, info) -> None:
        self.captures.append(info)
        self._end_flows()
        # no event of this capture comes after this: finish() need not end them again
        self.flows = {}

    def feed(self, events) -> None:
        d = self._dispatch
        for ev in events:
            d[ev[0]](ev)

    def finish(self) -> None:
        self._end_flows()
        if self.keep_ended:
            self._canonical_order()
        for h in self._hooks["on_end"]:
            h(self)

    def _end_flows(self):
        """The capture ended: end the connections still open."""
        for fl in list(self.flows.values()):
            a = fl.association
            if a is not None:
                self._end(a, END_TEXT[E.END_EOF], self.last_time, None)
            self._connection_done(fl)

    def _connection_done(self, fl: Flow):
        """Nothing more can happen on connection ``fl``: the sinks'
        on_connection_end sees it once; without keep_ended it is forgotten."""
        if fl.done:
            return
        fl.done = True
        for h in self._hooks["on_connection_end"]:
            h(fl)
        if not self.keep_ended:
            self.flows.pop(fl.id, None)
            self._open_pdata.pop((fl.id, 0), None)
            self._open_pdata.pop((fl.id, 1), None)
            for a in fl.associations:
                self.associations[a.id] = None
            _take_apart(fl)

    def _canonical_order(self):
        """Number associations and order objects and expert infos as the JSON
        summary does (``summary.canonical``): by capture and first frame, so the
        result does not depend on how connections were spread over workers."""
        caps = {info.name: k for k, info in enumerate(self.captures)}
        self.associations.sort(key=association_order)
        remap = {}
        for k, a in enumerate(self.associations):
            remap[a.id] = k
            a.id = k
        def obj_key(p):
            a = p[1].association
            return (getattr(a, "capture_index", 0), p[1].frame_last, -1 if a is None else a.id, p[0])
        self.objects = [t for _, t in sorted(enumerate(self.objects), key=obj_key)]
        exp = [e if e.association is None else replace(e, association=remap.get(e.association, e.association))
               for e in self.expert]
        self.expert = [e for _, e in sorted(enumerate(exp), key=lambda p: (
            caps.get(p[1].capture, len(caps)), p[1].frame is None, p[1].frame or 0,
            -1 if p[1].association is None else p[1].association, p[0]))]

    # -------------------------------------------------------------- helpers
    def _call(self, hook, *args):
        for h in self._hooks[hook]:
            h(*args)

    def report(self, expert_id: str, /, *, time=None, frame=None, association=None, **kw):
        self._add_expert(X.make(expert_id, time=time, frame=frame,
                                association=None if association is None else association.id, **kw))

    def _add_expert(self, info: X.ExpertInfo):
        if self.capture_name is not None:
            info = replace(info, capture=self.capture_name)
        if self.drop_capture_level and info.id in X.CAPTURE_LEVEL:
            return
        if len(self.expert) < self.MAX_EXPERT:
            self.expert.append(info)
        else:
            self.expert_dropped += 1
        for h in self._hooks["on_expert"]:
            h(info)

    def _problems(self, problems, assoc, time, frame):
        for expert_id, kw in problems:
            self.report(expert_id, time=time, frame=frame, association=assoc, **kw)

    def _tick(self, t):
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t

    def _association(self, fl: Flow, time: int, frame: int, new: bool = False,
                     seen: int = 0) -> Association:
        a = fl.association
        if a is None or new:
            a = Association(len(self.associations), fl, time, frame)
            a.seen_frame = seen  # the frame that completed its first PDU: creation order
            a.capture = self.capture_name
            a.capture_index = self.capture_index
            fl.association = a
            fl.associations.append(a)
            self.associations.append(a)
            a.assemblers = (MessageAssembler(a, 0, self, self.head_limit, self.hash_data),
                            MessageAssembler(a, 1, self, self.head_limit, self.hash_data))
            self._call("on_association_start", a)
        return a

    # --------------------------------------------------------------- events
    def _ev_flow(self, ev):
        _, fid, frame, ts, cip, cport, sip, sport, syn, synack, ack = ev
        self.flows[fid] = Flow(fid, cip, cport, sip, sport, ts, frame, syn, synack, ack)
        self._tick(ts)

    def _ev_pdu(self, ev):
        _, fid, direction, t, length, off, f0, f1, t0, t1, body, flags = ev
        fl = self.flows[fid]
        self._tick(t1)
        self.pdu_count += 1
        a = fl.association
        if a is None or (t == 1 and a.state in ENDED):
            a = self._association(fl, t0, f0, new=a is not None, seen=f1)
        a.bytes[direction] += length + 6
        a.pdus[direction] += 1
        sender = REQUESTOR if direction == 0 else ACCEPTOR
        state_before = a.state
        problem = a.transition(t, sender)
        decoded = None
        truncated = bool(flags & E.PF_TRUNCATED)
        if t in (1, 2):
            decoded = self._decode_associate(body, t == 1, truncated)
            self._problems(decoded.problems, a, t1, f1)
            if t == 1:
                if a.rq is None:
                    a.apply_rq(decoded, t0)
                    self._check_rq(a, decoded, t1, f1)
            elif a.ac is None:
                a.apply_ac(decoded, t0)
                self._check_ac(a, decoded, t1, f1)
        elif t == 3:
            decoded = P.decode_reject(body, truncated)
            self._problems(decoded.problems, a, t1, f1)
            if a.rj is None:
                a.rj = decoded
                a.rj_time = t0
            self.report("dicom.assoc.reject", time=t1, frame=f1, association=a,
                        result=decoded.result_text, source=decoded.source_text,
                        reason=decoded.reason_text)
        elif t == 5:
            if a.release_rq_time is None:
                a.release_rq_time = t0
        elif t == 6:
            if a.release_rp_time is None:
                a.release_rp_time = t0
        elif t == 7:
            decoded = P.decode_abort(body, truncated)
            self._problems(decoded.problems, a, t1, f1)
            if a.abort is None:
                a.abort = decoded
                a.abort_by = direction
                a.abort_time = t0
                a.abort_frame = f1
            who = "requestor" if direction == 0 else "acceptor"
            reason = f": {decoded.reason_text}" if decoded.source == 2 else ""
            self.report("dicom.assoc.abort", time=t1, frame=f1, association=a,
                        who=who, source=decoded.source_text, reason=reason)
        if problem is not None:
            self.report("dicom.assoc.state", time=t1, frame=f1, association=a, pdu=X.pdu_name(t),
                        state=problem[0], why=problem[1])
        elif state_before == IDLE and t in (5, 6):
            # a release first: the capture started after the negotiation (as for P-DATA-TF)
            self.report("dicom.assoc.unknown_start", time=t0, frame=f0, association=a)
        if self.keep_pdus:
            rec = PduRecord(self.pdu_count, fl, a, direction, t, length, f0, f1, t0, t1,
                            truncated, body, decoded)
            self._call("on_pdu", rec)
        if a.state in ENDED and state_before not in ENDED:
            why = {RELEASED: "the association was released", ABORTED: "it was cut by an A-ABORT",
                   REJECTED: "the association was rejected"}[a.state]
            self._finalize(a, why, t1, f1)

    ASSOCIATE_SEEN = 64  # A-ASSOCIATE bodies remembered with their decoding
    ASSOCIATE_SEEN_BYTES = 16 << 10  # ... each at most this long

    def _decode_associate(self, body, is_request: bool, truncated: bool):
        """``pdu.decode_associate``, once for the same bytes: the peers of a
        busy link send the same A-ASSOCIATE-RQ and -AC again and again (30,000
        small associations: 12 us of about 150 per association), and the
        decoding is only read (``Association.apply_rq``/``apply_ac``, the
        reports, the records), so the associations share it."""
        if len(body) > self.ASSOCIATE_SEEN_BYTES:
            return P.decode_associate(body, is_request, truncated)
        key = (bytes(body), is_request, truncated)
        seen = self._associate_seen
        decoded = seen.get(key)
        if decoded is None:
            decoded = P.decode_associate(body, is_request, truncated)
            if len(seen) >= self.ASSOCIATE_SEEN:
                del seen[next(iter(seen))]  # the oldest
            seen[key] = decoded
        return decoded

    def _check_rq(self, a, rq, time, frame):
        for which, raw in (("called", rq.called_ae_raw), ("calling", rq.calling_ae_raw)):
            why = P.ae_problem(raw)
            if why:
                self.report("dicom.ae.unusual", time=time, frame=frame, association=a,
                            which=which, ae=raw.decode("latin-1"), why=why)
        if rq.application_context and rq.application_context != P.DICOM_APPLICATION_CONTEXT:
            self.report("dicom.assoc.actx", time=time, frame=frame, association=a,
                        uid=rq.application_context)
        seen = set()
        for pc in rq.contexts_rq:  # PS3.8 9.3.2.2: odd integers 1-255, one per context
            if not pc.id & 1:
                self.report("dicom.pctx.id.invalid", time=time, frame=frame, association=a,
                            id=pc.id, why="is even (context IDs are odd)")
            if pc.id in seen:
                self.report("dicom.pctx.id.invalid", time=time, frame=frame, association=a,
                            id=pc.id, why="is proposed twice (the later one is kept)")
            seen.add(pc.id)

    def _check_ac(self, a, ac, time, frame):
        """One ``dicom.pctx.rejected`` per rejection reason, naming the contexts."""
        from .uids import uid_name
        by_reason = {}
        for pc in ac.contexts_ac:
            if pc.result != 0:
                ctx = a.contexts.get(pc.id)
                abs_uid = ctx.abstract_syntax if ctx else None
                name = uid_name(abs_uid) or abs_uid or "abstract syntax unknown"
                by_reason.setdefault(pc.result_text, []).append(f"{pc.id} ({name})")
        for reason, items in by_reason.items():
            shown = ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
            self.report("dicom.pctx.rejected", time=time, frame=frame, association=a,
                        count=len(items), contexts=shown, reason=reason)
        if a.rq is None:
            return
        # the AC answers each proposed context, and only those (PS3.8 9.3.3.2, 7.1.1.13)
        proposed = {pc.id for pc in a.rq.contexts_rq}
        answered = set()
        for pc in ac.contexts_ac:
            if pc.id not in proposed and pc.id not in answered:
                self.report("dicom.pctx.unproposed", time=time, frame=frame, association=a, id=pc.id)
            answered.add(pc.id)
        missing = sorted(proposed - answered)
        if missing:
            ids = ", ".join(map(str, missing[:10]))
            if len(missing) > 10:
                ids += f" and {len(missing) - 10} more"
            self.report("dicom.pctx.unanswered", time=time, frame=frame, association=a,
                        count=len(missing), ids=ids)

    def _plain_pdus(self, a, direction, ctx, n, pdu_bytes, value_bytes, f_last, t_min, t_max, t_last,
                    plen_last) -> bool:
        """The short path of ``n`` plain P-DATA-TF PDUs in a row on an open
        association (each one whole PDV, a middle fragment of the data set
        in progress on the context of the PDV before, its bytes not handed
        out): what the general path does for them, in short
        (test_decoder_fast_path compares).  False, and nothing done, where it
        is not for them."""
        asm = a.assemblers[direction]
        s = asm.ctx.get(ctx) if asm.last_ctx == ctx else None
        t = s.transfer if s is not None and s.pdv_end < 0 and s.cmd_buf is None else None
        if t is None or t.ended or not (a.ac is None or ctx in a.reported_bad_ctx or (
                ctx in a.contexts and a.contexts[ctx].accepted)):
            return False
        if self.first_time is None or t_min < self.first_time:
            self.first_time = t_min
        if self.last_time is None or t_max > self.last_time:
            self.last_time = t_max
        self.pdu_count += n
        a.bytes[direction] += pdu_bytes
        a.pdus[direction] += n
        a.transitions(4, direction, n)  # (sender: the direction) established -> established
        a.ctx_pdvs[ctx] = a.ctx_pdvs.get(ctx, 0) + n
        s.pdv_mch = 0
        s.pdv_pos = plen_last
        t.hasher = None  # bytes not handed out: no digest
        t.length += value_bytes
        t.frame_last = f_last
        t.time_last = t_last
        return True

    def _ev_pdata_run(self, ev):
        """Plain P-DATA-TF PDUs of one connection in a row (EV_PDATA_RUN): the
        short path once for all; where it is not for them, each PDU's own
        EV_PDATA, made again from its row, in turn.  (The PDUs of other
        connections between them touch nothing these do: counts and
        first/last times add up in any order.)"""
        _, fid, direction, ctx, n, pdu_bytes, value_bytes, f_last, t_min, t_max, t_last, plen_last, rows = ev
        a = self.flows[fid].association
        if a is not None and a.state in OPEN and self._fast_pdata and (fid, direction) not in self._open_pdata \
                and self._plain_pdus(a, direction, ctx, n, pdu_bytes, value_bytes, f_last, t_min, t_max, t_last,
                                     plen_last):
            row = memoryview(rows).cast("q")
            self._release = (row[-2], row[-1])
            return
        row = memoryview(rows).cast("q").tolist()
        pdata = self._ev_pdata
        for k in range(0, len(row), 9):
            length, off, f0, f1, t0, t1, pdv_len, release, flow_last = row[k:k + 9]
            pdata((E.EV_PDATA, fid, direction, 4, length, off, f0, f1, t0, t1,
                   ((ctx, 0, pdv_len, 0, pdv_len - 2, b""),), E.PF_FINAL, release, flow_last))

    def _ev_pdata(self, ev):
        _, fid, direction, _t, length, off, f0, f1, t0, t1, pieces, flags, release, flow_last = ev
        self._release = (release, flow_last)
        fl = self.flows[fid]
        a = fl.association
        open_pdata = self._open_pdata
        if flags == PF_FINAL and len(pieces) == 1 and not open_pdata and a is not None \
                and a.state in OPEN and self._fast_pdata:
            # Most PDUs of a summary (when the engine does not gather them in
            # runs): one plain PDV
            ctx, mch, pdv_len, offset, plen, data = pieces[0]
            if mch == 0 and offset == 0 and plen > 0 and plen == pdv_len - 2 and not data \
                    and self._plain_pdus(a, direction, ctx, 1, length + 6, plen, f1, t1, t1, t1, plen):
                return
        self._tick(t1)
        key = (fid, direction)
        rec = open_pdata.get(key)
        final = flags & PF_FINAL
        if rec is None:
            # first event of this PDU
            if a is None:
                a = self._association(fl, t0, f0, seen=f1)
            self.pdu_count += 1
            a.bytes[direction] += length + 6
            a.pdus[direction] += 1
            sender = REQUESTOR if direction == 0 else ACCEPTOR
            state_before = a.state
            problem = a.transition(4, sender)
            if state_before == IDLE:
                self.report("dicom.assoc.unknown_start", time=t0, frame=f0, association=a)
            elif problem is not None:
                self.report("dicom.assoc.state", time=t1, frame=f1, association=a,
                            pdu="P-DATA-TF", state=problem[0], why=problem[1])
            if self.keep_pdus:
                rec = PduRecord(self.pdu_count, fl, a, direction, 4, length, f0, f1, t0, t1)
            else:
                rec = True
            if not final:
                open_pdata[key] = rec
        elif final:
            del open_pdata[key]
        asm = a.assemblers[direction]
        pdvs = rec.pdvs if rec is not True else None
        ctx_pdvs = a.ctx_pdvs
        check_ctx = a.ac is not None
        for ctx, mch, pdv_len, offset, plen, data in pieces:
            if offset == 0:
                ctx_pdvs[ctx] = ctx_pdvs.get(ctx, 0) + 1
            if check_ctx and ctx not in a.reported_bad_ctx and not (
                    ctx in a.contexts and a.contexts[ctx].accepted):
                a.reported_bad_ctx.add(ctx)
                why = ("it was rejected" if ctx in a.contexts else "it was not negotiated")
                self.report("dicom.pdv.ctx.invalid", time=t1, frame=f1, association=a, id=ctx, why=why)
            if pdvs is not None:
                if offset == 0 or not pdvs:
                    info = PdvInfo(ctx, mch, pdv_len, bytearray() if self.keep_pdv_data else None)
                    pdvs.append(info)
                else:
                    info = pdvs[-1]
                if info.data is not None:
                    info.data += data
                self._cur_pdv = info
            asm.piece(ctx, mch, pdv_len, offset, plen, data, f1, t1)
        self._cur_pdv = None
        if final:
            if flags & PF_TRUNCATED:
                asm.damage("a P-DATA-TF PDU was damaged or cut")
            if rec is not True:
                rec.frame_last = f1
                rec.time_last = t1
                rec.truncated = bool(flags & PF_TRUNCATED)
                self._call("on_pdu", rec)
                if not self.keep_heads:
                    # the sinks have seen the data sets this PDU completed: their
                    # heads go, as without keep_pdus (memory must not grow with
                    # the number of objects)
                    for p in rec.pdvs:
                        if p.last_data and p.transfer is not None:
                            p.transfer.head = None
        elif rec is not True:
            rec.frame_last = f1
            rec.time_last = t1

    def _ev_gap(self, ev):
        _, fid, direction, off, size, frame, ts, resumed = ev
        fl = self.flows[fid]
        a = fl.association
        if a is not None:
            a.gaps += 1
            if size > 0:
                a.gap_bytes += size
            if not resumed:
                a.assemblers[direction].damage("bytes were lost by the tap")
        if size >= 0:
            self.report("tcp.gap", time=ts, frame=frame, association=a, size=size, offset=off)
        else:
            self.report("tcp.gap.unknown", time=ts, frame=frame, association=a, offset=off)

    def _ev_expert(self, ev):
        _, fid, direction, code, frame, ts, off, a1, a2 = ev
        a = None
        if fid >= 0:
            fl = self.flows.get(fid)
            a = fl.association if fl else None
        self._add_expert(X.from_core(code, a1, a2, off, time=ts if ts else None, frame=frame,
                                     association=None if a is None else a.id))

    def _ev_flow_end(self, ev):
        _, fid, frame, ts, reason, stats = ev
        fl = self.flows[fid]
        fl.end_reason = reason
        fl.end_time = ts
        fl.tcp = stats
        a = fl.association
        if a is not None:
            a.flow_end_reason = reason
            self._end(a, END_TEXT.get(reason, "the connection ended"), ts, frame)
        self._connection_done(fl)

    def _ev_attempt(self, ev):
        _, frame, ts, cip, cport, sip, sport, outcome = ev
        if len(self.attempts) < self.MAX_ATTEMPTS:
            at = TcpAttempt(frame, ts, _endpoint(cip, cport), _endpoint(sip, sport), sip, sport, outcome,
                            self.capture_name)
            self.attempts.append(at)
            self._call("on_tcp_attempt", at)
        else:
            self.attempts_dropped += 1

    # ---------------------------------------------------- association end
    def _end(self, a: Association, why: str, time, frame):
        """The connection or capture ended: finalize the association, or, if it
        had already ended, settle what PDUs sent after its end left open."""
        if a.end_time is None:
            self._finalize(a, why, time, frame)
        else:
            self._drain(a, why, time, frame)

    def _drain(self, a: Association, why: str, time, frame):
        """End the messages in progress and the operations never answered."""
        for asm in a.assemblers:
            asm.close(f"{why} before its last fragment", frame, time)
        waiting = list(a.outstanding.values()) + [op for q in a.queued.values() for op in q]
        for op in sorted(waiting, key=lambda op: op.index):
            self.report("dicom.op.unanswered", time=time, frame=frame, association=a,
                        command=op.command + "-RQ", message_id=op.message_id)
            self._call("on_operation", op)
        a.outstanding.clear()
        a.queued.clear()

    def _finalize(self, a: Association, why: str, time, frame):
        a.end_time = time if time is not None else a.start
        a.end_frame = frame
        self._drain(a, why, time, frame)
        if a.state == AWAITING_AC:
            self.report("dicom.assoc.no_accept", time=time, frame=frame, association=a)
        elif a.state not in ENDED:
            self.report("dicom.assoc.no_release", time=time, frame=frame, association=a, how=why)
        self._call("on_association_end", a)

    # ------------------------------------------- MessageAssembler handler
    def transfer_syntax(self, a: Association, ctx_id: int):
        return a.transfer_syntax(ctx_id)

    def command(self, asm, ctx, cmd, nbytes, f0, t0, f1, t1):
        a = asm.association
        direction = asm.direction
        if self._cur_pdv is not None:
            self._cur_pdv.command = cmd
        self._problems(cmd.problems, a, t1, f1)
        cmd.context_id = ctx
        cmd.direction = direction
        cmd.association = a
        cmd.time = t0
        cmd.frame = f1
        cmd.operation = None
        if cmd.field is None:
            self._call("on_command", cmd)
            return
        if cmd.is_cancel:
            op = a.outstanding.get((direction, cmd.responded_id))
            if op is not None and op.cancel_time is None:
                op.cancel_time = t0
            cmd.operation = op
        elif cmd.is_response:
            key = (1 - direction, cmd.responded_id)
            op = a.outstanding.get(key)
            foreign = op is not None and op.command != cmd.service
            if op is None or foreign:
                # its request is not in the capture, or the outstanding request
                # with this ID is of another service (left waiting for its own)
                self.report("dicom.op.unmatched_response", time=t1, frame=f1, association=a,
                            command=cmd.name, message_id=cmd.responded_id)
                op = self._new_op(a, cmd, 1 - direction, ctx, cmd.responded_id)
                op.affected_sop_class_uid = cmd.get("affected_sop_class_uid")
                op.affected_sop_instance_uid = cmd.get("affected_sop_instance_uid")
                if not foreign:
                    a.outstanding[key] = op
            cmd.operation = op
            op.command_bytes += nbytes
            status = cmd.status
            for k in ("remaining", "completed", "failed", "warning"):
                if k in cmd.elements:
                    op.counters[k] = cmd.elements[k]
            if op.first_response_time is None:
                op.first_response_start = t0
                op.first_response_time = t1
            if status is None:
                self.report("dicom.command.malformed", time=t1, frame=f1, association=a,
                            why=f"{cmd.name} without a Status (0000,0900)")
            cls = ST.status_class(status) if status is not None else ST.FAILURE
            if cls == ST.PENDING:
                op.pending_responses += 1
            else:
                op.status = status
                op.final = cmd
                op.response_time = t1
                op.response_frame = f1
                op.error_comment = cmd.get("error_comment")
                if a.outstanding.get(key) is op:
                    del a.outstanding[key]
                    later = a.queued.get(key)
                    if later:  # the next request that reused this message ID is now the one answered
                        a.outstanding[key] = later.pop(0)
                        if not later:
                            del a.queued[key]
                if status is not None and cls != ST.SUCCESS:
                    comment = f" ({op.error_comment})" if op.error_comment else ""
                    text = ST.status_text(op.command, status)
                    id = {ST.WARNING: "dicom.status_msg", ST.CANCEL: "dicom.status.cancel"}.get(
                        cls, "dicom.status.failure")
                    self.report(id, time=t1, frame=f1, association=a, command=cmd.name,
                                status=status, text=text, comment=comment)
                if not cmd.has_data_set:
                    self._call("on_operation", op)
                else:
                    op.final_waits_data = True
        else:
            key = (direction, cmd.message_id)
            duplicate = key in a.outstanding
            if duplicate:
                self.report("dicom.op.duplicate_id", time=t1, frame=f1, association=a,
                            command=cmd.name, message_id=cmd.message_id)
            op = self._new_op(a, cmd, direction, ctx, cmd.message_id)
            op.request = cmd
            op.affected_sop_class_uid = cmd.get("affected_sop_class_uid") or cmd.get("requested_sop_class_uid")
            op.affected_sop_instance_uid = (cmd.get("affected_sop_instance_uid")
                                            or cmd.get("requested_sop_instance_uid"))
            op.move_destination = cmd.get("move_destination")
            op.priority = cmd.get("priority")
            op.request_time = t0
            op.request_end_time = t1
            op.request_frame = f0
            op.command_bytes += nbytes
            if duplicate:  # responses cannot tell them apart: answered in order
                a.queued.setdefault(key, []).append(op)
            else:
                a.outstanding[key] = op
            cmd.operation = op
        self._call("on_command", cmd)

    def interleaved(self, asm, ctx, other, frame, time):
        self.report("dicom.message.interleaved", time=time, frame=frame, association=asm.association,
                    id=ctx, other=other)

    def missing_data(self, asm, ctx, cmd, frame, time):
        """``cmd`` announced a data set that never came."""
        a = asm.association
        self.report("dicom.message.missing_data", time=time, frame=frame, association=a, command=cmd.name)
        op = cmd.operation
        if op is not None and op.final_waits_data and op.final is cmd:
            op.final_waits_data = False
            self._call("on_operation", op)

    def _new_op(self, a, cmd, direction, ctx, message_id) -> Operation:
        op = Operation(a, cmd.service, message_id, ctx, direction)
        op.index = self.operation_count
        self.operation_count += 1
        a.operations.append(op)
        return op

    def transfer_start(self, t: DataSetTransfer):
        t.index = self.transfer_count
        t.release = self._release
        self.transfer_count += 1
        a = t.association
        a.transfers += 1
        if self._cur_pdv is not None:
            self._cur_pdv.transfer = t
        cmd = t.command
        op = cmd.operation if cmd is not None else None
        t.operation = op
        if op is not None:
            if cmd.is_response:
                op.response_datasets.append(t)
            else:
                op.request_dataset = t
        elif cmd is None and a.negotiated:
            self.report("dicom.message.orphan_data", time=t.time_first, frame=t.frame_first,
                        association=a, id=t.context_id)
        self._call("on_transfer_start", t)

    def data(self, t: DataSetTransfer, offset: int, data):
        if self._want_data:
            for h in self._hooks["on_data"]:
                h(t, offset, data)

    def _check_limits(self, t: DataSetTransfer):
        """Report the bounds that decoding this data set (its head) for output
        hits: sequence nesting (--max-depth) and inflation (--max-inflate)."""
        from .dataset import check_limits
        a = t.association
        ts = t.transfer_syntax or a.transfer_syntax(t.context_id)
        try:
            depth_at, capped = check_limits(t.head, ts, self.max_depth, self.max_inflate)
        except Exception:  # noqa: BLE001 - a check must never stop the decoding  # pragma: no cover
            return
        what = (t.command.name + " data set") if t.command is not None else f"data set on context {t.context_id}"
        if depth_at is not None:
            self.report("dicom.dataset.depth", time=t.time_last, frame=t.frame_last, association=a,
                        what=what, max=self.max_depth, offset=depth_at)
        if capped:
            self.report("dicom.object.inflate_cap", time=t.time_last, frame=t.frame_last,
                        association=a, what=what, cap=self.max_inflate)

    def transfer_end(self, t: DataSetTransfer):
        a = t.association
        if self._cur_pdv is not None:
            self._cur_pdv.transfer = t
            self._cur_pdv.last_data = True
        op = t.operation
        cmd = t.command
        if op is not None:
            if cmd is not None and cmd.is_response:
                op.response_dataset_bytes += t.length
                if op.final_waits_data and op.final is cmd:
                    op.final_waits_data = False
                    self._call("on_operation", op)
            else:
                op.dataset_bytes += t.length
                op.request_end_time = t.time_last
        if t.head:
            self._check_limits(t)
        if not t.complete:
            why = list(t.incomplete_reasons)
            if t.started_midway:
                why.insert(0, "its start was not captured")
            if t.missing:
                total = sum(e - s for s, e in t.missing)
                why.append(f"{total} bytes missing at " + ", ".join(f"{s}-{e}" for s, e in t.missing[:5]))
            if not t.last_seen and not why:
                why.append("its last fragment never came")
            what = (cmd.name + " data set") if cmd is not None else f"data set on context {t.context_id}"
            self.report("dicom.object.incomplete", time=t.time_last, frame=t.frame_last,
                        association=a, what=what, why="; ".join(why))
        if self.keep_objects:
            self.objects.append(t)
        self._call("on_transfer_end", t)
        if not self.keep_pdus:
            t.head = None  # sinks took what they need; keep memory flat
