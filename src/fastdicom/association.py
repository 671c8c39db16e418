"""Associations (PS3.8): negotiation, presentation contexts and state, as a
passive observer sees them.

Theory of operation
-------------------
fastdicom watches both peers, so it does not run either peer's PS3.8 state
machine (Table 9-10); it tracks the *association's* state from the PDUs seen
in both directions.  All transition logic lives in ``TRANSITIONS``: a table
from ``(state, PDU type, sender)`` to ``(next state, problem)``, where sender
is ``REQUESTOR`` (the peer that sent, or would send, the A-ASSOCIATE-RQ: the
TCP client) or ``ACCEPTOR``.  A cell with a problem text is a protocol
violation: it is reported as ``dicom.assoc.state`` and the association moves
to the state given, so decoding goes on.  A missing cell is a violation that
keeps the state.  ``history`` records the transitions (the last
``MAX_HISTORY`` to twice that: one per PDU, so a long association stays small).

The PS3.8 states behind the names: ``idle`` is Sta2 (transport open),
``awaiting-ac`` Sta3/Sta5, ``established`` Sta6, ``release-rq-*`` Sta7/Sta8,
``release-collision*`` Sta9-Sta12, and the three end states are Sta1 after
Sta13.  ``established?`` is an association whose negotiation was not
captured (the capture starts mid-association), so its presentation contexts
are unknown.
"""

from __future__ import annotations

from . import pdu as P
from ._record import field, record
from .uids import uid_name

REQUESTOR, ACCEPTOR = 0, 1  # = direction of the sender: 0 client to server

IDLE = "idle"
AWAITING_AC = "awaiting-ac"
ESTABLISHED = "established"
ESTABLISHED_UNKNOWN = "established?"
RELEASE_BY_REQUESTOR = "release-rq-by-requestor"
RELEASE_BY_ACCEPTOR = "release-rq-by-acceptor"
RELEASE_COLLISION = "release-collision"
RELEASE_COLLISION_RP = "release-collision-rp"
RELEASED = "released"
REJECTED = "rejected"
ABORTED = "aborted"

ENDED = frozenset({RELEASED, REJECTED, ABORTED})
OPEN = frozenset({ESTABLISHED, ESTABLISHED_UNKNOWN})

RQ, AC, RJ, DATA, REL_RQ, REL_RP, ABORT = 1, 2, 3, 4, 5, 6, 7
R, A = REQUESTOR, ACCEPTOR


def _build():
    t = {}

    def cell(state, pdu, sender, nxt, problem=None):
        t[(state, pdu, sender)] = (nxt, problem)

    for s in (R, A):
        cell(IDLE, ABORT, s, ABORTED)
        cell(AWAITING_AC, ABORT, s, ABORTED)
        cell(IDLE, DATA, s, ESTABLISHED_UNKNOWN)
        cell(IDLE, REL_RP, s, RELEASED)
        for st in (ESTABLISHED, ESTABLISHED_UNKNOWN):
            cell(st, DATA, s, st)
            cell(st, ABORT, s, ABORTED)
            cell(st, REL_RP, s, RELEASED, "A-RELEASE-RP without an A-RELEASE-RQ")
            for p in (RQ, AC, RJ):
                cell(st, p, s, st, "association PDU on an established association")
        for st in (RELEASE_BY_REQUESTOR, RELEASE_BY_ACCEPTOR, RELEASE_COLLISION, RELEASE_COLLISION_RP):
            cell(st, ABORT, s, ABORTED)
        cell(AWAITING_AC, DATA, s, AWAITING_AC, "P-DATA-TF before the A-ASSOCIATE-AC")
        cell(AWAITING_AC, RQ, s, AWAITING_AC, "a second A-ASSOCIATE-RQ")
        cell(AWAITING_AC, REL_RP, s, RELEASED, "A-RELEASE-RP before the association was accepted")
        cell(RELEASE_COLLISION_RP, REL_RP, s, RELEASED)
        cell(RELEASE_COLLISION, DATA, s, RELEASE_COLLISION, "P-DATA-TF during a release collision")
        for st in ENDED:
            for p in (AC, RJ, DATA, REL_RQ, REL_RP, ABORT):
                cell(st, p, s, st, "PDU after the association ended")
    cell(IDLE, RQ, R, AWAITING_AC)
    cell(IDLE, RQ, A, AWAITING_AC, "A-ASSOCIATE-RQ sent by the TCP server")
    cell(IDLE, AC, A, ESTABLISHED)
    cell(IDLE, AC, R, ESTABLISHED, "A-ASSOCIATE-AC sent by the TCP client")
    cell(IDLE, RJ, A, REJECTED)
    cell(IDLE, RJ, R, REJECTED, "A-ASSOCIATE-RJ sent by the TCP client")
    cell(IDLE, REL_RQ, R, RELEASE_BY_REQUESTOR)
    cell(IDLE, REL_RQ, A, RELEASE_BY_ACCEPTOR)
    cell(AWAITING_AC, AC, A, ESTABLISHED)
    cell(AWAITING_AC, RJ, A, REJECTED)
    cell(AWAITING_AC, AC, R, ESTABLISHED, "A-ASSOCIATE-AC sent by the requestor")
    cell(AWAITING_AC, RJ, R, REJECTED, "A-ASSOCIATE-RJ sent by the requestor")
    cell(AWAITING_AC, REL_RQ, R, RELEASE_BY_REQUESTOR, "A-RELEASE-RQ before the association was accepted")
    cell(AWAITING_AC, REL_RQ, A, RELEASE_BY_ACCEPTOR, "A-RELEASE-RQ before the association was accepted")
    for st in (ESTABLISHED, ESTABLISHED_UNKNOWN):
        cell(st, REL_RQ, R, RELEASE_BY_REQUESTOR)
        cell(st, REL_RQ, A, RELEASE_BY_ACCEPTOR)
    # in a release collision the requestor answers first, the acceptor after
    # it has received that A-RELEASE-RP (PS3.8 9.2.3; Sta9 -> Sta11, Sta10 -> Sta12)
    cell(RELEASE_COLLISION, REL_RP, R, RELEASE_COLLISION_RP)
    cell(RELEASE_COLLISION, REL_RP, A, RELEASE_COLLISION_RP,
         "in a release collision the requestor's A-RELEASE-RP comes first")
    # the peer that asked for the release sends nothing more but the RP of a collision
    for st, asker in ((RELEASE_BY_REQUESTOR, R), (RELEASE_BY_ACCEPTOR, A)):
        other = 1 - asker
        cell(st, REL_RP, other, RELEASED)
        cell(st, REL_RQ, other, RELEASE_COLLISION)
        cell(st, DATA, other, st)  # the other peer may still send (PS3.8 Sta8 AR-7)
        cell(st, DATA, asker, st, "P-DATA-TF after its sender's A-RELEASE-RQ")
        cell(st, REL_RP, asker, RELEASED, "A-RELEASE-RP from the peer that asked for the release")
    return t


