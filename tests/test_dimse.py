"""DIMSE command sets (PS3.7 9.3, 10.3, Annex E) and statuses (PS3.7 Annex C,
PS3.4 service annexes).

Command sets come from three sources: the hand-written golden bytes of
``encoded.py``, pynetdicom's DIMSE messages (every request and response of
PS3.7) encoded by ``pynetdicom.dsutils.encode``, and random command sets
written by pydicom.  pydicom's reading of the same bytes is the oracle for
every element."""

from __future__ import annotations

from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pynetdicom import dimse_messages as M
from pynetdicom import dimse_primitives as D
from pynetdicom import status as PS
from pynetdicom.dsutils import decode, encode

import encoded as E
import pcapgen
import stack
from fastdicom import dimse
from fastdicom import status as S
from fastdicom.dimse import parse_command

MPPS = "1.2.840.10008.3.1.2.3.3"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
STUDY_GET = pcapgen.STUDY_GET

# pydicom keyword -> fastdicom element name
KEYWORDS = {
    "CommandGroupLength": "group_length", "AffectedSOPClassUID": "affected_sop_class_uid",
    "RequestedSOPClassUID": "requested_sop_class_uid", "CommandField": "command_field",
    "MessageID": "message_id", "MessageIDBeingRespondedTo": "message_id_being_responded_to",
    "MoveDestination": "move_destination", "Priority": "priority",
    "CommandDataSetType": "command_data_set_type", "Status": "status",
    "OffendingElement": "offending_element", "ErrorComment": "error_comment", "ErrorID": "error_id",
    "AffectedSOPInstanceUID": "affected_sop_instance_uid",
    "RequestedSOPInstanceUID": "requested_sop_instance_uid", "EventTypeID": "event_type_id",
    "AttributeIdentifierList": "attribute_identifier_list", "ActionTypeID": "action_type_id",
    "NumberOfRemainingSuboperations": "remaining", "NumberOfCompletedSuboperations": "completed",
    "NumberOfFailedSuboperations": "failed", "NumberOfWarningSuboperations": "warning",
    "MoveOriginatorApplicationEntityTitle": "move_originator_ae",
    "MoveOriginatorMessageID": "move_originator_message_id",
}


def _tags(value) -> list:
    """pydicom's AT value (one tag, or a list of them) as (group, element) pairs."""
    values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    return [(int(t) >> 16, int(t) & 0xFFFF) for t in values]


def pydicom_view(raw: bytes) -> dict:
    """pydicom's reading of a command set, in fastdicom's names and types."""
    ds = decode(BytesIO(raw), True, True)
    out = {}
    for elem in ds:
        name = KEYWORDS[elem.keyword]
        v = elem.value
        if elem.VR == "AT":
            v = _tags(v)
        elif elem.VR in ("UI", "AE", "LO"):
            v = str(v).strip(" \x00")
        else:
            v = int(v)
        out[name] = v
    return out


def check_against_pydicom(raw: bytes) -> dimse.Command:
    cmd = parse_command(raw)
    assert cmd.problems == []
    assert cmd.elements == pydicom_view(raw)
    assert cmd.elements["group_length"] == len(raw) - 12
    return cmd


