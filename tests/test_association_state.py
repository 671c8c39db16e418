"""The association state table (association.TRANSITIONS, PS3.8 9.2 as a
passive observer sees it): one test per cell, generated from the table, run
both on an Association and through the whole stack; every missing cell; and
the behaviours real captures show (P-DATA before the accept, PDVs on
contexts not accepted, data after a release request, a new association on
the same connection, a capture that starts mid-association)."""

from __future__ import annotations

import pytest

import pcapgen as G
import stack
from fastdicom import association as A
from fastdicom.expert import pdu_name

R, AC_ = A.REQUESTOR, A.ACCEPTOR
STATES = sorted({k[0] for k in A.TRANSITIONS} | {v[0] for v in A.TRANSITIONS.values()})
PDU_TYPES = (A.RQ, A.AC, A.RJ, A.DATA, A.REL_RQ, A.REL_RP, A.ABORT)

# one way (PDU type, sender) to reach each state from a new connection
PREFIX = {
    A.IDLE: [],
    A.AWAITING_AC: [(A.RQ, R)],
    A.ESTABLISHED: [(A.RQ, R), (A.AC, AC_)],
    A.ESTABLISHED_UNKNOWN: [(A.DATA, R)],
    A.RELEASE_BY_REQUESTOR: [(A.RQ, R), (A.AC, AC_), (A.REL_RQ, R)],
    A.RELEASE_BY_ACCEPTOR: [(A.RQ, R), (A.AC, AC_), (A.REL_RQ, AC_)],
    A.RELEASE_COLLISION: [(A.RQ, R), (A.AC, AC_), (A.REL_RQ, R), (A.REL_RQ, AC_)],
    A.RELEASE_COLLISION_RP: [(A.RQ, R), (A.AC, AC_), (A.REL_RQ, R), (A.REL_RQ, AC_), (A.REL_RP, R)],
    A.RELEASED: [(A.RQ, R), (A.AC, AC_), (A.REL_RQ, R), (A.REL_RP, AC_)],
    A.REJECTED: [(A.RQ, R), (A.RJ, AC_)],
    A.ABORTED: [(A.RQ, R), (A.AC, AC_), (A.ABORT, AC_)],
}


def wire(pdu_type: int, sender: int) -> bytes:
    if pdu_type == A.DATA:
        # a whole command set: the core frames a direction's first P-DATA-TF on
        # strong evidence only, and a command set is that
        return G.p_data((1, 3, G.c_echo_rq(1) if sender == R else G.c_echo_rsp(1)))
    return {
        A.RQ: G.assoc_rq(), A.AC: G.assoc_ac(), A.RJ: G.assoc_rj(),
        A.REL_RQ: G.release_rq(), A.REL_RP: G.release_rp(), A.ABORT: G.abort(),
    }[pdu_type]


def decode_steps(tmp_path, steps):
    c = G.Conversation()
    for pdu_type, sender in steps:
        c.send(sender, wire(pdu_type, sender))  # sender 0 (requestor) is the TCP client
    dec, rec = stack.run(tmp_path, c.close())
    return dec


def state_messages(dec):
    return [e.message for e in dec.expert if e.id == "dicom.assoc.state"]


def test_prefixes_reach_their_states_without_violations(tmp_path):
    for state, steps in PREFIX.items():
        dec = decode_steps(tmp_path, steps)
        if steps:
            assert dec.associations[-1].state == state
        assert state_messages(dec) == [], state


def test_every_state_has_a_prefix():
    assert set(PREFIX) == set(STATES)


CELLS = sorted(A.TRANSITIONS.items())


def _cell_id(cell):
    (state, pdu, sender), (nxt, _) = cell
    return f"{state}+{pdu_name(pdu)}-from-{'requestor' if sender == R else 'acceptor'}"


@pytest.mark.parametrize("cell", CELLS, ids=[_cell_id(c) for c in CELLS])
def test_cell_on_an_association(cell):
    (state, pdu, sender), (nxt, problem) = cell
    a = A.Association(0, None, 0, 0)
    a.state = state
    got = a.transition(pdu, sender)
    assert a.state == nxt
    assert got == (None if problem is None else (state, problem))
    assert a.history == [(state, pdu, sender, nxt)]