TRANSITIONS = _build()
MAX_HISTORY = 1000  # state transitions kept per association (the last 1,000 to 2,000)
# (state, PDU type, sender) -> (next state, problem, history entry): the table's
# cells as ``transition`` uses them, made once (states x 256 types x 2 senders at most)
_STEPS: dict = {}


@record
class PresentationContext:
    id: int
    abstract_syntax: str | None = None
    proposed: list = field(default_factory=list)  # transfer syntaxes proposed
    result: int | None = None  # None: no A-ASSOCIATE-AC seen
    transfer_syntax: str | None = None  # accepted one

    @property
    def accepted(self) -> bool:
        return self.result == 0

    @property
    def result_text(self) -> str:
        if self.result is None:
            return "unknown"
        return "accepted" if self.result == 0 else "rejected"

    @property
    def reason_text(self) -> str | None:
        if self.result in (None, 0):
            return None
        return P.PCTX_RESULTS.get(self.result, f"reserved ({self.result})")

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "abstract_syntax": self.abstract_syntax,
            "abstract_syntax_name": uid_name(self.abstract_syntax),
            "proposed_transfer_syntaxes": list(self.proposed),
            "result": self.result_text,
            "result_code": self.result,
            "reason": self.reason_text,
            "transfer_syntax": self.transfer_syntax,
            "transfer_syntax_name": uid_name(self.transfer_syntax),
        }