# ------------------------------------------------------------ golden bytes
GOLDEN = {
    "C_ECHO_RQ": ("C-ECHO-RQ", {
        "group_length": 56, "affected_sop_class_uid": E.VERIFICATION, "command_field": 0x0030,
        "message_id": 7, "command_data_set_type": 0x0101}),
    "C_ECHO_RSP": ("C-ECHO-RSP", {
        "group_length": 66, "affected_sop_class_uid": E.VERIFICATION, "command_field": 0x8030,
        "message_id_being_responded_to": 7, "command_data_set_type": 0x0101, "status": 0}),
    "C_STORE_RQ": ("C-STORE-RQ", {
        "group_length": 120, "affected_sop_class_uid": E.CT_STORAGE, "command_field": 0x0001,
        "message_id": 3, "priority": 2, "command_data_set_type": 0, "affected_sop_instance_uid": "1.2.3.4.5",
        "move_originator_ae": "MOVESCU", "move_originator_message_id": 99}),
    "C_STORE_RSP_WARNING": ("C-STORE-RSP", {
        "group_length": 108, "affected_sop_class_uid": E.CT_STORAGE, "command_field": 0x8001,
        "message_id_being_responded_to": 3, "command_data_set_type": 0x0101, "status": 0xB000,
        "error_comment": "coerced", "affected_sop_instance_uid": "1.2.3.4.5"}),
    "C_MOVE_RQ": ("C-MOVE-RQ", {
        "group_length": 92, "affected_sop_class_uid": E.STUDY_ROOT_MOVE, "command_field": 0x0021,
        "message_id": 11, "move_destination": "MOVEDEST", "priority": 1, "command_data_set_type": 0}),
    "C_MOVE_RSP_PENDING": ("C-MOVE-RSP", {
        "group_length": 116, "affected_sop_class_uid": E.STUDY_ROOT_MOVE, "command_field": 0x8021,
        "message_id_being_responded_to": 11, "command_data_set_type": 0x0101, "status": 0xFF00,
        "remaining": 4, "completed": 2, "failed": 1, "warning": 0}),
    "C_CANCEL_RQ": ("C-CANCEL-RQ", {
        "group_length": 30, "command_field": 0x0FFF, "message_id_being_responded_to": 11,
        "command_data_set_type": 0x0101}),
    "N_SET_RSP_FAILURE": ("N-SET-RSP", {
        "group_length": 110, "affected_sop_class_uid": MPPS, "command_field": 0x8120,
        "message_id_being_responded_to": 5, "command_data_set_type": 0x0101, "status": 0x0106,
        "offending_element": [(0x0008, 0x0020), (0x0010, 0x0010)], "error_id": 0x42,
        "affected_sop_instance_uid": "1.23"}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_command_sets(name):
    raw = getattr(E, name)
    expected_name, elements = GOLDEN[name]
    cmd = check_against_pydicom(raw)
    assert cmd.elements == elements
    assert cmd.name == expected_name and cmd.service == expected_name.rsplit("-", 1)[0]
    assert cmd.is_response == expected_name.endswith("-RSP")
    assert cmd.is_cancel == (expected_name == "C-CANCEL-RQ")
    assert cmd.has_data_set == (elements["command_data_set_type"] != 0x0101)
    assert cmd.message_id == elements.get("message_id")
    assert cmd.responded_id == elements.get("message_id_being_responded_to")
    assert cmd.status == elements.get("status")
    assert set(cmd.raw) == {e for e, (n, _) in dimse.COMMAND_ELEMENTS.items() if n in elements}


def test_padding_is_not_part_of_values():
    cmd = parse_command(E.C_STORE_RQ)
    assert cmd.raw[0x0002] == b"1.2.840.10008.5.1.4.1.1.2\x00"
    assert cmd.raw[0x1030] == b"MOVESCU   "
    assert cmd.get("affected_sop_class_uid") == E.CT_STORAGE and cmd.get("move_originator_ae") == "MOVESCU"


# --------------------------------------- every PS3.7 message via pynetdicom
DATA = BytesIO(b"\x10\x00\x10\x00\x04\x00\x00\x00Doe^")  # (0010,0010) PN "Doe^", implicit LE

# (primitive, message class, primitive attributes, expected fastdicom elements besides
#  group_length / command_field / command_data_set_type)
MESSAGES = [
    ("C_ECHO", "C_ECHO_RQ", {"MessageID": 1, "AffectedSOPClassUID": E.VERIFICATION},
     {"message_id": 1, "affected_sop_class_uid": E.VERIFICATION}),
    ("C_ECHO", "C_ECHO_RSP", {"MessageIDBeingRespondedTo": 1, "AffectedSOPClassUID": E.VERIFICATION,
                              "Status": 0x0211, "ErrorComment": "no such op"},
     {"message_id_being_responded_to": 1, "affected_sop_class_uid": E.VERIFICATION, "status": 0x0211,
      "error_comment": "no such op"}),
    ("C_STORE", "C_STORE_RQ", {"MessageID": 2, "AffectedSOPClassUID": E.CT_STORAGE,
                               "AffectedSOPInstanceUID": "1.2.3.4.5.6", "Priority": 1,
                               "MoveOriginatorApplicationEntityTitle": "MOVESCU",
                               "MoveOriginatorMessageID": 77, "DataSet": DATA},
     {"message_id": 2, "affected_sop_class_uid": E.CT_STORAGE, "affected_sop_instance_uid": "1.2.3.4.5.6",
      "priority": 1, "move_originator_ae": "MOVESCU", "move_originator_message_id": 77}),
    ("C_STORE", "C_STORE_RSP", {"MessageIDBeingRespondedTo": 2, "AffectedSOPClassUID": E.CT_STORAGE,
                                "AffectedSOPInstanceUID": "1.2.3.4.5.6", "Status": 0xA900,
                                "OffendingElement": [0x00100010], "ErrorComment": "bad class"},
     {"message_id_being_responded_to": 2, "affected_sop_class_uid": E.CT_STORAGE,
      "affected_sop_instance_uid": "1.2.3.4.5.6", "status": 0xA900, "offending_element": [(0x0010, 0x0010)],
      "error_comment": "bad class"}),
    ("C_FIND", "C_FIND_RQ", {"MessageID": 3, "AffectedSOPClassUID": E.STUDY_ROOT_FIND, "Priority": 0,
                             "Identifier": DATA},
     {"message_id": 3, "affected_sop_class_uid": E.STUDY_ROOT_FIND, "priority": 0}),
    ("C_FIND", "C_FIND_RSP", {"MessageIDBeingRespondedTo": 3, "AffectedSOPClassUID": E.STUDY_ROOT_FIND,
                              "Status": 0xFF01, "Identifier": DATA},
     {"message_id_being_responded_to": 3, "affected_sop_class_uid": E.STUDY_ROOT_FIND, "status": 0xFF01}),
    ("C_GET", "C_GET_RQ", {"MessageID": 4, "AffectedSOPClassUID": STUDY_GET, "Priority": 2, "Identifier": DATA},
     {"message_id": 4, "affected_sop_class_uid": STUDY_GET, "priority": 2}),
    ("C_GET", "C_GET_RSP", {"MessageIDBeingRespondedTo": 4, "AffectedSOPClassUID": STUDY_GET, "Status": 0xB000,
                            "NumberOfRemainingSuboperations": 0, "NumberOfCompletedSuboperations": 5,
                            "NumberOfFailedSuboperations": 2, "NumberOfWarningSuboperations": 1,
                            "Identifier": DATA},
     {"message_id_being_responded_to": 4, "affected_sop_class_uid": STUDY_GET, "status": 0xB000, "remaining": 0,
      "completed": 5, "failed": 2, "warning": 1}),
    ("C_MOVE", "C_MOVE_RQ", {"MessageID": 5, "AffectedSOPClassUID": E.STUDY_ROOT_MOVE, "Priority": 0,
                             "MoveDestination": "STORESCP", "Identifier": DATA},
     {"message_id": 5, "affected_sop_class_uid": E.STUDY_ROOT_MOVE, "priority": 0,
      "move_destination": "STORESCP"}),
    ("C_MOVE", "C_MOVE_RSP", {"MessageIDBeingRespondedTo": 5, "AffectedSOPClassUID": E.STUDY_ROOT_MOVE,
                              "Status": 0xA801, "ErrorComment": "unknown AE", "OffendingElement": [0x00000600],
                              "NumberOfFailedSuboperations": 3},
     {"message_id_being_responded_to": 5, "affected_sop_class_uid": E.STUDY_ROOT_MOVE, "status": 0xA801,
      "error_comment": "unknown AE", "offending_element": [(0x0000, 0x0600)], "failed": 3}),
    ("C_CANCEL", "C_CANCEL_RQ", {"MessageIDBeingRespondedTo": 3}, {"message_id_being_responded_to": 3}),
    ("N_EVENT_REPORT", "N_EVENT_REPORT_RQ", {"MessageID": 6, "AffectedSOPClassUID": STORAGE_COMMITMENT,
                                             "AffectedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE,
                                             "EventTypeID": 2, "EventInformation": DATA},
     {"message_id": 6, "affected_sop_class_uid": STORAGE_COMMITMENT,
      "affected_sop_instance_uid": STORAGE_COMMITMENT_INSTANCE, "event_type_id": 2}),
    ("N_EVENT_REPORT", "N_EVENT_REPORT_RSP", {"MessageIDBeingRespondedTo": 6,
                                              "AffectedSOPClassUID": STORAGE_COMMITMENT,
                                              "AffectedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE,
                                              "EventTypeID": 2, "Status": 0x0113, "ErrorID": 9,
                                              "ErrorComment": "no event"},
     {"message_id_being_responded_to": 6, "affected_sop_class_uid": STORAGE_COMMITMENT,
      "affected_sop_instance_uid": STORAGE_COMMITMENT_INSTANCE, "event_type_id": 2, "status": 0x0113,
      "error_id": 9, "error_comment": "no event"}),
    ("N_GET", "N_GET_RQ", {"MessageID": 7, "RequestedSOPClassUID": PRINTER,
                           "RequestedSOPInstanceUID": PRINTER_INSTANCE,
                           "AttributeIdentifierList": [0x21100010, 0x21100020]},
     {"message_id": 7, "requested_sop_class_uid": PRINTER, "requested_sop_instance_uid": PRINTER_INSTANCE,
      "attribute_identifier_list": [(0x2110, 0x0010), (0x2110, 0x0020)]}),
    ("N_GET", "N_GET_RSP", {"MessageIDBeingRespondedTo": 7, "AffectedSOPClassUID": PRINTER,
                            "AffectedSOPInstanceUID": PRINTER_INSTANCE, "Status": 0x0107,
                            "AttributeIdentifierList": [0x21100030], "AttributeList": DATA},
     {"message_id_being_responded_to": 7, "affected_sop_class_uid": PRINTER,
      "affected_sop_instance_uid": PRINTER_INSTANCE, "status": 0x0107,
      "attribute_identifier_list": [(0x2110, 0x0030)]}),
    ("N_SET", "N_SET_RQ", {"MessageID": 8, "RequestedSOPClassUID": MPPS, "RequestedSOPInstanceUID": "1.2.3.9",
                           "ModificationList": DATA},
     {"message_id": 8, "requested_sop_class_uid": MPPS, "requested_sop_instance_uid": "1.2.3.9"}),
    ("N_SET", "N_SET_RSP", {"MessageIDBeingRespondedTo": 8, "AffectedSOPClassUID": MPPS,
                            "AffectedSOPInstanceUID": "1.2.3.9", "Status": 0x0116,
                            "AttributeIdentifierList": [0x00400252], "ErrorComment": "clamped", "ErrorID": 1},
     {"message_id_being_responded_to": 8, "affected_sop_class_uid": MPPS,
      "affected_sop_instance_uid": "1.2.3.9", "status": 0x0116,
      "attribute_identifier_list": [(0x0040, 0x0252)], "error_comment": "clamped", "error_id": 1}),
    ("N_ACTION", "N_ACTION_RQ", {"MessageID": 9, "RequestedSOPClassUID": STORAGE_COMMITMENT,
                                 "RequestedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE, "ActionTypeID": 1,
                                 "ActionInformation": DATA},
     {"message_id": 9, "requested_sop_class_uid": STORAGE_COMMITMENT,
      "requested_sop_instance_uid": STORAGE_COMMITMENT_INSTANCE, "action_type_id": 1}),
    ("N_ACTION", "N_ACTION_RSP", {"MessageIDBeingRespondedTo": 9, "AffectedSOPClassUID": STORAGE_COMMITMENT,
                                  "AffectedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE, "ActionTypeID": 1,
                                  "Status": 0x0000},
     {"message_id_being_responded_to": 9, "affected_sop_class_uid": STORAGE_COMMITMENT,
      "affected_sop_instance_uid": STORAGE_COMMITMENT_INSTANCE, "action_type_id": 1, "status": 0}),
    ("N_CREATE", "N_CREATE_RQ", {"MessageID": 10, "AffectedSOPClassUID": FILM_SESSION, "AttributeList": DATA},
     {"message_id": 10, "affected_sop_class_uid": FILM_SESSION}),
    ("N_CREATE", "N_CREATE_RSP", {"MessageIDBeingRespondedTo": 10, "AffectedSOPClassUID": FILM_SESSION,
                                  "AffectedSOPInstanceUID": "1.2.3.10", "Status": 0x0000, "AttributeList": DATA},
     {"message_id_being_responded_to": 10, "affected_sop_class_uid": FILM_SESSION,
      "affected_sop_instance_uid": "1.2.3.10", "status": 0}),
    ("N_DELETE", "N_DELETE_RQ", {"MessageID": 11, "RequestedSOPClassUID": FILM_SESSION,
                                 "RequestedSOPInstanceUID": "1.2.3.10"},
     {"message_id": 11, "requested_sop_class_uid": FILM_SESSION, "requested_sop_instance_uid": "1.2.3.10"}),
    ("N_DELETE", "N_DELETE_RSP", {"MessageIDBeingRespondedTo": 11, "AffectedSOPClassUID": FILM_SESSION,
                                  "AffectedSOPInstanceUID": "1.2.3.10", "Status": 0x0112, "ErrorID": 4},
     {"message_id_being_responded_to": 11, "affected_sop_class_uid": FILM_SESSION,
      "affected_sop_instance_uid": "1.2.3.10", "status": 0x0112, "error_id": 4}),
]
FIELD_OF = {name: code for code, name in dimse.COMMAND_FIELDS.items()}


def build_message(prim_name, msg_name, attrs):
    prim = getattr(D, prim_name)()
    for k, v in attrs.items():
        if isinstance(v, BytesIO):
            v = BytesIO(v.getvalue())
        setattr(prim, k, v)
    msg = getattr(M, msg_name)()
    msg.primitive_to_message(prim)
    return msg


def test_every_ps3_7_message_is_covered():
    assert {m[1].replace("_", "-") for m in MESSAGES} == set(dimse.COMMAND_FIELDS.values())


@pytest.mark.parametrize("prim_name, msg_name, attrs, expected", MESSAGES, ids=[m[1] for m in MESSAGES])
def test_pynetdicom_messages(prim_name, msg_name, attrs, expected):
    msg = build_message(prim_name, msg_name, attrs)
    raw = encode(msg.command_set, True, True)
    cmd = check_against_pydicom(raw)
    name = msg_name.replace("_", "-")
    with_data = any(isinstance(v, BytesIO) for v in attrs.values())
    assert cmd.elements == dict(expected, group_length=len(raw) - 12, command_field=FIELD_OF[name],
                                command_data_set_type=0x0001 if with_data else 0x0101)
    assert cmd.name == name and cmd.has_data_set == with_data
    assert cmd.is_response == name.endswith("-RSP")


# ----------------------------------------------- random command sets
_text = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -_.^"),
                min_size=1, max_size=64).map(str.strip).filter(bool)
_uid = st.lists(st.integers(0, 10**9).map(str), min_size=2, max_size=10).map(".".join).filter(
    lambda u: len(u) <= 64)
_us = st.integers(0, 0xFFFF)
_tag = st.integers(0, 0xFFFFFFFF)
_ELEMENT_VALUES = {
    "AffectedSOPClassUID": _uid, "RequestedSOPClassUID": _uid, "MessageID": _us,
    "MessageIDBeingRespondedTo": _us, "MoveDestination": _text.map(lambda s: s[:16].strip()).filter(bool),
    "Priority": st.integers(0, 2), "CommandDataSetType": _us, "Status": _us,
    "OffendingElement": st.lists(_tag, min_size=1, max_size=4), "ErrorComment": _text, "ErrorID": _us,
    "AffectedSOPInstanceUID": _uid, "RequestedSOPInstanceUID": _uid, "EventTypeID": _us,
    "AttributeIdentifierList": st.lists(_tag, min_size=1, max_size=8), "ActionTypeID": _us,
    "NumberOfRemainingSuboperations": _us, "NumberOfCompletedSuboperations": _us,
    "NumberOfFailedSuboperations": _us, "NumberOfWarningSuboperations": _us,
    "MoveOriginatorApplicationEntityTitle": _text.map(lambda s: s[:16].strip()).filter(bool),
    "MoveOriginatorMessageID": _us,
}


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(dimse.COMMAND_FIELDS)), data=st.data())
def test_random_command_sets_written_by_pydicom(field, data):
    ds = Dataset()
    ds.CommandField = field
    for kw in data.draw(st.sets(st.sampled_from(sorted(_ELEMENT_VALUES)))):
        setattr(ds, kw, data.draw(_ELEMENT_VALUES[kw]))
    ds.CommandGroupLength = 0
    ds.CommandGroupLength = len(encode(ds, True, True)) - 12
    raw = encode(ds, True, True)
    cmd = check_against_pydicom(raw)
    assert cmd.field == field


