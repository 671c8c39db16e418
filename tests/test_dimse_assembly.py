"""DIMSE message assembly through the whole stack (PS3.8 Annex E, PS3.7):
crafted conversations (tests/pcapgen.py) decoded by fastdicom.capture.run and
the Decoder.  Checks operations (command, message ID, statuses, pending
count, times, bytes), objects (message ID, command, completeness) and that
nothing leaks from one direction, context or message into another."""

from __future__ import annotations

import struct

import pcapgen as G
import stack

CT, FIND, GET, MOVE = G.CT_STORAGE, G.STUDY_FIND, G.STUDY_GET, G.STUDY_MOVE
IMPLICIT, EXPLICIT = G.IMPLICIT, G.EXPLICIT
CMD, CMD_LAST, DATA, DATA_LAST = 1, 3, 0, 2  # message control headers


def identifier(patient: str) -> bytes:
    """A small implicit VR LE identifier: (0008,0052) CS "STUDY", (0010,0010) PN."""
    name = patient.encode()
    if len(name) % 2:
        name += b" "
    return (struct.pack("<HHI", 0x0008, 0x0052, 6) + b"STUDY "
            + struct.pack("<HHI", 0x0010, 0x0010, len(name)) + name)


def find_rq(mid, data=True):
    return G.command(affected_sop_class_uid=FIND, command_field=0x0020, message_id=mid, priority=0,
                     command_data_set_type=0x0000 if data else 0x0101)


def find_rsp(mid, status, data):
    return G.command(affected_sop_class_uid=FIND, command_field=0x8020, message_id_being_responded_to=mid,
                     command_data_set_type=0x0000 if data else 0x0101, status=status)


def cancel_rq(mid):
    return G.command(command_field=0x0FFF, message_id_being_responded_to=mid, command_data_set_type=0x0101)


def get_rq(mid):
    return G.command(affected_sop_class_uid=GET, command_field=0x0010, message_id=mid, priority=0,
                     command_data_set_type=0x0000)


def get_rsp(mid, status, remaining=None, completed=0, failed=0, warning=0, data=False):
    f = dict(affected_sop_class_uid=GET, command_field=0x8010, message_id_being_responded_to=mid,
             command_data_set_type=0x0000 if data else 0x0101, status=status, completed=completed,
             failed=failed, warning=warning)
    if remaining is not None:
        f["remaining"] = remaining
    return G.command(**f)


def opened(contexts=((1, CT, (EXPLICIT,)),), results=((1, 0, EXPLICIT),), **kw) -> G.Conversation:
    c = G.Conversation(**kw)
    c.send(0, G.assoc_rq("SCP", "SCU", list(contexts)))
    c.send(1, G.assoc_ac("SCP", "SCU", list(results)))
    return c


def released(c: G.Conversation) -> G.Conversation:
    c.send(0, G.release_rq())
    c.send(1, G.release_rp())
    return c.close()


def only_notes(dec):
    """No expert info above note severity."""
    bad = [e for e in dec.expert if e.severity > 2]
    assert not bad, [e.message for e in bad]


# ------------------------------------------------------------------ PDVs
def test_command_and_data_set_in_one_pdu(tmp_path):
    ds = G.ct_dataset("1.2.3.1")
    c = opened()
    c.send(0, G.p_data((1, CMD_LAST, G.c_store_rq(1, CT, "1.2.3.1")), (1, DATA_LAST, ds)))
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(1, CT, "1.2.3.1"))))
    dec, rec = stack.run(tmp_path, released(c))
    [a] = dec.associations
    [op] = a.operations
    assert (op.command, op.message_id, op.status, op.dataset_bytes) == ("C-STORE", 1, 0, len(ds))
    [t] = dec.objects
    assert (t.complete, t.command.name, t.command.message_id, t.length) == (True, "C-STORE-RQ", 1, len(ds))
    assert bytes(rec.data[t.index]) == ds
    assert op.request_dataset is t and t.operation is op
    assert [len(p.pdvs) for p in rec.pdus if p.type == 4] == [2, 1]
    assert dec.expert == []