class Association:
    """One association: what was negotiated, what happened, and when."""

    def __init__(self, id: int, flow, time: int, frame: int):
        self.id = id
        self.flow = flow  # decoder.Flow
        self.start = time
        self.start_frame = frame
        self.seen_frame = frame  # the frame that completed its first PDU (set by the decoder)
        self.capture = None
        self.capture_index = 0
        self.end_time = None
        self.end_frame = None
        self.state = IDLE
        self.history = []  # (state, pdu type, sender, next state)
        self.rq: P.AAssociate | None = None
        self.ac: P.AAssociate | None = None
        self.rq_time = self.ac_time = None
        self.rj: P.AAssociateRJ | None = None
        self.rj_time = None
        self.abort: P.AAbort | None = None
        self.abort_by = None  # direction of the A-ABORT's sender
        self.abort_time = None
        self.abort_frame = None
        self.release_rq_time = None
        self.release_rp_time = None
        self.contexts: dict[int, PresentationContext] = {}
        self.operations = []
        self.outstanding = {}  # (direction, message id) -> Operation awaiting its final response
        self.queued = {}  # (direction, message id) -> [Operation]: later requests reusing an outstanding ID
        self.bytes = [0, 0]
        self.pdus = [0, 0]
        self.gaps = 0
        self.gap_bytes = 0
        self.transfers = 0
        self.flow_end_reason = None
        self.reported_bad_ctx = set()
        self.ctx_pdvs = {}  # context ID -> PDVs carried
        self.assemblers = None  # (MessageAssembler, MessageAssembler), set by the decoder

    # --- identities -------------------------------------------------------
    @property
    def calling_ae(self) -> str | None:
        a = self.rq or self.ac
        return a.calling_ae if a else None

    @property
    def called_ae(self) -> str | None:
        a = self.rq or self.ac
        return a.called_ae if a else None

    @property
    def negotiated(self) -> bool:
        return self.rq is not None or self.ac is not None

    @property
    def result(self) -> str:
        if self.ac is not None:
            return "accepted"
        if self.rj is not None:
            return "rejected"
        return "unknown"

    @property
    def end(self) -> str:
        if self.state == RELEASED:
            return "released"
        if self.state == ABORTED:
            return "aborted"
        if self.state == REJECTED:
            return "rejected"
        return "incomplete"

    def max_length(self, direction: int) -> int | None:
        """The maximum PDU length the receiver of ``direction`` announced."""
        a = self.ac if direction == REQUESTOR else self.rq
        return a.user_info.maximum_length if a else None

    # --- negotiation --------------------------------------------------------
    def transition(self, pdu_type: int, sender: int):
        """Apply the table; returns the problem text of a violation, or None."""
        key = (self.state, pdu_type, sender)
        step = _STEPS.get(key)
        if step is None:
            cell = TRANSITIONS.get(key)
            nxt, problem = (self.state, "unexpected PDU in this state") if cell is None else cell
            # one history entry object per step, shared by every PDU that takes it
            step = _STEPS[key] = (nxt, problem, key + (nxt,))
        nxt, problem, entry = step
        h = self.history
        h.append(entry)
        if len(h) > 2 * MAX_HISTORY:  # one per PDU: a long association keeps its last ones
            del h[:MAX_HISTORY]
        prev = self.state
        self.state = nxt
        return None if problem is None else (prev, problem)

    def transitions(self, pdu_type: int, sender: int, n: int):
        """``transition`` for ``n`` PDUs in a row (a P-DATA run): the same
        state and history; the problem of the last, or None.  Once a step
        leads back to its own state, the rest are added at once, with the
        history cut as one by one would cut it."""
        problem = None
        while n > 0:
            before = self.state
            problem = self.transition(pdu_type, sender)
            n -= 1
            if n and self.state == before:
                break
        if n:
            h = self.history
            h.extend([h[-1]] * n)
            if len(h) > 2 * MAX_HISTORY:  # cut to what cutting at every step leaves
                keep = MAX_HISTORY + 1 + (len(h) - 2 * MAX_HISTORY - 1) % MAX_HISTORY
                del h[:len(h) - keep]
        return problem

    def apply_rq(self, rq: P.AAssociate, time: int):
        self.rq = rq
        self.rq_time = time
        for pc in rq.contexts_rq:
            ctx = self.contexts.get(pc.id)
            if ctx is None:
                ctx = self.contexts[pc.id] = PresentationContext(pc.id)
            ctx.abstract_syntax = pc.abstract_syntax
            ctx.proposed = list(pc.transfer_syntaxes)

    def apply_ac(self, ac: P.AAssociate, time: int):
        self.ac = ac
        self.ac_time = time
        for pc in ac.contexts_ac:
            ctx = self.contexts.get(pc.id)
            if ctx is None:
                ctx = self.contexts[pc.id] = PresentationContext(pc.id)
            ctx.result = pc.result
            ctx.transfer_syntax = pc.transfer_syntax if pc.result == 0 else None

    def transfer_syntax(self, ctx_id: int) -> str | None:
        ctx = self.contexts.get(ctx_id)
        return ctx.transfer_syntax if ctx is not None and ctx.accepted else None

    def roles(self) -> list[dict]:
        """SCP/SCU role selection: proposed in the RQ, answered in the AC."""
        out = {}
        if self.rq:
            for r in self.rq.user_info.role_selections:
                out[r.sop_class_uid] = {"sop_class_uid": r.sop_class_uid, "proposed_scu": r.scu_role,
                                        "proposed_scp": r.scp_role, "accepted_scu": None,
                                        "accepted_scp": None}
        if self.ac:
            for r in self.ac.user_info.role_selections:
                d = out.setdefault(r.sop_class_uid, {"sop_class_uid": r.sop_class_uid,
                                                     "proposed_scu": None, "proposed_scp": None})
                d["accepted_scu"] = r.scu_role
                d["accepted_scp"] = r.scp_role
        return list(out.values())