# ------------------------------------------------------------ malformed
def _el(elem, value: bytes, group=0) -> bytes:
    return group.to_bytes(2, "little") + elem.to_bytes(2, "little") + len(value).to_bytes(4, "little") + value


ECHO = _el(0x0100, b"\x30\x00") + _el(0x0110, b"\x01\x00")


@pytest.mark.parametrize("raw, problems, elements", [
    (ECHO + _el(0x0010, b"DATA", group=0x0008), [("dicom.command.malformed",
                                                  {"why": "element (0008,0010) outside group 0000"})],
     {"command_field": 0x30, "message_id": 1}),
    (ECHO + b"\x00\x00\x00\x08\x02", [("dicom.data.tag.missing", {"what": "command set"})],
     {"command_field": 0x30, "message_id": 1}),
    (ECHO + b"\x00\x00\x00\x08\x02\x00\x00\x00\x01",
     [("dicom.data.tag.missing", {"what": "command element (0000,0800)"})], {"command_field": 0x30, "message_id": 1}),
    (ECHO + b"\x00\x00\x00\x08\xff\xff\xff\xff",
     [("dicom.data.tag.missing", {"what": "command element (0000,0800)"})], {"command_field": 0x30, "message_id": 1}),
    (_el(0x0110, b"\x01\x00"), [("dicom.command.malformed", {"why": "no Command Field (0000,0100)"})],
     {"message_id": 1}),
    (_el(0x0100, b"\x42\x00"), [("dicom.command.unknown", {"field": 0x42})], {"command_field": 0x42}),
    (ECHO + _el(0x0900, b"\x00"), [("dicom.command.malformed", {"why": "(0000,0900) has 1 bytes"})],
     {"command_field": 0x30, "message_id": 1}),
    (b"", [("dicom.command.malformed", {"why": "no Command Field (0000,0100)"})], {}),
    # binary values of the wrong size: the first value is kept, the element flagged
    (ECHO + _el(0x0900, b"\x00\x00\x01\x00"), [("dicom.command.malformed", {"why": "(0000,0900) has 4 bytes"})],
     {"command_field": 0x30, "message_id": 1, "status": 0}),
    (ECHO + _el(0x0901, b"\x10\x00\x10\x00\x20\x00"),
     [("dicom.command.malformed", {"why": "(0000,0901) has 6 bytes"})],
     {"command_field": 0x30, "message_id": 1, "offending_element": [(0x10, 0x10)]}),
    (_el(0x0000, b"\x10\x00") + ECHO, [("dicom.command.malformed", {"why": "(0000,0000) has 2 bytes"})],
     {"command_field": 0x30, "message_id": 1}),
    # (0000,0000) must count the bytes after it
    (_el(0x0000, b"\x15\x00\x00\x00") + ECHO, [("dicom.command.malformed", {
        "why": "Command Group Length (0000,0000) is 21, the elements after it take 20 bytes"})],
     {"group_length": 21, "command_field": 0x30, "message_id": 1}),
    (_el(0x0000, b"\x14\x00\x00\x00") + ECHO, [], {"group_length": 20, "command_field": 0x30, "message_id": 1}),
])
def test_malformed_command_sets(raw, problems, elements):
    cmd = parse_command(raw)
    assert cmd.problems == problems
    assert cmd.elements == elements