def test_several_pdvs_of_one_message_in_one_pdu(tmp_path):
    """A command in three PDVs and a data set in four, all in one PDU."""
    cmd = G.c_store_rq(5, CT, "1.2.3.5")
    ds = G.ct_dataset("1.2.3.5")
    q = len(ds) // 4
    c = opened()
    c.send(0, G.p_data((1, CMD, cmd[:10]), (1, CMD, cmd[10:50]), (1, CMD_LAST, cmd[50:]),
                       (1, DATA, ds[:q]), (1, DATA, ds[q:2 * q]), (1, DATA, ds[2 * q:3 * q]),
                       (1, DATA_LAST, ds[3 * q:])))
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(5, CT, "1.2.3.5"))))
    dec, rec = stack.run(tmp_path, released(c))
    [op] = dec.associations[0].operations
    assert (op.message_id, op.status, op.command_bytes) == (5, 0, len(cmd) + len(G.c_store_rsp(5, CT, "1.2.3.5")))
    [t] = dec.objects
    assert t.complete and bytes(rec.data[t.index]) == ds
    assert rec.commands[0].raw_bytes == cmd
    assert dec.expert == []


def test_data_set_split_over_many_pdus(tmp_path):
    ds = G.ct_dataset("1.2.3.9", pixels=40000)
    c = opened(mss=700)
    c.send(0, G.p_data((1, CMD_LAST, G.c_store_rq(1, CT, "1.2.3.9"))))
    frags = [ds[i:i + 997] for i in range(0, len(ds), 997)]
    for k, f in enumerate(frags):
        c.send(0, G.p_data((1, DATA_LAST if k == len(frags) - 1 else DATA, f)))
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(1, CT, "1.2.3.9"))))
    dec, rec = stack.run(tmp_path, released(c))
    [op] = dec.associations[0].operations
    [t] = dec.objects
    assert len(frags) > 40
    assert t.complete and t.length == len(ds) == op.dataset_bytes and bytes(rec.data[t.index]) == ds
    assert t.frame_last > t.frame_first
    assert op.request_end_time == t.time_last and op.request_time < op.request_end_time < op.response_time
    assert dec.expert == []


def test_last_fragment_shares_a_pdu_with_the_next_command(tmp_path):
    ds1, ds2 = G.ct_dataset("1.2.3.1"), G.ct_dataset("1.2.3.2", patient="Roe^Jane")
    c = opened()
    c.send(0, G.p_data((1, CMD_LAST, G.c_store_rq(1, CT, "1.2.3.1")), (1, DATA, ds1[:1000])))
    c.send(0, G.p_data((1, DATA_LAST, ds1[1000:]), (1, CMD_LAST, G.c_store_rq(2, CT, "1.2.3.2")),
                       (1, DATA, ds2[:10])))
    c.send(0, G.p_data((1, DATA_LAST, ds2[10:])))
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(1, CT, "1.2.3.1")),
                       (1, CMD_LAST, G.c_store_rsp(2, CT, "1.2.3.2"))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.message_id, o.status, o.dataset_bytes) for o in ops] == [(1, 0, len(ds1)), (2, 0, len(ds2))]
    assert [(t.command.message_id, t.complete, bytes(rec.data[t.index])) for t in dec.objects] == [
        (1, True, ds1), (2, True, ds2)]
    assert dec.expert == []


