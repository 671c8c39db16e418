"""Every public and loopback capture (tests/data/public, tests/data/loopback)
decoded through fastdicom.capture.run: associations with AE titles and
results, operations with statuses, objects, and the exact expert infos.

The expected values were read off each capture with tshark 4.0.17 (see
tests/data/SOURCES.md and loopback/README.md for what each holds) and
checked by hand: no capture gets an error-severity expert info; the only
warnings are the ones its traffic deserves (profuzzbench's replayed clients
send PDUs before the A-ASSOCIATE-AC; ndpi's requests are never answered;
dcmtk aborts; a reject)."""

from __future__ import annotations

import struct
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import NamedTuple

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.filereader import read_dataset

import stack
from fastdicom.expert import Severity

DATA = Path(__file__).parent / "data"


class Case(NamedTuple):
    ports: tuple
    # (calling AE, called AE, result, end, contexts, accepted contexts,
    #  [(command, message ID, direction of the request, final status,
    #    pending responses, request data set bytes, response data set bytes)])
    associations: list
    objects: tuple  # (objects, complete objects)
    expert: dict  # expert ID -> count, exactly


CASES = {
    # pcapng, NULL link type: four A-ASSOCIATE-RQs (two of 16509 bytes, over
    # several segments) that the capture never shows answered
    "public/ndpi_dicom.pcap": Case((104,), [
        ("testclient", "testserver", "unknown", "incomplete", 4, 0, []),
        ("testclient", "testserver", "unknown", "incomplete", 123, 0, []),
        ("testclient", "testserver", "unknown", "incomplete", 123, 0, []),
        ("bogus_local", "bogus_remote", "unknown", "incomplete", 4, 0, []),
    ], objects=(0, 0), expert={"dicom.assoc.no_accept": 4}),
    "public/profuzzbench_dcmtk_echo.pcap": Case((5158,), [
        ("ECHOSCU", "ANY-SCP", "accepted", "released", 1, 1, [("C-ECHO", 1, 0, 0, 0, 0, 0)]),
    ], objects=(0, 0), expert={}),
    "public/profuzzbench_dcmtk_find.pcap": Case((5158,), [
        ("FINDSCU", "ANY-SCP", "accepted", "released", 1, 1, [("C-FIND", 1, 0, 0, 0, 34, 0)]),
    ], objects=(1, 1), expert={}),
    # the replayed client sends the C-GET-RQ, the C-STORE-RSP of the sub-operation
    # (whose C-STORE-RQ the capture does not hold) and the A-RELEASE-RQ before the
    # A-ASSOCIATE-AC; then the connection is reset
    "public/profuzzbench_dcmtk_get.pcap": Case((5158,), [
        ("GETSCU", "ANY-SCP", "accepted", "incomplete", 121, 121, [
            ("C-GET", 1, 0, None, 0, 32, 0),
            ("C-STORE", 1, 1, 0, 0, 0, 0),
        ]),
    ], objects=(1, 1), expert={"dicom.assoc.state": 5, "dicom.op.unmatched_response": 1,
                                "dicom.op.unanswered": 1, "dicom.assoc.no_release": 1}),
    # the replayed client sends the C-STORE-RQ and its data set before the AC
    "public/profuzzbench_dcmtk_store.pcap": Case((5158,), [
        ("STORESCU", "ANY-SCP", "accepted", "released", 128, 128, [("C-STORE", 1, 0, 0, 0, 808, 0)]),
    ], objects=(1, 1), expert={"dicom.assoc.state": 2}),
    "public/tapirxl_ct_to_pacs_scenario.pcap": Case((104,), [
        ("BRIGHTSPEED01", "CENTRICITY001", "accepted", "incomplete", 1, 1, [("C-STORE", 2001, 0, 0, 0, 96, 0)]),
    ], objects=(1, 1), expert={"dicom.assoc.no_release": 1}),
    "public/tapirxl_synthetic_philips_demo.pcap": Case((104,), [
        ("CT9999999", "CCPLATFORM", "accepted", "incomplete", 1, 1, [("C-STORE", 1337, 0, 0, 0, 80, 0)]),
    ], objects=(1, 1), expert={"dicom.assoc.no_release": 1}),
    "public/wireshark_samplecaptures_DICOM_C-ECHO-echoscu.pcap": Case((4242,), [
        ("ECHOSCU", "ANY-SCP", "accepted", "released", 1, 1, [("C-ECHO", 1, 0, 0, 0, 0, 0)]),
    ], objects=(0, 0), expert={}),
    "public/wireshark_samplecaptures_PROTO_gzip_C-ECHO.pcap.gz": Case((4242,), [
        ("ECHOSCU", "ANY-SCP", "accepted", "released", 1, 1, [("C-ECHO", 1, 0, 0, 0, 0, 0)]),
    ], objects=(0, 0), expert={}),
    "loopback/dcmtk_echoscu_assoc_reject_lo.pcap": Case((11114,), [
        ("ECHOSCU", "WRONGAE", "rejected", "rejected", 1, 0, []),
    ], objects=(0, 0), expert={"dicom.assoc.reject": 1}),
    "loopback/dcmtk_echoscu_storescp_lo.pcap": Case((11112,), [
        ("ECHOSCU", "STORESCP", "accepted", "released", 1, 1, [("C-ECHO", 1, 0, 0, 0, 0, 0)]),
    ], objects=(0, 0), expert={}),
    # C-FIND with two pending identifiers; C-GET whose C-STORE comes back on the same
    # association; C-MOVE whose C-STORE goes over a second association to MOVEDEST
    "loopback/dcmtk_qr_find_get_move_lo.pcap": Case((11113, 11114), [
        ("FINDSCU", "DCMQRSCP", "accepted", "released", 1, 1, [("C-FIND", 1, 0, 0, 2, 38, 254)]),
        ("GETSCU", "DCMQRSCP", "accepted", "released", 121, 121, [
            ("C-GET", 1, 0, 0, 1, 26, 0),
            ("C-STORE", 1, 1, 0, 0, 38732, 0),
        ]),
        ("MOVESCU", "DCMQRSCP", "accepted", "released", 2, 2, [("C-MOVE", 1, 0, 0, 1, 26, 0)]),
        ("DCMQRSCP", "MOVEDEST", "accepted", "released", 120, 120, [("C-STORE", 1, 0, 0, 0, 9358, 0)]),
    ], objects=(7, 7), expert={}),
    "loopback/dcmtk_storescu_4files_lo.pcap": Case((11112,), [
        ("STORESCU", "STORESCP", "accepted", "aborted", 128, 128, [
            ("C-STORE", 1, 0, 0, 0, 38732, 0),
            ("C-STORE", 2, 0, 0, 0, 9358, 0),
            ("C-STORE", 3, 0, 0, 0, 321360, 0),
        ]),
    ], objects=(3, 3), expert={"dicom.assoc.abort": 1}),
    "loopback/dcmtk_storescu_abort_after_assoc_lo.pcap": Case((11112,), [
        ("STORESCU", "STORESCP", "accepted", "aborted", 2, 2, []),
    ], objects=(0, 0), expert={"dicom.assoc.abort": 1}),
    "loopback/dcmtk_storescu_pdu4096_lo.pcap": Case((11112,), [
        ("STORESCU", "STORESCP", "accepted", "released", 128, 128, [("C-STORE", 1, 0, 0, 0, 321360, 0)]),
    ], objects=(1, 1), expert={}),
}