def test_unknown_and_retired_elements_are_kept_raw():
    raw = ECHO + _el(0x4000, b"ATTN") + _el(0x5010, b"\x05\x00")
    cmd = parse_command(raw)
    assert cmd.problems == [] and cmd.raw[0x4000] == b"ATTN" and cmd.raw[0x5010] == b"\x05\x00"
    assert set(cmd.elements) == {"command_field", "message_id"}


def test_command_names():
    assert dimse.command_name(None) == "Command" and dimse.command_name(0x1234) == "Command 0x1234"
    assert dimse.service_of(0x0FFF) == "C-CANCEL" and dimse.service_of(0x8130) == "N-ACTION"
    assert dimse.PRIORITIES == {0: "MEDIUM", 1: "HIGH", 2: "LOW"}


# ---------------------------------------------------------------- status
# (service, status, class, text): PS3.7 Annex C, PS3.4 B.2.3 (C-STORE),
# C.4.1.1.4 (C-FIND), C.4.2.1.5 (C-MOVE), C.4.3.1.4 (C-GET)
STATUSES = [
    ("C-ECHO", 0x0000, "success", "Success"),
    ("C-STORE", 0x0000, "success", "Success"),
    ("C-MOVE", 0x0000, "success", "Sub-operations Complete - No Failures"),
    ("C-STORE", 0xB000, "warning", "Coercion of Data Elements"),
    ("C-MOVE", 0xB000, "warning", "Sub-operations Complete - One or more Failures or Warnings"),
    ("C-GET", 0xB000, "warning", "Sub-operations Complete - One or more Failures or Warnings"),
    ("C-STORE", 0xB006, "warning", "Elements Discarded"),
    ("C-STORE", 0xB007, "warning", "Data Set does not match SOP Class"),
    ("C-FIND", 0xB001, "warning",
     "Matching reached response limit, subsequent request may return additional matches"),
    ("C-ECHO", 0xB123, "warning", "Warning"),
    ("C-MOVE", 0xA801, "failure", "Refused: Move Destination unknown"),
    ("C-MOVE", 0xA701, "failure", "Refused: Out of Resources - Unable to calculate number of matches"),
    ("C-GET", 0xA702, "failure", "Refused: Out of Resources - Unable to perform sub-operations"),
    ("C-STORE", 0xA700, "failure", "Refused: Out of Resources"),
    ("C-STORE", 0xA7FF, "failure", "Refused: Out of Resources"),
    ("C-FIND", 0xA700, "failure", "Refused: Out of Resources"),
    ("C-FIND", 0xA7A7, "failure", "Refused: Out of Resources"),
    ("N-CREATE", 0xA710, "failure", "Refused: Out of Resources"),
    ("C-STORE", 0xA900, "failure", "Error: Data Set does not match SOP Class"),
    ("C-STORE", 0xA9FE, "failure", "Error: Data Set does not match SOP Class"),
    ("C-FIND", 0xA900, "failure", "Identifier does not match SOP Class"),
    ("C-MOVE", 0xA900, "failure", "Identifier does not match SOP Class"),
    ("C-STORE", 0xC000, "failure", "Error: Cannot understand"),
    ("C-STORE", 0xCFFF, "failure", "Error: Cannot understand"),
    ("C-FIND", 0xC001, "failure", "Failed: Unable to process"),
    ("C-GET", 0xC512, "failure", "Failed: Unable to process"),
    ("C-MOVE", 0xC000, "failure", "Failed: Unable to process"),
    ("C-ECHO", 0xC123, "failure", "Error: Cannot understand/Unable to process"),
    ("C-GET", 0xAA00, "failure", "None of the frames requested were found in the SOP Instance"),
    ("C-MOVE", 0xAA01, "failure", "Unable to create new object for this SOP Class"),
    ("C-GET", 0xAA02, "failure", "Unable to extract frames"),
    ("C-GET", 0xAA03, "failure", "Time-based request received for a non-time-based original SOP Instance"),
    ("C-MOVE", 0xAA04, "failure", "Invalid Request"),
    ("C-FIND", 0xFF00, "pending", "Pending: matches are continuing, current match supplied"),
    ("C-FIND", 0xFF01, "pending", "Pending: matches are continuing, one or more Optional Keys not supported"),
    ("C-MOVE", 0xFF00, "pending", "Pending: sub-operations are continuing"),
    ("C-GET", 0xFF00, "pending", "Pending: sub-operations are continuing"),
    ("C-ECHO", 0xFF01, "pending", "Pending: one or more Optional Keys were not supported"),
    ("C-FIND", 0xFE00, "cancel", "Matching terminated due to Cancel request"),
    ("C-MOVE", 0xFE00, "cancel", "Sub-operations terminated due to Cancel Indication"),
    ("C-STORE", 0xFE00, "cancel", "Cancel"),
    ("N-GET", 0x0001, "warning", "Requested optional Attributes are not supported"),
    ("N-SET", 0x0107, "warning", "Attribute list error"),
    ("N-SET", 0x0116, "warning", "Attribute value out of range"),
    ("C-STORE", 0x0122, "failure", "Refused: SOP class not supported"),
    ("C-FIND", 0x0122, "failure", "Refused: SOP class not supported"),
    ("C-STORE", 0x0124, "failure", "Refused: not authorized"),
    ("N-SET", 0x0106, "failure", "Invalid attribute value"),
    ("N-ACTION", 0x0123, "failure", "No such action type"),
    ("N-EVENT-REPORT", 0x0113, "failure", "No such event type"),
    ("C-STORE", 0x0111, "failure", "Duplicate SOP instance"),
    ("C-ECHO", 0x0211, "failure", "Unrecognized operation"),
    (None, 0x0110, "failure", "Processing failure"),
    ("C-STORE", 0x0002, "failure", "Failure"),
]