def test_interleaved_contexts_stay_apart(tmp_path):
    """Fragments of messages on two contexts, interleaved: each assembles on its own."""
    ds1, ds3 = G.ct_dataset("1.2.3.1"), G.ct_dataset("1.2.3.3", patient="Other^One")
    rq1, rq3 = G.c_store_rq(1, CT, "1.2.3.1"), G.c_store_rq(3, CT, "1.2.3.3")
    c = opened(contexts=[(1, CT, (EXPLICIT,)), (3, CT, (IMPLICIT,))], results=[(1, 0, EXPLICIT), (3, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD, rq1[:20]), (3, CMD, rq3[:30])))
    c.send(0, G.p_data((3, CMD_LAST, rq3[30:]), (1, CMD_LAST, rq1[20:]), (3, DATA, ds3[:100])))
    c.send(0, G.p_data((1, DATA, ds1[:500]), (3, DATA_LAST, ds3[100:]), (1, DATA_LAST, ds1[500:])))
    c.send(1, G.p_data((3, CMD_LAST, G.c_store_rsp(3, CT, "1.2.3.3")),
                       (1, CMD_LAST, G.c_store_rsp(1, CT, "1.2.3.1"))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = {o.message_id: o for o in dec.associations[0].operations}
    assert {k: (o.context_id, o.status, o.dataset_bytes) for k, o in ops.items()} == {
        1: (1, 0, len(ds1)), 3: (3, 0, len(ds3))}
    objs = {t.command.message_id: t for t in dec.objects}
    assert bytes(rec.data[objs[1].index]) == ds1 and bytes(rec.data[objs[3].index]) == ds3
    assert (objs[1].transfer_syntax, objs[3].transfer_syntax) == (EXPLICIT, IMPLICIT)
    assert all(t.complete for t in dec.objects)
    assert [c.raw_bytes for c in rec.commands[:2]] == [rq3, rq1]
    # a message's fragments must all go before another message's: reported, once
    assert [e.message for e in dec.expert] == [
        "a PDV on context 3 while a message on context 1 is incomplete: fragments of messages are interleaved"]


def test_messages_on_two_contexts_one_after_the_other_are_not_interleaved(tmp_path):
    ds = G.ct_dataset("1.2.3.1")
    c = opened(contexts=[(1, CT, (EXPLICIT,)), (3, CT, (IMPLICIT,))], results=[(1, 0, EXPLICIT), (3, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, G.c_store_rq(1, CT, "1.2.3.1")), (1, DATA, ds[:99])))
    c.send(0, G.p_data((1, DATA_LAST, ds[99:]), (3, CMD_LAST, G.c_echo_rq(2))))
    c.send(1, G.p_data((3, CMD_LAST, G.c_echo_rsp(2)), (1, CMD_LAST, G.c_store_rsp(1, CT, "1.2.3.1"))))
    dec, rec = stack.run(tmp_path, released(c))
    assert [(o.message_id, o.status) for o in dec.associations[0].operations] == [(1, 0), (2, 0)]
    assert dec.expert == []


def test_both_directions_stay_apart(tmp_path):
    """A message in progress in one direction does not absorb PDVs of the other
    direction on the same context ID."""
    ds = G.ct_dataset("1.2.3.1")
    c = opened()
    c.send(0, G.p_data((1, CMD_LAST, G.c_store_rq(1, CT, "1.2.3.1")), (1, DATA, ds[:100])))
    c.send(1, G.p_data((1, CMD, G.c_echo_rsp(9)[:8])))  # a stray first fragment the other way
    c.send(0, G.p_data((1, DATA_LAST, ds[100:])))
    c.send(1, G.p_data((1, CMD_LAST, G.c_echo_rsp(9)[8:])))
    dec, rec = stack.run(tmp_path, released(c))
    [t] = dec.objects
    assert t.complete and bytes(rec.data[t.index]) == ds
    assert [(cmd.name, cmd.direction, cmd.responded_id) for cmd in rec.commands] == [
        ("C-STORE-RQ", 0, None), ("C-ECHO-RSP", 1, 9)]


# ------------------------------------------------------------ operations
def test_c_find_with_pending_identifiers(tmp_path):
    ids = [identifier(n) for n in ("Doe^John", "Roe^Jane", "Poe^Edgar")]
    c = opened(contexts=[(1, FIND, (IMPLICIT,))], results=[(1, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, find_rq(7)), (1, DATA_LAST, identifier("*"))))
    for i in ids:
        c.wait(0.01)
        c.send(1, G.p_data((1, CMD_LAST, find_rsp(7, 0xFF00, True)), (1, DATA_LAST, i)))
    c.wait(0.01)
    c.send(1, G.p_data((1, CMD_LAST, find_rsp(7, 0x0000, False))))
    dec, rec = stack.run(tmp_path, released(c))
    [op] = dec.associations[0].operations
    assert (op.command, op.message_id, op.status, op.status_class, op.pending_responses) == (
        "C-FIND", 7, 0, "success", 3)
    assert op.dataset_bytes == len(identifier("*"))
    assert op.response_dataset_bytes == sum(map(len, ids))
    assert [bytes(rec.data[t.index]) for t in op.response_datasets] == ids
    assert all(t.command.status == 0xFF00 and t.operation is op for t in op.response_datasets)
    assert op.request_time < op.first_response_time < op.response_time
    assert 30_000_000 <= op.response_time - op.first_response_time < 32_000_000  # three 10 ms waits
    assert [(t.command.name, t.command.responded_id or t.command.message_id) for t in dec.objects] == [
        ("C-FIND-RQ", 7)] + [("C-FIND-RSP", 7)] * 3
    assert rec.operations == [op] and dec.expert == []


def test_c_cancel_is_linked_to_its_operation(tmp_path):
    c = opened(contexts=[(1, FIND, (IMPLICIT,))], results=[(1, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, find_rq(3)), (1, DATA_LAST, identifier("*"))))
    c.send(1, G.p_data((1, CMD_LAST, find_rsp(3, 0xFF00, True)), (1, DATA_LAST, identifier("A^B"))))
    c.send(0, G.p_data((1, CMD_LAST, cancel_rq(3))))
    c.send(1, G.p_data((1, CMD_LAST, find_rsp(3, 0xFE00, False))))
    dec, rec = stack.run(tmp_path, released(c))
    [op] = dec.associations[0].operations
    cancel = [cmd for cmd in rec.commands if cmd.is_cancel]
    assert len(cancel) == 1 and cancel[0].operation is op
    assert op.cancel_time == cancel[0].time and op.first_response_time < op.cancel_time < op.response_time
    assert (op.status, op.status_class, op.status_text, op.pending_responses) == (
        0xFE00, "cancel", "Matching terminated due to Cancel request", 1)
    assert stack.expert_ids(dec) == {"dicom.status.cancel": 1}


def test_c_get_with_c_store_sub_operations(tmp_path):
    """The C-STOREs of a C-GET go the other way on the same association, on
    their own context, with the SCP's own message IDs (here also 1 and 2)."""
    ds1, ds2 = G.ct_dataset("1.2.3.1"), G.ct_dataset("1.2.3.2")
    c = opened(contexts=[(1, GET, (IMPLICIT,)), (3, CT, (EXPLICIT,))],
               results=[(1, 0, IMPLICIT), (3, 0, EXPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, get_rq(1)), (1, DATA_LAST, identifier("Doe^John"))))
    for k, (uid, ds) in enumerate((("1.2.3.1", ds1), ("1.2.3.2", ds2)), 1):
        c.send(1, G.p_data((3, CMD_LAST, G.c_store_rq(k, CT, uid)), (3, DATA_LAST, ds)))
        c.send(0, G.p_data((3, CMD_LAST, G.c_store_rsp(k, CT, uid))))
        c.send(1, G.p_data((1, CMD_LAST, get_rsp(1, 0xFF00, remaining=2 - k, completed=k))))
    c.send(1, G.p_data((1, CMD_LAST, get_rsp(1, 0x0000, completed=2))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.command, o.message_id, o.direction, o.context_id, o.status, o.pending_responses) for o in ops] == [
        ("C-GET", 1, 0, 1, 0, 2), ("C-STORE", 1, 1, 3, 0, 0), ("C-STORE", 2, 1, 3, 0, 0)]
    get = ops[0]
    assert get.counters == {"completed": 2, "failed": 0, "warning": 0, "remaining": 0}
    assert [o.dataset_bytes for o in ops] == [len(identifier("Doe^John")), len(ds1), len(ds2)]
    assert [o.affected_sop_instance_uid for o in ops[1:]] == ["1.2.3.1", "1.2.3.2"]
    stores = [t for t in dec.objects if t.context_id == 3]
    assert [(t.direction, t.command.message_id, t.complete) for t in stores] == [(1, 1, True), (1, 2, True)]
    assert [bytes(rec.data[t.index]) for t in stores] == [ds1, ds2]
    assert get.request_time < ops[1].request_time < ops[2].response_time < get.response_time
    assert dec.expert == []


def test_response_whose_request_is_not_in_the_capture(tmp_path):
    c = opened()
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(42, CT, "1.2.3.42", status=0xA700))))
    dec, rec = stack.run(tmp_path, released(c))
    [op] = dec.associations[0].operations
    assert (op.command, op.message_id, op.direction, op.request, op.request_time) == ("C-STORE", 42, 0, None, None)
    assert (op.status, op.status_class, op.affected_sop_instance_uid) == (0xA700, "failure", "1.2.3.42")
    assert op.latency is None and rec.operations == [op]
    assert stack.expert_ids(dec) == {"dicom.op.unmatched_response": 1, "dicom.status.failure": 1}