def test_every_capture_has_a_case():
    files = {str(p.relative_to(DATA)) for d in ("public", "loopback") for p in (DATA / d).iterdir()
             if p.suffix in (".pcap", ".gz", ".pcapng")}
    assert files == set(CASES)


_decoded = {}


def decoded(name):
    if name not in _decoded:
        _decoded[name] = stack.run_file(DATA / name, CASES[name].ports)
    return _decoded[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_capture(name):
    case = CASES[name]
    dec, rec = decoded(name)
    got = []
    for a in dec.associations:
        ops = [(o.command, o.message_id, o.direction, o.status, o.pending_responses, o.dataset_bytes,
                o.response_dataset_bytes) for o in a.operations]
        got.append((a.calling_ae, a.called_ae, a.result, a.end, len(a.contexts),
                    sum(c.accepted for c in a.contexts.values()), ops))
    assert got == case.associations
    assert (len(dec.objects), sum(t.complete for t in dec.objects)) == case.objects
    assert dict(Counter(e.id for e in dec.expert)) == case.expert
    assert [e.message for e in dec.expert if e.severity >= Severity.ERROR] == []
    # every operation reaches on_operation exactly once
    assert sorted(o.index for o in rec.operations) == sorted(o.index for a in dec.associations
                                                             for o in a.operations)


def test_gzip_capture_is_sniffed():
    from fastdicom import capture
    from fastdicom.decoder import Decoder
    infos = capture.run([str(DATA / "public/wireshark_samplecaptures_PROTO_gzip_C-ECHO.pcap.gz")], Decoder(),
                        capture.EngineOptions(ports=(4242,)))
    assert infos[0].compressed and infos[0].read_bytes > infos[0].size


def test_gzip_and_plain_wireshark_samples_agree():
    a = decoded("public/wireshark_samplecaptures_DICOM_C-ECHO-echoscu.pcap")[0].associations[0]
    b = decoded("public/wireshark_samplecaptures_PROTO_gzip_C-ECHO.pcap.gz")[0].associations[0]
    assert a.operations[0].latency == b.operations[0].latency
    assert a.rq.user_info.to_json() == b.rq.user_info.to_json()


def test_wireshark_sample_negotiation():
    dec, rec = decoded("public/wireshark_samplecaptures_DICOM_C-ECHO-echoscu.pcap")
    [a] = dec.associations
    assert a.flow.server_port == 4242
    [ctx] = a.contexts.values()
    assert (ctx.abstract_syntax, ctx.transfer_syntax) == ("1.2.840.10008.1.1", "1.2.840.10008.1.2")
    assert a.rq.application_context == "1.2.840.10008.3.1.1.1"
    [op] = a.operations
    assert op.status_text == "Success" and 0.04 < op.latency < 0.05  # frames 11 -> 15: 43.9 ms


def test_ndpi_requests():
    dec, rec = decoded("public/ndpi_dicom.pcap")
    assert [a.bytes[0] for a in dec.associations] == [683, 16509, 16509, 683]
    for a in dec.associations:
        ui = a.rq.user_info
        assert (ui.maximum_length, ui.implementation_version_name) == (4194304, "GODICOM_1_1")
        assert a.state == "awaiting-ac"
        assert all(c.proposed == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                                  "1.2.840.10008.1.2.1.99"] for c in a.contexts.values())