@pytest.mark.parametrize("cell", CELLS, ids=[_cell_id(c) for c in CELLS])
def test_cell_through_the_stack(tmp_path, cell):
    (state, pdu, sender), (nxt, problem) = cell
    dec = decode_steps(tmp_path, PREFIX[state] + [(pdu, sender)])
    [a] = dec.associations  # no cell starts a new association
    assert a.history[-1] == (state, pdu, sender, nxt)
    assert a.state == nxt
    expected = [] if problem is None else [f"{pdu_name(pdu)} unexpected in state {state}: {problem}"]
    assert state_messages(dec) == expected
    if nxt in A.ENDED:
        assert a.end == {A.RELEASED: "released", A.ABORTED: "aborted", A.REJECTED: "rejected"}[nxt]
        assert a.end_time is not None


MISSING = [(s, p, d) for s in STATES for p in PDU_TYPES for d in (R, AC_)
           if (s, p, d) not in A.TRANSITIONS]
NEW_ASSOCIATION = [m for m in MISSING if m[0] in A.ENDED and m[1] == A.RQ]
VIOLATIONS = [m for m in MISSING if m not in NEW_ASSOCIATION]


@pytest.mark.parametrize("state, pdu, sender", VIOLATIONS,
                         ids=[f"{s}+{pdu_name(p)}-from-{d}" for s, p, d in VIOLATIONS])
def test_missing_cell_is_a_violation_that_keeps_the_state(tmp_path, state, pdu, sender):
    a = A.Association(0, None, 0, 0)
    a.state = state
    assert a.transition(pdu, sender) == (state, "unexpected PDU in this state")
    assert a.state == state
    dec = decode_steps(tmp_path, PREFIX[state] + [(pdu, sender)])
    [a] = dec.associations
    assert a.state == state
    assert state_messages(dec) == [f"{pdu_name(pdu)} unexpected in state {state}: unexpected PDU in this state"]


@pytest.mark.parametrize("state, pdu, sender", NEW_ASSOCIATION)
def test_rq_after_the_end_starts_a_new_association(tmp_path, state, pdu, sender):
    dec = decode_steps(tmp_path, PREFIX[state] + [(A.RQ, sender)])
    first, second = dec.associations
    assert first.state == state and second.state == A.AWAITING_AC
    assert second.history == [(A.IDLE, A.RQ, sender, A.AWAITING_AC)]
    expected = [] if sender == R else ["A-ASSOCIATE-RQ unexpected in state idle: "
                                       "A-ASSOCIATE-RQ sent by the TCP server"]
    assert state_messages(dec) == expected


def test_missing_cells_are_few_and_known():
    """Only these combinations have no cell (a generic violation)."""
    assert len(A.TRANSITIONS) == 116 and len(NEW_ASSOCIATION) == 6 and len(VIOLATIONS) == 32