def test_request_never_answered(tmp_path):
    c = opened()
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rq(5))))
    c.send(0, G.abort())
    dec, rec = stack.run(tmp_path, c.close())
    [op] = dec.associations[0].operations
    assert (op.command, op.message_id, op.status, op.response_time, op.latency) == ("C-ECHO", 5, None, None, None)
    assert op.status_class is None and rec.operations == [op]
    assert stack.expert_ids(dec) == {"dicom.op.unanswered": 1, "dicom.assoc.abort": 1}
    [e] = [e for e in dec.expert if e.id == "dicom.op.unanswered"]
    assert e.message == "C-ECHO-RQ (message ID 5) was never answered"


def test_duplicate_message_ids_are_answered_in_order(tmp_path):
    """Two requests with one message ID outstanding: reported, and the
    responses go to the requests in the order they were sent."""
    c = opened()
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rq(1))))
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rq(1))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_echo_rsp(1, status=0x0110))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_echo_rsp(1, status=0x0000))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.message_id, o.status) for o in ops] == [(1, 0x0110), (1, 0)]
    assert ops[0].request_time < ops[1].request_time and ops[0].response_time < ops[1].response_time
    assert rec.operations == ops
    assert stack.expert_ids(dec) == {"dicom.op.duplicate_id": 1, "dicom.status.failure": 1}