def test_profuzzbench_state_warnings():
    dec, _ = decoded("public/profuzzbench_dcmtk_get.pcap")
    assert [e.message for e in dec.expert if e.id == "dicom.assoc.state"] == [
        "P-DATA-TF unexpected in state awaiting-ac: P-DATA-TF before the A-ASSOCIATE-AC"] * 3 + [
        "A-RELEASE-RQ unexpected in state awaiting-ac: A-RELEASE-RQ before the association was accepted",
        "A-ASSOCIATE-AC unexpected in state release-rq-by-requestor: unexpected PDU in this state"]
    [a] = dec.associations
    assert len(a.roles()) == 120 and all(r["accepted_scp"] == 1 for r in a.roles())
    dec, _ = decoded("public/profuzzbench_dcmtk_store.pcap")
    assert [e.message for e in dec.expert] == [
        "P-DATA-TF unexpected in state awaiting-ac: P-DATA-TF before the A-ASSOCIATE-AC"] * 2
    [a] = dec.associations
    assert a.contexts[3].transfer_syntax == "1.2.840.10008.1.2.2"  # Explicit VR Big Endian accepted


def test_tapirxl_echoed_ae_titles():
    """The synthetic AC swaps the AE titles; PS3.8 says not to test them: the RQ's are used."""
    dec, _ = decoded("public/tapirxl_ct_to_pacs_scenario.pcap")
    [a] = dec.associations
    assert (a.ac.calling_ae, a.ac.called_ae) == ("CENTRICITY001", "BRIGHTSPEED01")
    assert (a.calling_ae, a.called_ae) == ("BRIGHTSPEED01", "CENTRICITY001")