@pytest.mark.parametrize("service, code, cls, text", STATUSES, ids=[f"{s}-{c:04x}" for s, c, _, _ in STATUSES])
def test_status_meaning_and_class(service, code, cls, text):
    assert S.status_class(code) == cls
    assert S.status_text(service, code) == text


# the codes listed in Wireshark's status table (reference section 8.3): each has
# a meaning of its own here, for the service(s) that define it
WIRESHARK_CODES = [
    0x0000, 0x0001, 0x0105, 0x0106, 0x0107, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0116, 0x0117,
    0x0118, 0x0119, 0x0120, 0x0121, 0x0122, 0x0123, 0x0210, 0x0211, 0x0212, 0x0213, 0xA501, 0xA502, 0xA503,
    0xA504, 0xA505, 0xA510, 0xA700, 0xA701, 0xA702, 0xA801, 0xB000, 0xB006, 0xB007, 0xB101, 0xB102, 0xB104,
    0xB605, 0xC000, 0xC100, 0xC101, 0xC102, 0xC103, 0xC104, 0xC200, 0xC201, 0xC202, 0xC203, 0xFE00, 0xFF00,
    0xFF01,
]


@pytest.mark.parametrize("code", WIRESHARK_CODES, ids=[f"{c:04x}" for c in WIRESHARK_CODES])
def test_every_wireshark_status_has_a_meaning(code):
    texts = {S.status_text(service, code) for service in (
        None, "C-ECHO", "C-STORE", "C-FIND", "C-GET", "C-MOVE", "N-ACTION", "N-SET", "N-EVENT-REPORT")}
    assert texts - {"Warning", "Failure", "Unknown", "Error: Cannot understand/Unable to process"}


