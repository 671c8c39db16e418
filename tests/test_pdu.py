"""Association PDUs (PS3.8 9.3, Annex D; PS3.7 D.3.3): golden bytes from
``encoded.py`` decoded field by field, the same bytes read by pynetdicom as
an independent check of the constants, and random PDUs encoded by
pynetdicom's encoder decoded by ``fastdicom.pdu``."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pynetdicom.pdu import (
    A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, A_RELEASE_RP, A_RELEASE_RQ, P_DATA_TF,
)
from pynetdicom.pdu_items import (
    ApplicationContextItem, PresentationContextItemAC, PresentationContextItemRQ, UserInformationItem,
)
from pynetdicom.pdu_primitives import (
    A_ABORT, A_P_ABORT, A_ASSOCIATE, P_DATA, AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification, ImplementationVersionNameNotification, MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation, SOPClassCommonExtendedNegotiation, SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

import encoded as E
import pcapgen
import stack
from fastdicom import pdu as P
from fastdicom.association import PresentationContext as Ctx


def body(pdu_bytes: bytes) -> bytes:
    """The PDU body after the 6-byte header, once the header is checked."""
    t, _, ln = struct.unpack(">BBI", pdu_bytes[:6])
    assert ln == len(pdu_bytes) - 6
    return pdu_bytes[6:]


def ids(problems) -> list:
    return [p[0] for p in problems]


def _walk_items(b, start, end):
    """Every item header in b[start:end] fits (checks the golden constants)."""
    p = start
    while p < end:
        t = b[p]
        ln = struct.unpack(">H", b[p + 2:p + 4])[0]
        assert p + 4 + ln <= end, f"item 0x{t:02x} at {p} overruns"
        if t in (0x20, 0x21):
            _walk_items(b, p + 8, p + 4 + ln)
        elif t == 0x50:
            _walk_items(b, p + 4, p + 4 + ln)
        p += 4 + ln
    assert p == end


# ------------------------------------------------------------ the constants
@pytest.mark.parametrize("name", ["A_ASSOCIATE_RQ", "A_ASSOCIATE_AC", "A_ASSOCIATE_RQ_UNKNOWN_ITEMS"])
def test_golden_item_lengths(name):
    b = getattr(E, name)
    body(b)
    _walk_items(b, 74, len(b))


@pytest.mark.parametrize("name", [
    "USER_IDENTITY_USERNAME", "USER_IDENTITY_PASSCODE", "USER_IDENTITY_KERBEROS",
    "USER_IDENTITY_SAML", "USER_IDENTITY_JWT", "USER_IDENTITY_AC_KERBEROS", "PCTX_NO_ABSTRACT",
    "PCTX_TWO_ABSTRACT", "PCTX_NO_TRANSFER", "PCTX_EMPTY_ABSTRACT", "PCTX_AC_TWO_TRANSFER",
    "PCTX_AC_ACCEPTED_NO_TRANSFER"])
def test_golden_sub_item_lengths(name):
    b = getattr(E, name)
    assert struct.unpack(">H", b[2:4])[0] == len(b) - 4


def test_golden_constants_read_by_pynetdicom():
    """pynetdicom's decoder reads the hand-written RQ/AC as the comments say:
    the constants themselves are right."""
    rq = A_ASSOCIATE_RQ()
    rq.decode(E.A_ASSOCIATE_RQ)
    assert rq.encode() == E.A_ASSOCIATE_RQ
    assert rq.called_ae_title == "ANY-SCP" and rq.calling_ae_title == "ECHOSCU"
    assert [(c.context_id, c.abstract_syntax, c.transfer_syntax) for c in rq.presentation_context] == [
        (1, E.VERIFICATION, [E.IMPLICIT_LE]),
        (3, E.CT_STORAGE, [E.EXPLICIT_LE, E.IMPLICIT_LE]),
        (5, E.STUDY_ROOT_FIND, [E.IMPLICIT_LE]),
        (7, E.STUDY_ROOT_MOVE, [E.IMPLICIT_LE]),
        (9, E.MR_STORAGE, [E.JPEG_BASELINE, E.EXPLICIT_LE]),
    ]
    prims = [i.to_primitive() for i in rq.user_information.user_data]
    common = prims[6]
    assert common.sop_class_uid == E.ENHANCED_SR and common.service_class_uid == E.STORAGE_SERVICE_CLASS
    assert common.related_general_sop_class_identification == [E.BASIC_TEXT_SR, E.COMPREHENSIVE_SR]
    assert (prims[7].user_identity_type, prims[7].primary_field, prims[7].secondary_field) == (
        2, b"alice", b"s3cret")
    ac = A_ASSOCIATE_AC()
    ac.decode(E.A_ASSOCIATE_AC)
    assert [(c.context_id, c.result) for c in ac.presentation_context] == [
        (1, 0), (3, 1), (5, 2), (7, 3), (9, 4)]
    for k, v in E.A_ASSOCIATE_RJ.items():
        rj = A_ASSOCIATE_RJ()
        rj.decode(v)
        assert (rj.result, rj.source, rj.reason_diagnostic) == k
    for k, v in E.A_ABORT.items():
        ab = A_ABORT_RQ()
        ab.decode(v)
        assert (ab.source, ab.reason_diagnostic) == k
    assert A_RELEASE_RQ().encode() == E.A_RELEASE_RQ
    assert A_RELEASE_RP().encode() == E.A_RELEASE_RP


# ------------------------------------------------------------ A-ASSOCIATE-RQ
def test_associate_rq_every_field():
    a = P.decode_associate(body(E.A_ASSOCIATE_RQ), True)
    assert a.problems == []
    assert a.is_request
    assert a.protocol_version == 1
    assert a.called_ae_raw == b"ANY-SCP         " and a.calling_ae_raw == b"ECHOSCU         "
    assert (a.called_ae, a.calling_ae) == ("ANY-SCP", "ECHOSCU")
    assert a.application_context == P.DICOM_APPLICATION_CONTEXT
    assert a.contexts_ac == [] and a.unknown_items == []
    assert a.contexts_rq == [
        P.PresentationContextRQ(1, E.VERIFICATION, [E.IMPLICIT_LE]),
        P.PresentationContextRQ(3, E.CT_STORAGE, [E.EXPLICIT_LE, E.IMPLICIT_LE]),
        P.PresentationContextRQ(5, E.STUDY_ROOT_FIND, [E.IMPLICIT_LE]),
        P.PresentationContextRQ(7, E.STUDY_ROOT_MOVE, [E.IMPLICIT_LE]),
        P.PresentationContextRQ(9, E.MR_STORAGE, [E.JPEG_BASELINE, E.EXPLICIT_LE]),
    ]
    ui = a.user_info
    assert ui.maximum_length == 16384
    assert ui.implementation_class_uid == E.IMPL_UID_SCU
    assert ui.implementation_version_name == "TESTSCU_101"
    assert (ui.async_ops_invoked, ui.async_ops_performed) == (5, 3)
    assert ui.role_selections == [P.RoleSelection(E.CT_STORAGE, 0, 1)]
    assert ui.extended_negotiations == [P.ExtendedNegotiation(E.STUDY_ROOT_FIND, b"\x01\x01\x01\x01")]
    assert ui.common_extended_negotiations == [P.CommonExtendedNegotiation(
        E.ENHANCED_SR, E.STORAGE_SERVICE_CLASS, [E.BASIC_TEXT_SR, E.COMPREHENSIVE_SR])]
    assert ui.user_identity == P.UserIdentityRQ(2, 1, b"alice", b"s3cret")
    assert ui.user_identity.type_text == "Username and passcode"
    assert ui.user_identity_response is None
    assert ui.unknown == []
    d = ui.to_json()
    assert d["async_operations_window"] == {"invoked": 5, "performed": 3}
    assert d["role_selections"] == [{"sop_class_uid": E.CT_STORAGE, "scu_role": 0, "scp_role": 1}]
    assert d["extended_negotiations"] == [{
        "sop_class_uid": E.STUDY_ROOT_FIND, "application_info": "01010101",
        "options": {"relational_queries": 1, "combined_date_time_matching": 1,
                    "fuzzy_semantic_matching_of_person_names": 1, "timezone_query_adjustment": 1}}]
    assert d["user_identity"] == {"type": 2, "type_text": "Username and passcode",
                                  "positive_response_requested": True, "primary_field": "alice",
                                  "primary_field_length": 5, "secondary_field_length": 6}
    # the passcode is never shown, the user name only when not redacted
    assert "s3cret" not in repr(ui.to_json()) and "alice" not in repr(ui.to_json(redact=True))


def test_extended_negotiation_query_flags():
    """PS3.4 C.5.1.1.1: the Study Root FIND application information bytes, in
    order (Wireshark decodes the same four)."""
    a = P.decode_associate(body(E.A_ASSOCIATE_RQ), True)
    assert tuple(a.user_info.extended_negotiations[0].application_info) == (1, 1, 1, 1)
    ac = P.decode_associate(body(E.A_ASSOCIATE_AC), False)
    assert ac.user_info.extended_negotiations[0].options == {
        "relational_queries": 1, "combined_date_time_matching": 0,
        "fuzzy_semantic_matching_of_person_names": 1, "timezone_query_adjustment": 0}


@pytest.mark.parametrize("uid, info, options", [
    ("1.2.840.10008.5.1.4.1.2.1.1", b"\x01", {"relational_queries": 1}),  # a short FIND answer
    ("1.2.840.10008.5.1.4.1.2.2.2", b"\x01", {"relational_retrieval": 1}),
    ("1.2.840.10008.5.1.4.1.2.3.3", b"\x00\x01", {"relational_retrieval": 0}),
    ("1.2.840.10008.5.1.4.31", b"\x01\x01", None),  # modality worklist: not decoded, kept raw
])
def test_extended_negotiation_options(uid, info, options):
    assert P.ExtendedNegotiation(uid, info).options == options


@pytest.mark.parametrize("item, primary", [
    (E.USER_IDENTITY_USERNAME, "alice"), (E.USER_IDENTITY_PASSCODE, "alice"),
    (E.USER_IDENTITY_KERBEROS, None), (E.USER_IDENTITY_SAML, None), (E.USER_IDENTITY_JWT, None)])
def test_user_identity_credentials_are_not_shown(item, primary):
    """A ticket, assertion or token is a credential, like the passcode: the
    summary shows its length only; a user name is shown unless redacted."""
    ui = P.decode_associate(body(E.associate_rq_with(item)), True).user_info
    d = ui.to_json()["user_identity"]
    assert d["primary_field"] == primary and d["primary_field_length"] == len(ui.user_identity.primary_field)
    assert ui.to_json(redact=True)["user_identity"]["primary_field"] == (primary and "<redacted>")


# ------------------------------------------------------------ A-ASSOCIATE-AC
def test_associate_ac_every_field():
    a = P.decode_associate(body(E.A_ASSOCIATE_AC), False)
    assert a.problems == []
    assert not a.is_request and a.protocol_version == 1
    assert (a.called_ae, a.calling_ae) == ("ANY-SCP", "ECHOSCU")
    assert a.application_context == P.DICOM_APPLICATION_CONTEXT
    assert a.contexts_rq == []
    assert [(c.id, c.result, c.transfer_syntax) for c in a.contexts_ac] == [
        (1, 0, E.IMPLICIT_LE), (3, 1, E.IMPLICIT_LE), (5, 2, E.IMPLICIT_LE), (7, 3, E.IMPLICIT_LE), (9, 4, None)]
    assert [c.result_text for c in a.contexts_ac] == [
        "acceptance", "user-rejection", "no-reason (provider rejection)",
        "abstract-syntax-not-supported (provider rejection)",
        "transfer-syntaxes-not-supported (provider rejection)"]
    ui = a.user_info
    assert ui.maximum_length == 32768
    assert ui.implementation_class_uid == E.IMPL_UID_SCP  # the NUL pad is not part of the UID
    assert ui.implementation_version_name == "TESTSCP_102"
    assert (ui.async_ops_invoked, ui.async_ops_performed) == (1, 1)
    assert ui.role_selections == [P.RoleSelection(E.CT_STORAGE, 0, 1)]
    assert ui.extended_negotiations == [P.ExtendedNegotiation(E.STUDY_ROOT_FIND, b"\x01\x00\x01\x00")]
    assert ui.common_extended_negotiations == [] and ui.user_identity is None
    assert ui.user_identity_response == b""
    assert ui.to_json()["user_identity_response_length"] == 0


def test_pctx_result_texts_cover_table_9_18():
    assert P.PCTX_RESULTS == {
        0: "acceptance", 1: "user-rejection", 2: "no-reason (provider rejection)",
        3: "abstract-syntax-not-supported (provider rejection)",
        4: "transfer-syntaxes-not-supported (provider rejection)"}
    assert P.PresentationContextAC(1, 5, None).result_text == "reserved (5)"


def test_rq_and_ac_through_the_stack(tmp_path):
    """The golden RQ and AC on the wire: the association's contexts, roles,
    user information and the one note for the rejected contexts."""
    c = stack.conversation((0, E.A_ASSOCIATE_RQ), (1, E.A_ASSOCIATE_AC), (0, E.A_RELEASE_RQ),
                           (1, E.A_RELEASE_RP))
    dec, rec = stack.run(tmp_path, c)
    [a] = dec.associations
    assert (a.calling_ae, a.called_ae, a.result, a.end) == ("ECHOSCU", "ANY-SCP", "accepted", "released")
    ctx = {k: (v.abstract_syntax, v.proposed, v.result, v.transfer_syntax, v.result_text, v.reason_text)
           for k, v in a.contexts.items()}
    assert ctx == {
        1: (E.VERIFICATION, [E.IMPLICIT_LE], 0, E.IMPLICIT_LE, "accepted", None),
        3: (E.CT_STORAGE, [E.EXPLICIT_LE, E.IMPLICIT_LE], 1, None, "rejected", "user-rejection"),
        5: (E.STUDY_ROOT_FIND, [E.IMPLICIT_LE], 2, None, "rejected", "no-reason (provider rejection)"),
        7: (E.STUDY_ROOT_MOVE, [E.IMPLICIT_LE], 3, None, "rejected",
            "abstract-syntax-not-supported (provider rejection)"),
        9: (E.MR_STORAGE, [E.JPEG_BASELINE, E.EXPLICIT_LE], 4, None, "rejected",
            "transfer-syntaxes-not-supported (provider rejection)"),
    }
    assert a.transfer_syntax(1) == E.IMPLICIT_LE and a.transfer_syntax(3) is None
    assert a.roles() == [{"sop_class_uid": E.CT_STORAGE, "proposed_scu": 0, "proposed_scp": 1,
                          "accepted_scu": 0, "accepted_scp": 1}]
    assert a.max_length(0) == 32768 and a.max_length(1) == 16384
    assert [(p.name, p.direction, p.length) for p in rec.pdus] == [
        ("A-ASSOCIATE-RQ", 0, 695), ("A-ASSOCIATE-AC", 1, 352), ("A-RELEASE-RQ", 0, 4), ("A-RELEASE-RP", 1, 4)]
    assert stack.expert_ids(dec) == {"dicom.pctx.rejected": 4}
    texts = sorted(e.message for e in dec.expert)
    assert "1 presentation context(s) rejected (user-rejection): 3 (CT Image Storage)" in texts


def _rq_ctx(cid, abstract=E.VERIFICATION):
    sub = (struct.pack(">BBH", 0x30, 0, len(abstract)) + abstract.encode()
           + b"\x40\x00\x00\x11" + E.IMPLICIT_LE.encode())
    return struct.pack(">BBH", 0x20, 0, 4 + len(sub)) + bytes([cid, 0, 0, 0]) + sub


def _ac_ctx(cid, result=0):
    return b"\x21\x00\x00\x19" + bytes([cid, 0, result, 0]) + b"\x40\x00\x00\x11" + E.IMPLICIT_LE.encode()


def test_context_ids_must_be_odd_and_unique(tmp_path):
    rq = E.associate_rq_with(contexts=_rq_ctx(1) + _rq_ctx(2) + _rq_ctx(1, E.CT_STORAGE))
    ac = E.associate_ac_with(contexts=_ac_ctx(1) + _ac_ctx(2))
    dec, rec = stack.run(tmp_path, stack.conversation((0, rq), (1, ac)))
    assert [e.message for e in dec.expert if e.id == "dicom.pctx.id.invalid"] == [
        "presentation context ID 2 is even (context IDs are odd)",
        "presentation context ID 1 is proposed twice (the later one is kept)"]
    assert dec.associations[0].contexts[1].abstract_syntax == E.CT_STORAGE


def test_ac_answers_each_proposed_context_and_only_those(tmp_path):
    rq = E.associate_rq_with(contexts=_rq_ctx(1) + _rq_ctx(3) + _rq_ctx(5))
    ac = E.associate_ac_with(contexts=_ac_ctx(1) + _ac_ctx(7, 3))
    dec, rec = stack.run(tmp_path, stack.conversation((0, rq), (1, ac)))
    assert [e.message for e in dec.expert if e.id.startswith("dicom.pctx.un")] == [
        "A-ASSOCIATE-AC answers presentation context 7, which the A-ASSOCIATE-RQ did not propose",
        "A-ASSOCIATE-AC has no answer for 2 proposed presentation context(s): 3, 5"]
    a = dec.associations[0]
    assert (a.contexts[3].result_text, a.contexts[7].abstract_syntax) == ("unknown", None)


def test_ac_without_a_captured_rq_is_not_checked_against_it(tmp_path):
    c = pcapgen.Conversation(handshake=False)
    c.send(1, E.associate_ac_with(contexts=_ac_ctx(7)))
    dec, rec = stack.run(tmp_path, c.close())
    assert [e.id for e in dec.expert if e.id.startswith("dicom.pctx")] == []
    assert dec.associations[0].contexts[7].transfer_syntax == E.IMPLICIT_LE


# ---------------------------------------------------------- user identity
@pytest.mark.parametrize("item, expected", [
    (E.USER_IDENTITY_USERNAME, (1, 0, b"alice", b"", "Username")),
    (E.USER_IDENTITY_PASSCODE, (2, 1, b"alice", b"s3cret", "Username and passcode")),
    (E.USER_IDENTITY_KERBEROS, (3, 1, b"\x60\x06\xa0\x03\x02\x01\x05\x00", b"", "Kerberos Service ticket")),
    (E.USER_IDENTITY_SAML, (4, 0, b'<saml:Assertion ID="a1"/>', b"", "SAML Assertion")),
    (E.USER_IDENTITY_JWT, (5, 1, b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", b"", "JSON Web Token (JWT)")),
])
def test_user_identity_types(item, expected):
    a = P.decode_associate(body(E.associate_rq_with(item)), True)
    assert a.problems == []
    u = a.user_info.user_identity
    assert (u.type, u.positive_response_requested, u.primary_field, u.secondary_field, u.type_text) == expected
    # pynetdicom reads the golden sub-item the same way
    rq = A_ASSOCIATE_RQ()
    rq.decode(E.associate_rq_with(item))
    prim = rq.user_information.user_data[-1].to_primitive()
    assert (prim.user_identity_type, int(prim.positive_response_requested), prim.primary_field,
            prim.secondary_field or b"") == expected[:4]


def test_user_identity_server_response():
    a = P.decode_associate(body(E.associate_ac_with(E.USER_IDENTITY_AC_KERBEROS)), False)
    assert a.problems == []
    assert a.user_info.user_identity_response == b"\x6f\x06\xa0\x03\x02\x01\x05\x00"
    assert a.user_info.to_json()["user_identity_response_length"] == 8


def test_user_identity_unknown_type_text():
    item = b"\x58\x00\x00\x08" b"\x09\x00" b"\x00\x02" b"xy" b"\x00\x00"
    a = P.decode_associate(body(E.associate_rq_with(item)), True)
    assert a.user_info.user_identity.type_text == "type 9"


# ------------------------------------------------------------ A-ASSOCIATE-RJ
RJ_REASON_TEXTS = {
    (1, 1): "no-reason-given", (1, 2): "application-context-name-not-supported",
    (1, 3): "calling-AE-title-not-recognized", (1, 7): "called-AE-title-not-recognized",
    (2, 1): "no-reason-given", (2, 2): "protocol-version-not-supported",
    (3, 1): "temporary-congestion", (3, 2): "local-limit-exceeded",
}
RJ_SOURCE_TEXTS = {1: "DICOM UL service-user", 2: "DICOM UL service-provider (ACSE related function)",
                   3: "DICOM UL service-provider (Presentation related function)"}


@pytest.mark.parametrize("key", sorted(E.A_ASSOCIATE_RJ))
def test_associate_rj_table_9_21(key):
    result, source, reason = key
    rj = P.decode_reject(body(E.A_ASSOCIATE_RJ[key]))
    assert rj.problems == []
    assert (rj.result, rj.source, rj.reason) == key
    assert rj.result_text == {1: "rejected-permanent", 2: "rejected-transient"}[result]
    assert rj.source_text == RJ_SOURCE_TEXTS[source]
    assert rj.reason_text == RJ_REASON_TEXTS[(source, reason)]
    assert rj.to_json() == {"result": result, "result_text": rj.result_text, "source": source,
                            "source_text": rj.source_text, "reason": reason, "reason_text": rj.reason_text}


def test_associate_rj_every_combination_has_a_golden_constant():
    assert {(r, s, x) for r in (1, 2) for (s, x) in RJ_REASON_TEXTS} == set(E.A_ASSOCIATE_RJ)


@pytest.mark.parametrize("key, texts", [
    ((1, 1, 4), ("rejected-permanent", "DICOM UL service-user", "reserved (4)")),
    ((1, 3, 0), ("rejected-permanent", "DICOM UL service-provider (Presentation related function)",
                 "reserved (0)")),
    ((3, 1, 1), ("reserved (3)", "DICOM UL service-user", "no-reason-given")),
    ((1, 4, 1), ("rejected-permanent", "reserved (4)", "reserved (1)")),
])
def test_associate_rj_reserved_values(key, texts):
    rj = P.decode_reject(body(E.A_ASSOCIATE_RJ_RESERVED[key]))
    assert (rj.result_text, rj.source_text, rj.reason_text) == texts


def test_associate_rj_through_the_stack(tmp_path):
    rq = pcapgen.assoc_rq("WRONGAE", "ECHOSCU")
    c = stack.conversation((0, rq), (1, E.A_ASSOCIATE_RJ[(1, 1, 7)]))
    dec, rec = stack.run(tmp_path, c)
    [a] = dec.associations
    assert (a.result, a.end, a.state, a.called_ae) == ("rejected", "rejected", "rejected", "WRONGAE")
    assert a.rj.to_json()["reason_text"] == "called-AE-title-not-recognized"
    assert [e.message for e in dec.expert if e.id == "dicom.assoc.reject"] == [
        "Association rejected: rejected-permanent, DICOM UL service-user: called-AE-title-not-recognized"]
    assert stack.expert_ids(dec) == {"dicom.assoc.reject": 1}


# ----------------------------------------------------- A-RELEASE, A-ABORT
ABORT_REASON_TEXTS = {0: "reason-not-specified", 1: "unrecognized-PDU", 2: "unexpected-PDU",
                      3: "reserved (3)", 4: "unrecognized-PDU parameter", 5: "unexpected-PDU parameter",
                      6: "invalid-PDU-parameter value"}


@pytest.mark.parametrize("key", sorted(E.A_ABORT))
def test_abort_table_9_26(key):
    source, reason = key
    ab = P.decode_abort(body(E.A_ABORT[key]))
    assert ab.problems == [] and (ab.source, ab.reason) == key
    if source == 0:
        assert ab.source_text == "DICOM UL service-user (initiated abort)"
        assert ab.reason_text == "not significant (service-user abort)"
        assert ab.by == "service-user"
    elif source == 1:
        assert (ab.source_text, ab.reason_text, ab.by) == ("reserved", "reserved", "reserved source")
    else:
        assert ab.source_text == "DICOM UL service-provider (initiated abort)"
        assert ab.reason_text == ABORT_REASON_TEXTS[reason]
        assert ab.by == "service-provider"
    assert ab.to_json() == {"source": source, "source_text": ab.source_text, "reason": reason,
                            "reason_text": ab.reason_text}


@pytest.mark.parametrize("direction", [0, 1])
def test_abort_through_the_stack(tmp_path, direction):
    c = stack.conversation((0, pcapgen.assoc_rq()), (1, pcapgen.assoc_ac()), (direction, E.A_ABORT[(2, 2)]))
    dec, rec = stack.run(tmp_path, c)
    [a] = dec.associations
    assert (a.end, a.abort_by, a.abort.reason_text) == ("aborted", direction, "unexpected-PDU")
    who = "requestor" if direction == 0 else "acceptor"
    assert [e.message for e in dec.expert] == [
        f"Association aborted: A-ABORT from the {who} (DICOM UL service-provider (initiated abort)): "
        "unexpected-PDU"]


def test_release_through_the_stack(tmp_path):
    c = stack.conversation((0, pcapgen.assoc_rq()), (1, pcapgen.assoc_ac()), (0, E.A_RELEASE_RQ),
                           (1, E.A_RELEASE_RP))
    dec, rec = stack.run(tmp_path, c)
    [a] = dec.associations
    assert (a.state, a.end) == ("released", "released")
    assert a.release_rq_time is not None and a.release_rp_time > a.release_rq_time
    assert [(p.name, p.body) for p in rec.pdus[2:]] == [("A-RELEASE-RQ", bytes(4)), ("A-RELEASE-RP", bytes(4))]
    assert dec.expert == []


# --------------------------------------------------------- unknown items
def test_unknown_items_are_kept_raw():
    a = P.decode_associate(body(E.A_ASSOCIATE_RQ_UNKNOWN_ITEMS), True)
    assert a.unknown_items == [(0x60, b"abc")]
    assert a.user_info.unknown == [(0x5A, b"\x01\x02")]
    assert a.contexts_rq == [P.PresentationContextRQ(1, E.VERIFICATION, [E.IMPLICIT_LE])]
    assert a.user_info.maximum_length == 16384
    assert a.problems == [
        ("dicom.assoc.item.unknown", {"where": "presentation context", "type": 0x41, "length": 4}),
        ("dicom.assoc.item.unknown", {"where": "A-ASSOCIATE-RQ", "type": 0x60, "length": 3}),
        ("dicom.assoc.item.unknown", {"where": "user information", "type": 0x5A, "length": 2}),
    ]
    assert a.user_info.to_json()["unknown_items"] == [{"type": 0x5A, "data": "0102"}]


def test_context_item_of_the_other_pdu_is_unknown():
    """A 0x21 (AC context) in an RQ, and a 0x20 in an AC, are not decoded as contexts."""
    rq = P.decode_associate(body(E.associate_rq_with(contexts=E.PCTX_AC_ACCEPTED_NO_TRANSFER)), True)
    assert rq.contexts_rq == [] and rq.unknown_items == [(0x21, b"\x01\x00\x00\x00")]
    assert ids(rq.problems) == ["dicom.assoc.item.unknown"]
    ac = P.decode_associate(body(E.associate_ac_with(contexts=E.PCTX_NO_TRANSFER)), False)
    assert ac.contexts_ac == [] and [t for t, _ in ac.unknown_items] == [0x20]


# ------------------------------------------------------------- malformed
def test_context_without_abstract_syntax():
    a = P.decode_associate(body(E.associate_rq_with(contexts=E.PCTX_NO_ABSTRACT)), True)
    assert a.contexts_rq == [P.PresentationContextRQ(1, None, [E.IMPLICIT_LE])]
    assert a.problems == [("dicom.no_abstract_syntax", {"id": 1})]


def test_context_with_two_abstract_syntaxes():
    a = P.decode_associate(body(E.associate_rq_with(contexts=E.PCTX_TWO_ABSTRACT)), True)
    assert a.contexts_rq == [P.PresentationContextRQ(1, E.VERIFICATION, [E.IMPLICIT_LE])]  # the first
    assert a.problems == [("dicom.multiple_abstract_syntax", {"id": 1})]


def test_context_without_transfer_syntax():
    a = P.decode_associate(body(E.associate_rq_with(contexts=E.PCTX_NO_TRANSFER)), True)
    assert a.contexts_rq == [P.PresentationContextRQ(1, E.VERIFICATION, [])]
    assert a.problems == [("dicom.no_transfer_syntax", {"id": 1})]


def test_context_with_empty_abstract_syntax():
    a = P.decode_associate(body(E.associate_rq_with(contexts=E.PCTX_EMPTY_ABSTRACT)), True)
    assert a.contexts_rq == [P.PresentationContextRQ(1, None, [E.IMPLICIT_LE])]
    assert a.problems == [("dicom.no_abstract_syntax_uid", {"id": 1})]


def test_ac_context_with_two_transfer_syntaxes():
    a = P.decode_associate(body(E.associate_ac_with(contexts=E.PCTX_AC_TWO_TRANSFER)), False)
    # like Wireshark, the last one is the one applied
    assert [(c.id, c.result, c.transfer_syntax) for c in a.contexts_ac] == [(1, 0, E.IMPLICIT_LE)]
    assert a.problems == [("dicom.multiple_transfer_syntax", {"id": 1, "count": 2})]


def test_ac_context_accepted_without_transfer_syntax():
    a = P.decode_associate(body(E.associate_ac_with(contexts=E.PCTX_AC_ACCEPTED_NO_TRANSFER)), False)
    assert [(c.id, c.result, c.transfer_syntax) for c in a.contexts_ac] == [(1, 0, None)]
    assert a.problems == [("dicom.no_transfer_syntax", {"id": 1})]


def test_rejected_context_without_transfer_syntax_is_fine():
    a = P.decode_associate(body(E.A_ASSOCIATE_AC), False)
    assert a.contexts_ac[-1].result == 4 and a.contexts_ac[-1].transfer_syntax is None
    assert a.problems == []


def test_item_length_overrunning_the_pdu():
    a = P.decode_associate(body(E.associate_rq_with(contexts=E.PCTX_OVERRUN)), True)
    # the context item claims 256 bytes: it swallows the user information item
    [(expert, kw)] = [p for p in a.problems if p[0] == "dicom.assoc.item.len.invalid"]
    assert kw["type"] == 0x20 and kw["length"] == 256 and kw["room"] < 256
    assert a.contexts_rq[0].id == 1 and a.contexts_rq[0].abstract_syntax == E.VERIFICATION
    assert a.user_info.maximum_length is None


def test_sub_item_length_overrunning_the_user_information():
    item = b"\x52\x00\x00\x40" b"1.2.3"  # implementation class UID claiming 64 bytes
    a = P.decode_associate(body(E.associate_rq_with(item)), True)
    assert a.user_info.maximum_length == 16384
    assert ("dicom.assoc.item.len.invalid", {"type": 0x52, "length": 64, "room": 5}) in a.problems


def test_zero_length_top_level_item():
    a = P.decode_associate(body(E.A_ASSOCIATE_RQ_ZERO_LENGTH_ITEM), True)
    assert a.application_context is None
    assert a.problems == [
        ("dicom.assoc.item.len.invalid", {"type": 0x10, "length": 0, "room": 0}),
        ("dicom.assoc.pdu.malformed", {"pdu": "A-ASSOCIATE-RQ", "why": "no application context item"}),
    ]


def test_zero_length_item_does_not_stop_the_decoding():
    """Unlike Wireshark, items after a zero-length one are still decoded."""
    zero_ui = b"\x50\x00\x00\x00"
    a = P.decode_associate(body(E.associate_rq_with(extra_items=zero_ui)), True)
    assert ids(a.problems) == ["dicom.assoc.item.len.invalid"]
    assert a.user_info.maximum_length == 16384 and len(a.contexts_rq) == 1


def test_truncated_fixed_part():
    a = P.decode_associate(body(E.A_ASSOCIATE_RQ_TRUNCATED), True)
    assert a.protocol_version == 1 and a.called_ae == "ANY-SCP" and a.calling_ae == "ECHOSCU"
    assert a.contexts_rq == [] and a.application_context is None
    assert a.problems == [("dicom.assoc.pdu.malformed", {
        "pdu": "A-ASSOCIATE-RQ", "why": "40 bytes, shorter than the 68-byte fixed part"})]
    tiny = P.decode_associate(b"\x00", False)
    assert ids(tiny.problems) == ["dicom.assoc.pdu.malformed"] and tiny.protocol_version == 0


def test_stray_bytes_after_the_last_item():
    a = P.decode_associate(body(E.associate_rq_with()) + b"\x00\x00", True)
    assert a.problems == [("dicom.assoc.pdu.malformed",
                           {"pdu": "A-ASSOCIATE-RQ", "why": "2 stray bytes after the last item"})]


@pytest.mark.parametrize("version, flagged", [(0x0001, False), (0x0003, False), (0x0002, True), (0, True)])
def test_protocol_version_bit_0(version, flagged):
    b = bytearray(body(E.associate_rq_with()))
    b[0:2] = version.to_bytes(2, "big")
    a = P.decode_associate(bytes(b), True)
    assert a.protocol_version == version
    assert (("dicom.assoc.version", {"version": version}) in a.problems) == flagged


@pytest.mark.parametrize("raw, why", [
    (b"STORESCU        ", None),
    (b"                ", "is empty"),
    (b"PACS\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "is padded with NUL characters instead of spaces"),
    (b"  PACS          ", "has leading spaces"),
    (b"PA\\CS           ", "contains characters not allowed in an AE title"),
    (b"PA\tCS           ", "contains characters not allowed in an AE title"),
])
def test_ae_titles(raw, why):
    assert P.ae_problem(raw) == why
    assert P.ae_text(raw) == raw.decode().strip(" \x00")


@pytest.mark.parametrize("pdu_bytes, is_request", [(E.A_ASSOCIATE_RQ, True), (E.A_ASSOCIATE_AC, False)])
def test_pdu_cut_by_the_capture(pdu_bytes, is_request):
    """At every cut point of a valid PDU: nothing reported (the core reports
    the truncation), no value cut short is kept, and what is kept is what
    the whole PDU holds."""
    whole = P.decode_associate(body(pdu_bytes), is_request)
    full = body(pdu_bytes)
    for n in range(len(full)):
        a = P.decode_associate(full[:n], is_request, truncated=True)
        assert a.problems == [], n
        assert a.application_context in (None, whole.application_context)
        ctxs, whole_ctxs = (a.contexts_rq, whole.contexts_rq) if is_request else (a.contexts_ac, whole.contexts_ac)
        assert ctxs[:-1] == whole_ctxs[:max(len(ctxs) - 1, 0)]
        if ctxs:
            last, ref = ctxs[-1], whole_ctxs[len(ctxs) - 1]
            if is_request:
                assert last.abstract_syntax in (None, ref.abstract_syntax)
                assert last.transfer_syntaxes == ref.transfer_syntaxes[:len(last.transfer_syntaxes)]
            else:
                assert (last.id, last.result) == (ref.id, ref.result)
                assert last.transfer_syntax in (None, ref.transfer_syntax)
        ui, ref = a.user_info, whole.user_info
        for f in ("maximum_length", "implementation_class_uid", "implementation_version_name", "async_ops_invoked",
                  "user_identity", "user_identity_response"):
            assert getattr(ui, f) in (None, getattr(ref, f)), (n, f)
        for f in ("role_selections", "extended_negotiations", "common_extended_negotiations"):
            assert getattr(ui, f) == getattr(ref, f)[:len(getattr(ui, f))], (n, f)
    # without the truncation flag, the same cut is malformed
    assert P.decode_associate(full[:len(full) - 3], is_request).problems


def test_pdu_cut_by_the_capture_through_the_stack(tmp_path):
    rq = pcapgen.assoc_rq(contexts=[(1, E.VERIFICATION, (E.IMPLICIT_LE,)), (3, E.CT_STORAGE, (E.IMPLICIT_LE,))])
    c = pcapgen.Conversation()
    c.send(0, rq[:6 + 143 + 8 + 29 + 10])  # the capture ends inside context 3's transfer syntax
    dec, rec = stack.run(tmp_path, c.close())
    assert stack.expert_ids(dec) == {"dicom.pdu.truncated": 1, "dicom.assoc.no_accept": 1}
    [a] = dec.associations
    assert {k: (v.abstract_syntax, v.proposed) for k, v in a.contexts.items()} == {
        1: (E.VERIFICATION, [E.IMPLICIT_LE]), 3: (E.CT_STORAGE, [])}
    assert rec.pdus[0].truncated


@pytest.mark.parametrize("decode", [P.decode_reject, P.decode_abort])
def test_short_reject_or_abort_cut_by_the_capture(decode):
    assert decode(b"\x00\x01", truncated=True).problems == []


def test_short_reject_and_abort():
    rj = P.decode_reject(b"\x00\x01")
    assert ids(rj.problems) == ["dicom.assoc.pdu.malformed"]
    ab = P.decode_abort(b"")
    assert ids(ab.problems) == ["dicom.assoc.pdu.malformed"]


@pytest.mark.parametrize("item, field", [
    (b"\x51\x00\x00\x02\x40\x00", "Maximum Length"),
    (b"\x53\x00\x00\x02\x00\x01", "Asynchronous Operations Window"),
    (b"\x54\x00\x00\x05\x00\x03" b"1.2", "SCP/SCU Role Selection"),  # no role bytes
    (b"\x54\x00\x00\x07\x00\x09" b"1.2.3", "SCP/SCU Role Selection"),  # UID overruns the item
    (b"\x56\x00\x00\x05\x00\x09" b"1.2", "SOP Class Extended Negotiation"),  # UID overruns
    (b"\x56\x00\x00\x01\x00", "SOP Class Extended Negotiation"),
    (b"\x57\x00\x00\x04\x00\x01" b"1\x00", "SOP Class Common Extended Negotiation"),  # service UID cut
    (b"\x57\x00\x00\x0b\x00\x01" b"1\x00\x01" b"2\x00\x08" b"\x00\x01" b"3",
     "SOP Class Common Extended Negotiation"),  # related list longer than the item
    (b"\x58\x00\x00\x02\x01\x00", "User Identity"),
    (b"\x58\x00\x00\x08\x01\x00\x00\x09" b"abcd", "User Identity"),  # primary overruns
    (b"\x59\x00\x00\x01\x00", "User Identity Server Response"),
    (b"\x59\x00\x00\x04\x00\x05" b"ab", "User Identity Server Response"),  # response overruns
])
def test_malformed_user_information_sub_items(item, field):
    a = P.decode_associate(body(E.associate_rq_with(item)), True)
    malformed = [kw["why"] for k, kw in a.problems if k == "dicom.assoc.pdu.malformed"]
    assert len(malformed) == 1 and malformed[0].startswith(field + " sub-item"), a.problems
    assert a.user_info.maximum_length == 16384  # the sub-items before it are kept


# ------------------------------------------------ pynetdicom's encoder
# Hypothesis: random A-ASSOCIATE-RQ/AC/RJ, A-ABORT, P-DATA-TF built with
# pynetdicom.pdu and pdu_primitives, encoded by pynetdicom, decoded here.
_AE_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+@ ")
ae_titles = st.text(_AE_CHARS, min_size=1, max_size=16).map(str.strip).filter(bool)
_component = st.one_of(st.just("0"), st.integers(1, 10**8).map(str))
uids = st.lists(_component, min_size=2, max_size=12).map(".".join).filter(lambda u: len(u) <= 64)
context_ids = st.lists(st.integers(0, 127).map(lambda n: 2 * n + 1), min_size=1, max_size=12, unique=True)
short_text = st.text(_AE_CHARS.filter(lambda c: c != " "), min_size=1, max_size=16)


@st.composite
def user_information(draw, request: bool):
    out = []
    ml = MaximumLengthNotification()
    ml.maximum_length_received = draw(st.integers(0, 2**32 - 1))
    out.append(ml)
    ic = ImplementationClassUIDNotification()
    ic.implementation_class_uid = draw(uids)
    out.append(ic)
    want = {}
    want["maximum_length"] = ml.maximum_length_received
    want["implementation_class_uid"] = ic.implementation_class_uid
    want["implementation_version_name"] = None
    if draw(st.booleans()):
        v = ImplementationVersionNameNotification()
        v.implementation_version_name = draw(short_text)
        out.append(v)
        want["implementation_version_name"] = v.implementation_version_name
    want["async"] = (None, None)
    if draw(st.booleans()):
        w = AsynchronousOperationsWindowNegotiation()
        w.maximum_number_operations_invoked = draw(st.integers(0, 65535))
        w.maximum_number_operations_performed = draw(st.integers(0, 65535))
        out.append(w)
        want["async"] = (w.maximum_number_operations_invoked, w.maximum_number_operations_performed)
    want["roles"] = []
    for sop in draw(st.lists(uids, max_size=4, unique=True)):
        r = SCP_SCU_RoleSelectionNegotiation()
        r.sop_class_uid = sop
        scu, scp = draw(st.tuples(st.booleans(), st.booleans()).filter(any))
        r.scu_role, r.scp_role = scu, scp
        out.append(r)
        want["roles"].append(P.RoleSelection(sop, int(scu), int(scp)))
    want["ext"] = []
    for sop in draw(st.lists(uids, max_size=3, unique=True)):
        x = SOPClassExtendedNegotiation()
        x.sop_class_uid = sop
        x.service_class_application_information = draw(st.binary(min_size=1, max_size=16))
        out.append(x)
        want["ext"].append(P.ExtendedNegotiation(sop, x.service_class_application_information))
    want["common"] = []
    want["identity"] = None
    want["identity_response"] = None
    if request:
        for sop in draw(st.lists(uids, max_size=3, unique=True)):
            c = SOPClassCommonExtendedNegotiation()
            c.sop_class_uid = sop
            c.service_class_uid = draw(uids)
            c.related_general_sop_class_identification = draw(st.lists(uids, max_size=4))
            out.append(c)
            want["common"].append(P.CommonExtendedNegotiation(
                sop, c.service_class_uid, list(c.related_general_sop_class_identification)))
        if draw(st.booleans()):
            u = UserIdentityNegotiation()
            u.user_identity_type = draw(st.integers(1, 5))
            u.positive_response_requested = draw(st.booleans())
            u.primary_field = draw(st.binary(min_size=1, max_size=200))
            if u.user_identity_type == 2:
                u.secondary_field = draw(st.binary(min_size=1, max_size=64))
            out.append(u)
            want["identity"] = P.UserIdentityRQ(u.user_identity_type, int(u.positive_response_requested),
                                                u.primary_field, u.secondary_field or b"")
    elif draw(st.booleans()):
        u = UserIdentityNegotiation()
        u.server_response = draw(st.binary(max_size=100))
        out.append(u)
        want["identity_response"] = u.server_response
    draw(st.randoms()).shuffle(out)  # sub-items may come in any order
    return out, want


def _check_user_info(ui: P.UserInformation, want):
    assert ui.maximum_length == want["maximum_length"]
    assert ui.implementation_class_uid == want["implementation_class_uid"]
    assert ui.implementation_version_name == want["implementation_version_name"]
    assert (ui.async_ops_invoked, ui.async_ops_performed) == want["async"]
    assert sorted(ui.role_selections, key=repr) == sorted(want["roles"], key=repr)
    assert sorted(ui.extended_negotiations, key=repr) == sorted(want["ext"], key=repr)
    assert sorted(ui.common_extended_negotiations, key=repr) == sorted(want["common"], key=repr)
    assert ui.user_identity == want["identity"]
    assert ui.user_identity_response == want["identity_response"]
    assert ui.unknown == []


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(called=ae_titles, calling=ae_titles, ids=context_ids, data=st.data())
def test_pynetdicom_associate_rq(called, calling, ids, data):
    rq = A_ASSOCIATE_RQ()
    rq.called_ae_title, rq.calling_ae_title = called, calling
    actx = ApplicationContextItem()
    actx.application_context_name = P.DICOM_APPLICATION_CONTEXT
    items, want_ctx = [actx], []
    for cid in ids:
        pc = PresentationContext()
        pc.context_id = cid
        pc.abstract_syntax = data.draw(uids)
        pc.transfer_syntax = data.draw(st.lists(uids, min_size=1, max_size=4, unique=True))
        it = PresentationContextItemRQ()
        it.from_primitive(pc)
        items.append(it)
        want_ctx.append(P.PresentationContextRQ(cid, pc.abstract_syntax, list(pc.transfer_syntax)))
    prims, want_ui = data.draw(user_information(True))
    ui = UserInformationItem()
    ui.from_primitive(prims)
    items.append(ui)
    rq.variable_items = items
    raw = rq.encode()
    a = P.decode_associate(body(raw), True)
    assert a.problems == []
    assert (a.called_ae, a.calling_ae, a.protocol_version) == (called, calling, 1)
    assert a.application_context == P.DICOM_APPLICATION_CONTEXT
    assert a.contexts_rq == want_ctx
    _check_user_info(a.user_info, want_ui)


@_SETTINGS
@given(called=ae_titles, calling=ae_titles, ids=context_ids, data=st.data())
def test_pynetdicom_associate_ac(called, calling, ids, data):
    ac = A_ASSOCIATE_AC()
    ac._reserved_aet, ac._reserved_aec = called, calling  # echoed AE titles (not to be tested)
    actx = ApplicationContextItem()
    actx.application_context_name = P.DICOM_APPLICATION_CONTEXT
    items, want_ctx = [actx], []
    for cid in ids:
        pc = PresentationContext()
        pc.context_id = cid
        pc.abstract_syntax = "1.2.3"  # not sent in an AC
        result = data.draw(st.integers(0, 4))
        ts = data.draw(uids)
        pc.transfer_syntax = [ts]
        pc.result = result
        it = PresentationContextItemAC()
        it.from_primitive(pc)
        items.append(it)
        want_ctx.append((cid, result, ts))
    prims, want_ui = data.draw(user_information(False))
    ui = UserInformationItem()
    ui.from_primitive(prims)
    items.append(ui)
    ac.variable_items = items
    raw = ac.encode()
    a = P.decode_associate(body(raw), False)
    assert a.problems == []
    assert [(c.id, c.result, c.transfer_syntax) for c in a.contexts_ac] == want_ctx
    assert [c.result_text for c in a.contexts_ac] == [P.PCTX_RESULTS[r] for _, r, _ in want_ctx]
    _check_user_info(a.user_info, want_ui)


@given(result=st.integers(1, 2), source_reason=st.sampled_from(sorted(RJ_REASON_TEXTS)))
def test_pynetdicom_associate_rj(result, source_reason):
    source, reason = source_reason
    prim = A_ASSOCIATE()
    prim.result, prim.result_source, prim.diagnostic = result, source, reason
    raw = A_ASSOCIATE_RJ(prim).encode()
    assert raw == E.A_ASSOCIATE_RJ[(result, source, reason)]
    rj = P.decode_reject(body(raw))
    assert (rj.result, rj.source, rj.reason, rj.reason_text) == (
        result, source, reason, RJ_REASON_TEXTS[(source, reason)])


@given(provider=st.booleans(), reason=st.sampled_from([0, 1, 2, 4, 5, 6]), user_source=st.sampled_from([0, 2]))
def test_pynetdicom_abort(provider, reason, user_source):
    if provider:
        prim = A_P_ABORT()
        prim.provider_reason = reason
        want = (2, reason)
    else:
        prim = A_ABORT()
        prim.abort_source = user_source
        want = (user_source, 0)
    raw = A_ABORT_RQ(prim).encode()
    assert raw == E.A_ABORT[want]
    ab = P.decode_abort(body(raw))
    assert (ab.source, ab.reason) == want


def test_pynetdicom_release():
    assert A_RELEASE_RQ().encode() == E.A_RELEASE_RQ and A_RELEASE_RP().encode() == E.A_RELEASE_RP


@settings(max_examples=40, deadline=None)
@given(pdvs=st.lists(st.tuples(st.integers(0, 127).map(lambda n: 2 * n + 1), st.integers(0, 3),
                               st.binary(min_size=0, max_size=300)), min_size=1, max_size=6),
       segment=st.integers(1, 1448))
def test_pynetdicom_p_data_tf(tmp_path_factory, pdvs, segment):
    """P-DATA-TF PDUs from pynetdicom, cut into arbitrary TCP segments: every
    PDV's context ID, control header, length and bytes reach the decoder."""
    prim = P_DATA()
    prim.presentation_data_value_list = [[cid, bytes([mch]) + data] for cid, mch, data in pdvs]
    raw = P_DATA_TF(prim).encode()
    c = pcapgen.Conversation()
    c.send(0, pcapgen.assoc_rq()).send(1, pcapgen.assoc_ac())
    c.send(0, raw, segment=segment)
    c.close()
    dec, rec = stack.run(tmp_path_factory.mktemp("pdata"), c)
    [pd] = [p for p in rec.pdus if p.type == 4]
    assert pd.length == len(raw) - 6
    assert [(i.context_id, i.control, i.length) for i in pd.pdvs] == [
        (cid, mch, len(data) + 2) for cid, mch, data in pdvs]