def test_reject():
    dec, _ = decoded("loopback/dcmtk_echoscu_assoc_reject_lo.pcap")
    [a] = dec.associations
    assert (a.rj.result, a.rj.source, a.rj.reason) == (1, 1, 7)
    assert [e.message for e in dec.expert] == [
        "Association rejected: rejected-permanent, DICOM UL service-user: called-AE-title-not-recognized"]


@pytest.mark.parametrize("name", ["loopback/dcmtk_storescu_4files_lo.pcap",
                                  "loopback/dcmtk_storescu_abort_after_assoc_lo.pcap"])
def test_aborts(name):
    dec, _ = decoded(name)
    [a] = dec.associations
    assert (a.abort.source, a.abort.reason, a.abort_by) == (0, 0, 0)
    assert [e.message for e in dec.expert] == [
        "Association aborted: A-ABORT from the requestor (DICOM UL service-user (initiated abort))"]


def test_query_retrieve():
    dec, rec = decoded("loopback/dcmtk_qr_find_get_move_lo.pcap")
    find, get, move, sub = dec.associations
    [f] = find.operations
    assert [bytes(rec.data[t.index]).count(b"CompressedSamples^") for t in f.response_datasets] == [1, 1]
    assert [t.command.status for t in f.response_datasets] == [0xFF00, 0xFF00]
    g, store = get.operations
    assert g.counters == {"remaining": 0, "completed": 1, "failed": 0, "warning": 0}
    assert (store.context_id, store.direction, store.affected_sop_class_uid) == (
        33, 1, "1.2.840.10008.5.1.4.1.1.2")
    assert g.request_time < store.request_time < store.response_time < g.response_time
    [m] = move.operations
    assert (m.move_destination, m.counters["completed"], m.context_id) == ("MOVEDEST", 1, 3)
    [s] = sub.operations
    assert s.context_id == 99 and m.request_time < sub.start < s.response_time < m.response_time
    assert sub.flow.server_port == 11113 and move.flow.server_port == 11114


def _dataset(name):
    b = Path(get_testdata_file(name)).read_bytes()
    return b[144 + struct.unpack("<I", b[140:144])[0]:]


def test_stored_objects_are_pydicoms_test_files():
    """storescu sent CT_small, MR_small and examples_overlay: the data sets on
    the wire are those files' data sets (dcmtk drops the trailing padding)."""
    dec, rec = decoded("loopback/dcmtk_storescu_4files_lo.pcap")
    for t, name in zip(dec.objects, ("CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm")):
        wire = bytes(rec.data[t.index])
        ours = read_dataset(BytesIO(wire), False, True)
        theirs = dcmread(get_testdata_file(name))
        assert [e for e in theirs if e.tag != 0xFFFCFFFC] == list(ours)
        assert t.sha256 is not None and t.command.get("affected_sop_instance_uid") == theirs.SOPInstanceUID
    assert bytes(rec.data[dec.objects[2].index]) == _dataset("examples_overlay.dcm")
    dec, rec = stack.run_file(DATA / "loopback/dcmtk_storescu_pdu4096_lo.pcap", (11112,), keep_pdus=True)
    [t] = dec.objects
    assert bytes(rec.data[t.index]) == _dataset("examples_overlay.dcm")
    # "-pdu 4096" is what storescu receives; it sends up to the SCP's 16384
    [a] = dec.associations
    assert (a.max_length(1), a.max_length(0)) == (4096, 16384)
    sent = [p.length for p in rec.pdus if p.type == 4 and p.direction == 0]
    assert len(sent) == 21 and max(sent) == 16378  # one PDV each: the command, then 20 data fragments
    assert sum(n - 6 for n in sent) == len(t.command.raw_bytes) + 321360