_PYNETDICOM_TABLES = [v for k, v in vars(PS).items() if k.endswith("_STATUS") and isinstance(v, dict)]


def test_status_class_agrees_with_pynetdicom():
    """Every code of every pynetdicom service table (PS3.4) has the same class here."""
    n = 0
    for table in _PYNETDICOM_TABLES:
        for code, (category, _) in table.items():
            assert S.status_class(code) == category.lower(), hex(code)
            n += 1
    assert n > 5000


@given(st.integers(0, 0xFFFF))
def test_status_class_of_any_code(code):
    cls = S.status_class(code)
    expected = (S.SUCCESS if code == 0 else S.PENDING if code in (0xFF00, 0xFF01) else S.CANCEL
                if code == 0xFE00 else S.WARNING if code in (0x0001, 0x0107, 0x0116) or code >> 12 == 0xB
                else S.FAILURE)
    assert cls == expected
    for service in (None, "C-STORE", "C-FIND", "C-GET", "C-MOVE", "C-ECHO", "N-SET"):
        assert S.status_text(service, code)


# ---------------------------------- one operation per service, on the wire
def _pdata_of(msg, context_id=1, max_pdu=16384) -> bytes:
    """The P-DATA-TF PDUs pynetdicom sends for a message."""
    from pynetdicom.pdu import P_DATA_TF
    return b"".join(P_DATA_TF(p).encode() for p in msg.encode_msg(context_id, max_pdu))