def test_duplicate_message_id_never_answered(tmp_path):
    c = opened()
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rq(1))))
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rq(1))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_echo_rsp(1))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.message_id, o.status) for o in ops] == [(1, 0), (1, None)]
    assert sorted(map(id, rec.operations)) == sorted(map(id, ops))
    assert stack.expert_ids(dec) == {"dicom.op.duplicate_id": 1, "dicom.op.unanswered": 1}


def test_response_of_another_service_does_not_answer_a_request(tmp_path):
    """A C-STORE-RSP with the message ID of an outstanding C-FIND-RQ is not
    its answer: the C-FIND waits for its own C-FIND-RSP."""
    c = opened(contexts=[(1, FIND, (IMPLICIT,))], results=[(1, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, find_rq(1)), (1, DATA_LAST, identifier("*"))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(1, CT, "1.2.3.1", status=0xA700))))
    c.send(1, G.p_data((1, CMD_LAST, find_rsp(1, 0x0000, False))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.command, o.message_id, o.status, o.request is not None) for o in ops] == [
        ("C-FIND", 1, 0, True), ("C-STORE", 1, 0xA700, False)]
    assert ops[0].response_time > ops[1].response_time
    assert sorted(o.index for o in rec.operations) == [0, 1]
    assert stack.expert_ids(dec) == {"dicom.op.unmatched_response": 1, "dicom.status.failure": 1}


def test_same_message_id_in_both_directions_is_not_a_duplicate(tmp_path):
    c = opened()
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rq(1))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_echo_rq(1))))
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rsp(1))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_echo_rsp(1, status=0x0122))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.message_id, o.direction, o.status) for o in ops] == [(1, 0, 0x0122), (1, 1, 0)]
    assert stack.expert_ids(dec) == {"dicom.status.failure": 1}


def test_final_response_with_a_data_set(tmp_path):
    """A C-GET-RSP with failures carries a data set (Failed SOP Instance UID
    List): the operation is complete once that data set has arrived."""
    c = opened(contexts=[(1, GET, (IMPLICIT,))], results=[(1, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, get_rq(4)), (1, DATA_LAST, identifier("X"))))
    c.send(1, G.p_data((1, CMD_LAST, get_rsp(4, 0xA702, completed=0, failed=1, data=True))))
    c.send(1, G.p_data((1, DATA_LAST, identifier("failed"))))
    dec, rec = stack.run(tmp_path, released(c))
    [op] = dec.associations[0].operations
    assert (op.status, op.response_dataset_bytes, op.final_waits_data) == (0xA702, len(identifier("failed")), False)
    assert rec.operations == [op]
    assert [e.message for e in dec.expert] == [
        "C-GET-RSP failed, status 0xa702: Refused: Out of Resources - Unable to perform sub-operations"]