# ------------------------------------------------------ observed behaviour
def opened(**kw):
    c = G.Conversation(**kw)
    c.send(0, G.assoc_rq("SCP", "SCU", [(1, G.VERIFICATION, (G.IMPLICIT,)), (3, G.CT_STORAGE, (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac("SCP", "SCU", [(1, 0, G.IMPLICIT), (3, 4, None)]))
    return c


def test_p_data_before_the_accept(tmp_path):
    """profuzzbench's replayed clients send P-DATA before the A-ASSOCIATE-AC:
    a protocol-state warning, and the operation is still matched."""
    c = G.Conversation()
    c.send(0, G.assoc_rq())
    c.send(0, G.p_data((1, 3, G.c_echo_rq(1))))
    c.send(1, G.assoc_ac())
    c.send(1, G.p_data((1, 3, G.c_echo_rsp(1))))
    c.send(0, G.release_rq()).send(1, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    assert (a.result, a.end) == ("accepted", "released")
    assert [(o.command, o.message_id, o.status) for o in a.operations] == [("C-ECHO", 1, 0)]
    assert state_messages(dec) == [
        "P-DATA-TF unexpected in state awaiting-ac: P-DATA-TF before the A-ASSOCIATE-AC"]
    assert stack.expert_ids(dec) == {"dicom.assoc.state": 1}


def test_pdv_on_a_context_not_accepted(tmp_path):
    c = opened()
    c.send(0, G.p_data((3, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3")), (3, 2, b"\x08\x00\x60\x00\x02\x00\x00\x00CT")))
    c.send(0, G.p_data((3, 3, G.c_store_rq(2, G.CT_STORAGE, "1.2.4"))))  # reported once per context
    c.send(0, G.p_data((5, 3, G.c_echo_rq(3))))
    c.send(1, G.p_data((1, 3, G.c_echo_rsp(3))))
    c.send(0, G.release_rq()).send(1, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    invalid = [e.message for e in dec.expert if e.id == "dicom.pdv.ctx.invalid"]
    assert invalid == ["Invalid Presentation Context ID 3: it was rejected",
                       "Invalid Presentation Context ID 5: it was not negotiated"]
    [a] = dec.associations
    assert a.ctx_pdvs == {3: 3, 5: 1, 1: 1}
    # the command sets still decode (they are always implicit VR LE); the data set has no syntax
    assert [(o.command, o.message_id, o.context_id) for o in a.operations][:2] == [
        ("C-STORE", 1, 3), ("C-STORE", 2, 3)]
    [t] = dec.objects
    assert t.transfer_syntax is None and t.context_id == 3


def test_data_after_a_release_request(tmp_path):
    """After the requestor's A-RELEASE-RQ the acceptor may still answer
    (PS3.8 Sta8); the requestor may not send more."""
    c = opened()
    c.send(0, G.p_data((1, 3, G.c_echo_rq(1))))
    c.send(0, G.release_rq())
    c.send(1, G.p_data((1, 3, G.c_echo_rsp(1))))
    c.send(0, G.p_data((1, 3, G.c_echo_rq(2))))
    c.send(1, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    assert [(o.message_id, o.status) for o in a.operations] == [(1, 0), (2, None)]
    assert a.state == A.RELEASED
    assert state_messages(dec) == [
        "P-DATA-TF unexpected in state release-rq-by-requestor: P-DATA-TF after its sender's A-RELEASE-RQ"]


def test_data_after_the_end_is_still_settled(tmp_path):
    """PDUs after the release: reported, and what they open (an operation, a
    data set) is still ended when the connection ends, not left hanging."""
    c = opened()
    c.send(0, G.release_rq()).send(1, G.release_rp())
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3")), (1, 0, G.ct_dataset("1.2.3")[:64])))
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    [op] = a.operations
    assert rec.operations == [op] and op.status is None
    assert len(rec.transfers_started) == len(rec.transfers_ended) == len(dec.objects) == 1
    assert not dec.objects[0].complete
    assert [e.message for e in dec.expert if e.id != "dicom.pctx.rejected"] == [
        "P-DATA-TF unexpected in state released: PDU after the association ended",
        "C-STORE-RQ data set incomplete: the connection was closed before its last fragment",
        "C-STORE-RQ (message ID 1) was never answered"]
    assert rec.associations_ended == [a]  # ended once


def test_release_collision(tmp_path):
    c = opened()
    c.send(0, G.release_rq()).send(1, G.release_rq()).send(0, G.release_rp()).send(1, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    assert [h[3] for h in a.history] == [A.AWAITING_AC, A.ESTABLISHED, A.RELEASE_BY_REQUESTOR,
                                         A.RELEASE_COLLISION, A.RELEASE_COLLISION_RP, A.RELEASED]
    assert a.end == "released" and state_messages(dec) == []


def test_release_collision_answered_by_the_acceptor_first(tmp_path):
    c = opened()
    c.send(1, G.release_rq()).send(0, G.release_rq()).send(1, G.release_rp()).send(0, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    assert dec.associations[0].end == "released"
    assert state_messages(dec) == ["A-RELEASE-RP unexpected in state release-collision: "
                                   "in a release collision the requestor's A-RELEASE-RP comes first"]


def test_second_association_on_the_same_connection(tmp_path):
    c = G.Conversation()
    # context 1 means Verification in the first association, CT Image Storage in
    # the second (Wireshark B17 keeps the first abstract syntax)
    for called, calling, mid, abstract, ts in (("SCP1", "SCU1", 1, G.VERIFICATION, G.IMPLICIT),
                                               ("SCP2", "SCU2", 1, G.CT_STORAGE, G.EXPLICIT)):
        c.send(0, G.assoc_rq(called, calling, [(1, abstract, (ts,))]))
        c.send(1, G.assoc_ac(called, calling, [(1, 0, ts)]))
        c.send(0, G.p_data((1, 3, G.c_echo_rq(mid))))
        c.send(1, G.p_data((1, 3, G.c_echo_rsp(mid, status=0x0110 if called == "SCP2" else 0))))
        c.send(0, G.release_rq()).send(1, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    first, second = dec.associations
    assert first.flow is second.flow
    assert [(a.calling_ae, a.called_ae, a.result, a.end) for a in dec.associations] == [
        ("SCU1", "SCP1", "accepted", "released"), ("SCU2", "SCP2", "accepted", "released")]
    assert [[(o.message_id, o.status) for o in a.operations] for a in dec.associations] == [[(1, 0)], [(1, 0x0110)]]
    assert first.end_time <= second.start
    assert [(a.contexts[1].abstract_syntax, a.transfer_syntax(1)) for a in dec.associations] == [
        (G.VERIFICATION, G.IMPLICIT), (G.CT_STORAGE, G.EXPLICIT)]
    assert [a.id for a in rec.associations_started] == [0, 1] == [a.id for a in rec.associations_ended]
    assert stack.expert_ids(dec) == {"dicom.status.failure": 1}


def test_capture_starting_mid_association(tmp_path):
    """No handshake, no negotiation: the first PDU is a P-DATA-TF."""
    c = G.Conversation(handshake=False)
    c.send(0, G.p_data((1, 3, G.c_store_rq(9, G.CT_STORAGE, "1.2.3.9")), (1, 2, G.ct_dataset("1.2.3.9"))))
    c.send(1, G.p_data((1, 3, G.c_store_rsp(9, G.CT_STORAGE, "1.2.3.9"))))
    c.send(0, G.release_rq()).send(1, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    assert (a.result, a.state, a.end, a.negotiated) == ("unknown", A.RELEASED, "released", False)
    assert (a.calling_ae, a.called_ae, a.contexts) == (None, None, {})
    assert a.history[0] == (A.IDLE, A.DATA, R, A.ESTABLISHED_UNKNOWN)
    [op] = a.operations
    assert (op.command, op.message_id, op.status) == ("C-STORE", 9, 0)
    [t] = dec.objects
    assert t.complete and t.transfer_syntax is None  # the syntax was negotiated out of sight
    assert stack.expert_ids(dec) == {"dicom.assoc.unknown_start": 1}


def test_capture_starting_at_a_release(tmp_path):
    c = G.Conversation(handshake=False)
    c.send(0, G.release_rq()).send(1, G.release_rp())
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    assert (a.result, a.end) == ("unknown", "released")
    assert stack.expert_ids(dec) == {"dicom.assoc.unknown_start": 1}


def test_capture_starting_inside_a_pdu(tmp_path):
    """The first bytes are the tail of a PDU: the core resynchronises, the
    association starts as unknown."""
    c = G.Conversation(handshake=False)
    c.send(0, G.ct_dataset("1.2.3.1")[-300:] + G.p_data((1, 3, G.c_echo_rq(4))))
    c.send(1, G.p_data((1, 3, G.c_echo_rsp(4))))
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    assert a.result == "unknown" and a.state == A.ESTABLISHED_UNKNOWN and a.end == "incomplete"
    assert [(o.command, o.message_id, o.status) for o in a.operations] == [("C-ECHO", 4, 0)]
    ids = stack.expert_ids(dec)
    assert ids["dicom.assoc.unknown_start"] == 1 and ids["dicom.pdu.midstream"] == 1
    assert "dicom.assoc.state" not in ids


def test_association_never_answered(tmp_path):
    c = G.Conversation()
    c.send(0, G.assoc_rq())
    dec, rec = stack.run(tmp_path, c.close())
    [a] = dec.associations
    assert (a.result, a.state, a.end) == ("unknown", A.AWAITING_AC, "incomplete")
    assert stack.expert_ids(dec) == {"dicom.assoc.no_accept": 1}


def test_connection_closed_without_release(tmp_path):
    c = opened()
    c.send(0, G.p_data((1, 3, G.c_echo_rq(1)))).send(1, G.p_data((1, 3, G.c_echo_rsp(1))))
    dec, rec = stack.run(tmp_path, c.close(rst=True))
    [a] = dec.associations
    assert (a.state, a.end) == (A.ESTABLISHED, "incomplete")
    [e] = [e for e in dec.expert if e.id == "dicom.assoc.no_release"]
    assert e.message == "association ended without A-RELEASE or A-ABORT (the connection was reset)"


def test_history_of_a_long_association_stays_bounded():
    # one entry per PDU: an association of millions of P-DATA-TF must not
    # keep millions of tuples
    a = A.Association(0, None, 0, 0)
    a.transition(A.RQ, R)
    a.transition(A.AC, AC_)
    for _ in range(5 * A.MAX_HISTORY):
        a.transition(A.DATA, R)
    assert A.MAX_HISTORY <= len(a.history) <= 2 * A.MAX_HISTORY
    assert a.history[-1] == (A.ESTABLISHED, A.DATA, R, A.ESTABLISHED)
    assert a.state == A.ESTABLISHED