PAIRS = [(MESSAGES[i], MESSAGES[i + 1]) for i in range(len(MESSAGES) - 1)
         if MESSAGES[i][1].endswith("_RQ") and MESSAGES[i + 1][1].endswith("_RSP")]


@pytest.mark.parametrize("rq_def, rsp_def", PAIRS, ids=[p[0][0] for p in PAIRS])
def test_operation_per_service(tmp_path, rq_def, rsp_def):
    assert rq_def[0] == rsp_def[0]
    rq = build_message(*rq_def[:3])
    rsp = build_message(*rsp_def[:3])
    c = stack.conversation((0, pcapgen.assoc_rq(contexts=[(1, "1.2.3", (E.IMPLICIT_LE,))])),
                           (1, pcapgen.assoc_ac()), (0, _pdata_of(rq)), (1, _pdata_of(rsp)),
                           (0, pcapgen.release_rq()), (1, pcapgen.release_rp()))
    dec, rec = stack.run(tmp_path, c)
    [a] = dec.associations
    [op] = a.operations
    service = rq_def[0].replace("_", "-")
    rq_el, rsp_el = rq_def[3], rsp_def[3]
    assert (op.command, op.message_id, op.context_id, op.direction) == (service, rq_el["message_id"], 1, 0)
    assert op.affected_sop_class_uid == rq_el.get("affected_sop_class_uid", rq_el.get("requested_sop_class_uid"))
    assert op.affected_sop_instance_uid == rq_el.get("affected_sop_instance_uid",
                                                     rq_el.get("requested_sop_instance_uid"))
    assert op.move_destination == rq_el.get("move_destination")
    assert op.priority == rq_el.get("priority")
    status = rsp_el["status"]
    pending = S.status_class(status) == "pending"
    if pending:  # a pending response is not the final one: the operation stays unanswered
        assert (op.status, op.status_class, op.pending_responses) == (None, None, 1)
        assert stack.expert_ids(dec)["dicom.op.unanswered"] == 1
    else:
        assert (op.status, op.status_class, op.status_text) == (status, S.status_class(status),
                                                                S.status_text(service, status))
        assert op.pending_responses == 0
    assert op.error_comment == rsp_el.get("error_comment")
    assert op.counters == {k: rsp_el[k] for k in ("remaining", "completed", "failed", "warning") if k in rsp_el}
    rq_data = any(isinstance(v, BytesIO) for v in rq_def[2].values())
    rsp_data = any(isinstance(v, BytesIO) for v in rsp_def[2].values())
    assert op.dataset_bytes == (len(DATA.getvalue()) if rq_data else 0)
    assert op.response_dataset_bytes == (len(DATA.getvalue()) if rsp_data else 0)
    assert op.request_time < op.first_response_time
    if not pending:
        assert op.response_time == op.first_response_time and op.latency > 0
    assert rec.operations == [op]
    assert op.final is (None if pending else rec.commands[-1])
    assert [t.complete for t in dec.objects] == [True] * (rq_data + rsp_data)
    assert [t.command.name for t in dec.objects] == (
        [rq_def[1].replace("_", "-")] * rq_data + [rsp_def[1].replace("_", "-")] * rsp_data)