def test_final_response_whose_data_set_never_comes(tmp_path):
    c = opened(contexts=[(1, GET, (IMPLICIT,))], results=[(1, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, get_rq(4)), (1, DATA_LAST, identifier("X"))))
    c.send(1, G.p_data((1, CMD_LAST, get_rsp(4, 0xB000, completed=1, failed=1, data=True))))
    dec, rec = stack.run(tmp_path, released(c))
    [op] = dec.associations[0].operations
    assert op.status == 0xB000 and op.response_datasets == []
    assert rec.operations == [op]  # the operation is still handed out once, at the end
    assert stack.expert_ids(dec) == {"dicom.status_msg": 1, "dicom.message.missing_data": 1}


def test_announced_data_set_replaced_by_the_next_command(tmp_path):
    c = opened(contexts=[(1, FIND, (IMPLICIT,))], results=[(1, 0, IMPLICIT)])
    c.send(0, G.p_data((1, CMD_LAST, find_rq(1))))  # announces an identifier that never comes
    c.send(0, G.p_data((1, CMD_LAST, find_rq(2)), (1, DATA_LAST, identifier("*"))))
    c.send(1, G.p_data((1, CMD_LAST, find_rsp(1, 0xC000, False)), (1, CMD_LAST, find_rsp(2, 0, False))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.message_id, o.status, o.dataset_bytes) for o in ops] == [(1, 0xC000, 0), (2, 0, len(identifier("*")))]
    [t] = dec.objects
    assert t.command.message_id == 2 and t.complete
    assert stack.expert_ids(dec) == {"dicom.message.missing_data": 1, "dicom.status.failure": 1}
    [e] = [e for e in dec.expert if e.id == "dicom.message.missing_data"]
    assert e.message == "C-FIND-RQ announces a data set that never came"


def test_data_set_without_a_command(tmp_path):
    c = opened()
    c.send(0, G.p_data((1, DATA_LAST, G.ct_dataset("1.2.3.1"))))
    dec, rec = stack.run(tmp_path, released(c))
    [t] = dec.objects
    assert t.command is None and t.started_midway and not t.complete
    assert stack.expert_ids(dec) == {"dicom.message.orphan_data": 1, "dicom.object.incomplete": 1}


def test_command_fragment_cut_by_a_data_pdv(tmp_path):
    """A data PDV while a command is half assembled: the command is dropped,
    the data set has no command."""
    rq = G.c_store_rq(1, CT, "1.2.3.1")
    c = opened()
    c.send(0, G.p_data((1, CMD, rq[:20]), (1, DATA_LAST, b"\x08\x00\x16\x00UI\x02\x001\x00")))
    c.send(0, G.p_data((1, CMD_LAST, G.c_echo_rq(2))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_echo_rsp(2))))
    dec, rec = stack.run(tmp_path, released(c))
    assert [(o.command, o.message_id, o.status) for o in dec.associations[0].operations] == [("C-ECHO", 2, 0)]
    assert [cmd.name for cmd in rec.commands] == ["C-ECHO-RQ", "C-ECHO-RSP"]
    assert "dicom.message.orphan_data" in stack.expert_ids(dec)


# ------------------------------------------------ Wireshark's bug B5
def encapsulated_dataset(uid: str) -> bytes:
    """Explicit VR LE, JPEG Baseline: SOP class/instance, then (7FE0,0010) OB of
    undefined length: empty basic offset table, two fragments, a delimiter."""
    head = G.dataset_explicit([(0x00080016, "UI", CT.encode()), (0x00080018, "UI", uid.encode())])
    frag1 = b"\xff\xd8\xff\xe0" + bytes(range(200)) + b"\xe0\xff"  # fragment bytes look like tags
    frag2 = b"\xfe\xff\x00\xe0" * 8 + b"\xff\xd9"
    pixel = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    pixel += struct.pack("<HHI", 0xFFFE, 0xE000, 0)
    pixel += struct.pack("<HHI", 0xFFFE, 0xE000, len(frag1)) + frag1
    pixel += struct.pack("<HHI", 0xFFFE, 0xE000, len(frag2)) + frag2
    pixel += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return head + pixel