def test_golden_p_data_tf(tmp_path):
    c = stack.conversation((0, pcapgen.assoc_rq()), (1, pcapgen.assoc_ac()), (0, E.P_DATA_TF))
    rq = P_DATA_TF()
    rq.decode(E.P_DATA_TF)
    items = rq.presentation_data_value_items
    assert [(v.presentation_context_id, v.presentation_data_value[:1]) for v in items] == [
        (1, b"\x03"), (1, b"\x00")]
    dec, rec = stack.run(tmp_path, c, keep_pdv_data=True)
    [pd] = [p for p in rec.pdus if p.type == 4]
    assert pd.length == 90
    assert [(i.context_id, i.control, i.length, bytes(i.data), i.is_command, i.is_last) for i in pd.pdvs] == [
        (1, 3, 70, E.C_ECHO_RQ, True, True), (1, 0, 12, b"0123456789", False, False)]
    assert pd.pdvs[0].command.name == "C-ECHO-RQ" and pd.pdvs[0].command.message_id == 7


def test_context_result_text_of_the_association():
    assert Ctx(1).result_text == "unknown"
    assert Ctx(1, result=0).result_text == "accepted" and Ctx(1, result=0).reason_text is None
    assert Ctx(1, result=9).reason_text == "reserved (9)"