def test_command_keeps_its_bytes_once():
    """A command lives as long as the run: it keeps the command set's bytes
    (``raw_bytes``) and decodes ``raw`` from them on demand."""
    import tracemalloc
    from pcapgen import c_echo_rq
    raw = c_echo_rq(7)
    cmd = parse_command(raw)
    assert cmd.raw_bytes == bytes(raw)
    assert cmd.raw[0x0110] == (7).to_bytes(2, "little")
    assert not hasattr(cmd, "__dict__")  # slots: no per-instance dict
    tracemalloc.start()
    keep = [parse_command(raw) for _ in range(2000)]
    size = tracemalloc.get_traced_memory()[0] / len(keep)
    tracemalloc.stop()
    assert size < 700, size  # 450 B; 1,040 B when every element was kept a second time


# ------------------------------------------------------------ the twins
def _command_twins():
    import importlib

    from fastdicom import _pytagwalk
    from fastdicom.core import PURE_PYTHON
    if PURE_PYTHON:
        pytest.skip("the compiled core is not used with FASTDICOM_PURE_PYTHON=1")
    return _pytagwalk.command_values, importlib.import_module("fastdicom._core").command_values


_COMMAND_PIECES = st.one_of(
    st.builds(_el, st.sampled_from(sorted(dimse.COMMAND_ELEMENTS) + [0x4000, 0x5010, 0xFFFF]),
              st.binary(max_size=12)),
    st.builds(_el, st.integers(0, 0xFFFF), st.binary(max_size=6), st.sampled_from([0, 0, 8, 0xFFFE])),
    st.binary(max_size=10),
    st.just(b"\x00\x00\x00\x08\xff\xff\xff\xff"),
    st.builds(lambda e, t, pad: _el(e, t.encode("latin-1") + pad), st.sampled_from([0x0002, 0x0600, 0x0902, 0x1000]),
              st.text(st.characters(max_codepoint=255), max_size=12),
              st.sampled_from([b"", b" ", b"  ", b"\x00", b" \x00", b"\x00 "])),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_COMMAND_PIECES, max_size=8).map(b"".join))
def test_command_values_twins_agree(raw):
    """The compiled command set walk gives the pure-Python one's values,
    wrong sizes, end and problem, for any bytes."""
    py, c = _command_twins()
    assert c(raw, dimse.COMMAND_ELEMENTS) == py(raw, dimse.COMMAND_ELEMENTS)
    assert c(bytearray(raw), dimse.COMMAND_ELEMENTS) == py(raw, dimse.COMMAND_ELEMENTS)


def test_command_values_twins_agree_on_the_real_captures():
    from fastdicom import capture
    from fastdicom.decoder import Decoder
    from helpers import REAL, REAL_CAPTURES, ports_of
    py, c = _command_twins()
    seen = []
    real = dimse.parse_command

    def keep(buf):
        seen.append(bytes(buf))
        return real(buf)
    dimse.parse_command = keep
    try:
        for name in REAL_CAPTURES:
            path = REAL / f"{name}.pcap"
            capture.run([str(path)], Decoder(), capture.EngineOptions(ports=ports_of(path)), read_ahead=False)
    finally:
        dimse.parse_command = real
    assert len(seen) > 100
    for raw in seen:
        assert c(raw, dimse.COMMAND_ELEMENTS) == py(raw, dimse.COMMAND_ELEMENTS)