def test_c_store_rsp_after_an_encapsulated_object_decodes_normally(tmp_path):
    """Wireshark bug B5: state left by an encapsulated-pixel-data object leaked
    into the next C-STORE-RSP.  Here the data set is cut inside an item header
    and inside a fragment, and the response still decodes whole."""
    jpeg = "1.2.840.10008.1.2.4.50"
    ds = encapsulated_dataset("1.2.3.77")
    cut1, cut2 = len(ds) - 30, len(ds) - 5  # inside the last fragment, inside the delimiter
    c = opened(contexts=[(1, CT, (jpeg,))], results=[(1, 0, jpeg)])
    c.send(0, G.p_data((1, CMD_LAST, G.c_store_rq(1, CT, "1.2.3.77")), (1, DATA, ds[:cut1])))
    c.send(0, G.p_data((1, DATA, ds[cut1:cut2])))
    c.send(0, G.p_data((1, DATA_LAST, ds[cut2:])))
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(1, CT, "1.2.3.77", status=0xB007))))
    c.send(0, G.p_data((1, CMD_LAST, G.c_store_rq(2, CT, "1.2.3.78")),
                       (1, DATA_LAST, encapsulated_dataset("1.2.3.78"))))
    c.send(1, G.p_data((1, CMD_LAST, G.c_store_rsp(2, CT, "1.2.3.78"))))
    dec, rec = stack.run(tmp_path, released(c))
    ops = dec.associations[0].operations
    assert [(o.message_id, o.status, o.status_text) for o in ops] == [
        (1, 0xB007, "Data Set does not match SOP Class"), (2, 0, "Success")]
    rsp = [cmd for cmd in rec.commands if cmd.is_response]
    assert [(r.problems, r.responded_id, r.get("affected_sop_instance_uid")) for r in rsp] == [
        ([], 1, "1.2.3.77"), ([], 2, "1.2.3.78")]
    assert [(t.complete, t.transfer_syntax) for t in dec.objects] == [(True, jpeg), (True, jpeg)]
    assert bytes(rec.data[dec.objects[0].index]) == ds
    assert stack.expert_ids(dec) == {"dicom.status_msg": 1}


# ---------------------------------------------------------------- lost bytes
class _Handler:
    """Records what a MessageAssembler hands on."""

    def __init__(self):
        self.ended = []

    def transfer_syntax(self, association, ctx):
        return EXPLICIT

    def command(self, *args):
        pass

    def transfer_start(self, t):
        pass

    def data(self, t, offset, data):
        pass

    def transfer_end(self, t):
        self.ended.append(t)

    def missing_data(self, *args):
        pass

    def interleaved(self, *args):
        pass


def _store_command():
    return G.command(affected_sop_class_uid=CT, command_field=0x0001, message_id=1, priority=0,
                     command_data_set_type=0x0000, affected_sop_instance_uid="1.2.3")


def test_a_data_set_whose_first_pdvs_were_lost_after_its_command_is_not_complete():
    """The framer lost sync after the command (bytes lost by the tap) and found
    the next PDU boundary at the data set's last PDV: that PDV starts at offset
    0, but the data set does not."""
    from fastdicom.dimse import MessageAssembler
    h = _Handler()
    asm = MessageAssembler(None, 0, h)
    cmd = _store_command()
    asm.piece(1, CMD_LAST, len(cmd) + 2, 0, len(cmd), cmd, 1, 1)
    asm.damage("bytes were lost by the tap")
    asm.piece(1, DATA_LAST, 102, 0, 100, bytes(100), 5, 5)
    (t,) = h.ended
    assert not t.complete and t.incomplete_reasons == ["bytes were lost by the tap"]
    # with nothing lost, the same data set is complete
    h2 = _Handler()
    asm2 = MessageAssembler(None, 0, h2)
    asm2.piece(1, CMD_LAST, len(cmd) + 2, 0, len(cmd), cmd, 1, 1)
    asm2.piece(1, DATA_LAST, 102, 0, 100, bytes(100), 5, 5)
    assert h2.ended[0].complete


def test_a_pdv_whose_start_was_lost_opens_with_a_hole():
    """A gap the framer stayed in sync across took the start of the first data
    PDV: its first piece arrives at an offset above 0."""
    from fastdicom.dimse import MessageAssembler
    h = _Handler()
    asm = MessageAssembler(None, 0, h)
    cmd = _store_command()
    asm.piece(1, CMD_LAST, len(cmd) + 2, 0, len(cmd), cmd, 1, 1)
    asm.piece(1, DATA, 1002, 400, 600, bytes(600), 3, 3)  # bytes 0-400 were lost
    asm.piece(1, DATA_LAST, 102, 0, 100, bytes(100), 5, 5)
    (t,) = h.ended
    assert not t.complete and t.missing == [(0, 400)] and t.length == 1100
