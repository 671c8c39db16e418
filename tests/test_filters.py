"""Display filters (-Y): what each expression selects on the real captures
(PDUs, associations and operations of the summary, expert entries), the
errors and their caret, the CLI, and random filter text.

The expectations were worked out from the captures' contents (listed with
``fastdicom pdus``/``summary``), not copied from the implementation's output:
PDUs are given by the frame they end in (several PDUs can end in one frame),
summary selections as {association: [(command, status) of kept operations]},
expert selections as [(id, frame)].  ``ERR``: the filter uses a field that is
never present for that command, which is an error before reading.
"""

import functools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapgen as G
from fastdicom import capture, summary
from fastdicom.cli import main
from fastdicom.decoder import Decoder
from fastdicom.errors import FilterError
from fastdicom.filters import FIELDS, Filter, compile_filter, render_fields
from helpers import REAL, ports_of

ERR = "ERR"
RA, QR, NEG, NS, ECHO, V6 = "reject_abort", "query_retrieve", "negotiation", "nservices", "echo_dcmtk", \
    "ipv6_oddport"


class _Keep:
    def __init__(self, flt=None):
        self.recs = []
        self.flt = flt
        self.live = []  # the filter applied as each PDU completes (streaming)

    def on_pdu(self, rec):
        self.recs.append(rec)
        if self.flt is not None:
            self.live.append(self.flt.match_pdu(rec))


def _decode(path, ports, flt=None):
    keep = _Keep(flt)
    sink = summary.SummarySink()
    dec = Decoder([keep, sink], keep_pdus=True, keep_pdv_data=True)
    infos = capture.run([str(path)], dec, capture.EngineOptions(ports=ports))
    return keep, dec, summary.build(dec, infos, sink)


@functools.lru_cache(maxsize=None)
def decoded(name):
    path = REAL / f"{name}.pcap"
    keep, dec, doc = _decode(path, ports_of(path))
    return keep.recs, dec, doc


def pdu_frames(recs, flt):
    return [r.frame_last for r in recs if flt.match_pdu(r)]


def summary_selection(doc, flt):
    out = flt.select_summary(doc)
    return {a["id"]: [(op["command"], op["status"]) for op in a["operations"]] for a in out["associations"]}


def expert_selection(dec, flt):
    return [(e.id, e.frame) for e in dec.expert if flt.match_expert(e, dec)]


C0 = [("C-STORE", 0)]
QR_A1 = [("C-FIND", 0), ("C-FIND", 0), ("C-MOVE", 0), ("C-MOVE", 0xA801)]
RA_ALL_EXPERT = [("dicom.assoc.reject", 6), ("dicom.assoc.abort", 53), ("dicom.assoc.abort", 112),
                 ("dicom.op.unanswered", 112), ("dicom.assoc.reject", 121)]
QR_A1_A2_FRAMES = [90, 92, 94, 96] + [100] * 7 + [102, 104, 108, 110, 112, 130, 137, 143, 167, 179, 184,
                                                 186, 188, 189, 194, 194, 196, 198, 202, 204, 205]

# (capture, filter, PDU frames, summary selection, expert selection)
TABLE = [
    # PDU header; decimal and hex; ranges in a set
    (RA, "dicom.pdu.type == 4", [18, 33, 46, 50, 52, 81, 93, 106, 110], ERR, ERR),
    (RA, "dicom.pdu.type eq 0x07", [53, 112], ERR, ERR),
    (RA, "dicom.pdu.type in {1..3}", [4, 6, 14, 16, 71, 76, 119, 121], ERR, ERR),
    (RA, "dicom.pdu.len <= 4", [6, 53, 112, 121], ERR, ERR),
    # expert pseudo-fields: on the PDUs that carry them, associations that had them, the entries
    (RA, "dicom.assoc.reject or dicom.assoc.abort", [6, 53, 112, 121],
     {0: [], 1: C0, 2: [("C-STORE", None)], 3: []},
     [("dicom.assoc.reject", 6), ("dicom.assoc.abort", 53), ("dicom.assoc.abort", 112),
      ("dicom.assoc.reject", 121)]),
    (ECHO, "dicom.pdu.truncated", [32], {1: [("C-ECHO", None)]}, [("dicom.pdu.truncated", 32)]),
    # AE titles: the Wireshark field is on the A-ASSOCIATE PDUs, ours on every PDU
    (RA, 'dicom.assoc.ae.called == "WRONG_AE"', [4], {0: []}, [("dicom.assoc.reject", 6)]),
    (RA, 'dicom.assoc.called == "DCMTK"', [71, 76, 81, 93, 106, 110, 112, 119, 121],
     {2: [("C-STORE", None)], 3: []}, RA_ALL_EXPERT[2:]),
    (ECHO, 'dicom.assoc.ae.called == "STORESCP   "', [4, 6, 24, 26],
     {0: [("C-ECHO", 0)], 1: [("C-ECHO", None)]},
     [("dicom.pdu.truncated", 32), ("dicom.op.unanswered", 32), ("dicom.assoc.no_release", 32)]),
    (ECHO, r'dicom.assoc.ae.calling == "ECHO\x53CU2"', [24, 26], {1: [("C-ECHO", None)]},
     [("dicom.pdu.truncated", 32), ("dicom.op.unanswered", 32), ("dicom.assoc.no_release", 32)]),
    (ECHO, r'dicom.assoc.ae.calling matches r"^ECHO\w+2$"', [24, 26], {1: [("C-ECHO", None)]},
     [("dicom.pdu.truncated", 32), ("dicom.op.unanswered", 32), ("dicom.assoc.no_release", 32)]),
    (ECHO, r'dicom.assoc.ae.calling matches "^ECHO\\w+2$"', [24, 26], {1: [("C-ECHO", None)]},
     [("dicom.pdu.truncated", 32), ("dicom.op.unanswered", 32), ("dicom.assoc.no_release", 32)]),
    # UIDs: == the bare UID, contains/matches its name too
    (RA, 'dicom.pctx.abss.syntax contains "CT Image"', [4, 14, 71], {0: [], 1: C0, 2: [("C-STORE", None)]},
     RA_ALL_EXPERT[:4]),
    (RA, 'dicom.pctx.abss.syntax == "1.2.840.10008.1.1"', [119], {3: []}, [("dicom.assoc.reject", 121)]),
    (NEG, 'dicom.pctx.xfer.syntax matches "(?i)deflated"', [4], {0: [("C-ECHO", 0)]},
     [("dicom.pctx.rejected", 6)]),
    (NEG, 'dicom.actx contains "Application Context"', [4, 6], ERR, [("dicom.pctx.rejected", 6)]),
    (NEG, 'dicom.userinfo.rolesel.sopclassuid contains "CT Image"', [4, 6], {0: [("C-ECHO", 0)]},
     [("dicom.pctx.rejected", 6)]),
    (NEG, "dicom.pctx.result == 3", [6], {0: [("C-ECHO", 0)]}, [("dicom.pctx.rejected", 6)]),
    # Wireshark 4.0 multi-value semantics: == any, === all, != all (and present), !== any
    (RA, "dicom.pctx.id === 1", [4, 14, 16, 119], {0: [], 1: C0, 3: []},
     [("dicom.assoc.reject", 6), ("dicom.assoc.abort", 53), ("dicom.assoc.reject", 121)]),
    (RA, "dicom.pctx.id !== 1", [71, 76], {2: [("C-STORE", None)]}, RA_ALL_EXPERT[2:4]),
    (RA, "dicom.pctx.id != 1", [], {}, []),
    (RA, "not dicom.pctx.id == 1", [6, 18, 33, 46, 50, 52, 53, 81, 93, 106, 110, 112, 121], {}, []),
    (RA, "dicom.assoc.reject.result != 2", [6, 121], {0: [], 3: []},
     [("dicom.assoc.reject", 6), ("dicom.assoc.reject", 121)]),
    (RA, "dicom.assoc.reject.reason == 7", [6], {0: []}, [("dicom.assoc.reject", 6)]),
    (RA, "dicom.assoc.abort.source == 0", [53, 112], {1: C0, 2: [("C-STORE", None)]}, RA_ALL_EXPERT[1:4]),
    # PDVs
    (RA, "dicom.pdv.ctx == 41", [81, 93, 106, 110], ERR, ERR),
    (RA, "dicom.pdv.flags == 0x02", [50, 110], ERR, ERR),
    (RA, "dicom.pdv.flags in {0, 2}", [33, 46, 50, 93, 106, 110], ERR, ERR),
    (RA, "dicom.pdv.len > 16000", [33, 46, 93, 106], ERR, ERR),
    (RA, "dicom.pdv.reassembled.length > 30000", [50, 110], ERR, ERR),
    # element fields: command sets and completed data sets
    (RA, "dicom.tag == 0x00100010", [50, 110], ERR, ERR),
    (RA, 'dicom.tag.value.str == "CompressedSamples^CT1"', [50, 110], ERR, ERR),
    (NS, 'dicom.tag.value.str matches "^Doe"', [10, 14, 22], ERR, ERR),
    (NS, "dicom.tag == 1048592", [10, 14, 22], ERR, ERR),
    (NS, 'dicom.tag.vr == "PN" and dicom.tag.value.str contains "John"', [10, 14, 22], ERR, ERR),
    (QR, "dicom.tag.value.16u == 0xff00", [100, 100, 100, 194], ERR, ERR),
    (QR, 'dicom.tag.value.str == "MOVEDEST"', [110], ERR, ERR),
    # operations: the commands a PDU carries; in the summary, the operations themselves
    (QR, 'dicom.op.status_class == "failure"', [202], {1: [("C-MOVE", 0xA801)]}, ERR),
    (QR, "dicom.op.status == 0xa801", [202], {1: [("C-MOVE", 0xA801)]}, ERR),
    (QR, "dicom.op.status == 43009", [202], {1: [("C-MOVE", 0xA801)]}, ERR),
    (QR, 'dicom.op.status_class == "pending"', [100, 100, 100, 194], {}, ERR),
    (QR, "dicom.op.latency > 0.1", [194], {1: [("C-MOVE", 0)]}, ERR),
    (QR, "dicom.op.latency >= 0.08 and dicom.op.latency < 0.1", [100, 108], {1: QR_A1[:2]}, ERR),
    (QR, 'dicom.op.command in {"C-FIND" "C-MOVE"}', [94, 100, 100, 100, 100, 102, 108, 110, 194, 194, 196, 202],
     {1: QR_A1}, ERR),
    (QR, "dicom.op.message_id == 2", [61, 72], {0: C0}, ERR),
    (NS, 'dicom.op.command contains "N-"', [8, 12, 16, 20, 24, 28],
     {0: [("N-CREATE", 0), ("N-SET", 0), ("N-ACTION", 0)]}, ERR),
    (ECHO, "!dicom.op.status", [4, 6, 10, 16, 17, 24, 26, 30, 32], {1: [("C-ECHO", None)]}, ERR),
    (ECHO, 'dicom.op.command == "C-ECHO" and not dicom.assoc.calling == "ECHOSCU2"', [10, 14],
     {0: [("C-ECHO", 0)]}, ERR),
    # precedence: not > and > or
    (ECHO, "dicom.pdu.type == 5 or dicom.pdu.type == 6 and dicom.assoc.id == 1", [16], ERR, ERR),
    (ECHO, "(dicom.pdu.type == 5 or dicom.pdu.type == 6) and dicom.assoc.id == 1", [], ERR, ERR),
    (ECHO, "dicom.pdu.type == 5 || dicom.pdu.type == 6 && !dicom.assoc.id == 0", [16], ERR, ERR),
    # associations, endpoints, frames
    (QR, "dicom.assoc.id in {1..2}", QR_A1_A2_FRAMES, {1: QR_A1, 2: C0},
     [("dicom.pctx.rejected", 137), ("dicom.status.failure", 202)]),
    (QR, "ip.dst == 127.0.0.3", [130, 143, 167, 179, 184, 188], {2: C0}, [("dicom.pctx.rejected", 137)]),
    (QR, "tcp.port == 11113", [130, 137, 143, 167, 179, 184, 186, 188, 189], {2: C0},
     [("dicom.pctx.rejected", 137)]),
    (QR, "frame.number == 100", [100] * 7, ERR, []),
    (QR, "frame.number >= 250", [250], ERR, [("dicom.pdu.truncated", 250), ("dicom.assoc.no_release", 250)]),
    (V6, "ip.addr == ::1 and tcp.dstport == 4242", [4, 8, 23, 36, 40, 43, 51, 54], {0: C0 * 2}, []),
    # in the summary, the source is the client: its port is not 4242
    (V6, "ip.src in {::1} and tcp.srcport == 4242", [6, 42, 53, 55], {}, []),
    (V6, "ip.addr == 127.0.0.0/8", [], {}, []),
    # expert fields
    (QR, 'dicom.expert.severity == "error"', [202], {1: QR_A1}, [("dicom.status.failure", 202)]),
    (QR, 'dicom.expert.severity < "warning"', [], {2: C0, 3: []},
     [("dicom.pctx.rejected", 137), ("dicom.assoc.no_release", 250)]),
    (RA, 'dicom.expert.id == "dicom.assoc.abort"', [53, 112], {1: C0, 2: [("C-STORE", None)]},
     [("dicom.assoc.abort", 53), ("dicom.assoc.abort", 112)]),
    # negotiation items
    (NEG, "dicom.assoc.item.type == 0x54", [4, 6], ERR, ERR),
    (NEG, 'dicom.userinfo.user_identify.primary_field == "radiologist"', [4], {0: [("C-ECHO", 0)]},
     [("dicom.pctx.rejected", 6)]),
    (NEG, "dicom.userinfo.user_identify.secondary_field_length == 6", [4], {0: [("C-ECHO", 0)]},
     [("dicom.pctx.rejected", 6)]),
    (NEG, "dicom.userinfo.asyncneg.maxnumopsinv == 5 and dicom.userinfo.asyncneg.maxnumopsper == 3", [4],
     {0: [("C-ECHO", 0)]}, [("dicom.pctx.rejected", 6)]),
    (NEG, "dicom.userinfo.extneg.relational == 1", [4, 6], {0: [("C-ECHO", 0)]}, [("dicom.pctx.rejected", 6)]),
    (NEG, "dicom.max_pdu_len == 16382", [4, 6], {0: [("C-ECHO", 0)]}, [("dicom.pctx.rejected", 6)]),
    (NEG, r'dicom.userinfo.version matches "^PYNETDICOM_\\d+$"', [4, 6], {0: [("C-ECHO", 0)]},
     [("dicom.pctx.rejected", 6)]),
    (NS, "dicom.userinfo.user_identify", [], {}, []),
    # the protocol itself
    (NS, "dicom", [4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 29, 30],
     {0: [("N-CREATE", 0), ("N-SET", 0), ("N-ACTION", 0)]}, []),
]


@pytest.mark.parametrize("name, text, frames, assocs, experts", TABLE,
                         ids=[f"{c[0]}: {c[1]}" for c in TABLE])
def test_table(name, text, frames, assocs, experts):
    recs, dec, doc = decoded(name)
    flt = compile_filter(text)
    assert pdu_frames(recs, flt) == frames
    if assocs == ERR:
        with pytest.raises(FilterError, match="not available in 'fastdicom summary'"):
            compile_filter(text, command="summary")
    else:
        compile_filter(text, command="summary")
        assert summary_selection(doc, flt) == assocs
    if experts == ERR:
        with pytest.raises(FilterError, match="not available in 'fastdicom expert'"):
            compile_filter(text, command="expert")
    else:
        compile_filter(text, command="expert")
        assert expert_selection(dec, flt) == experts


def test_table_is_large_and_covers_every_operator():
    assert len(TABLE) >= 40
    texts = " ".join(c[1] for c in TABLE)
    for op in ("==", "!=", "===", "!==", "<", "<=", ">", ">=", " eq ", " contains ", " matches ", " in {",
               "..", " and ", " or ", "not ", "!", "&&", "||", "0x", r"\x53", r'r"', "(", "::1", "/8"):
        assert op in texts, op


# ---------------------------------------------------------------- summary
def test_summary_keeps_objects_and_expert_of_kept_operations():
    _, _, doc = decoded(QR)
    out = compile_filter('dicom.op.status_class == "failure"').select_summary(doc)
    assert out["filter"] == 'dicom.op.status_class == "failure"'
    # the failed C-MOVE's identifier (frame 198), not the first C-MOVE's (frame 112)
    assert [(o["command"], o["frame_first"]) for o in out["objects"]] == [("C-MOVE-RQ", 198)]
    assert [e["id"] for e in out["expert"]] == ["dicom.status.failure"]
    c = out["counts"]
    assert (c["associations"], c["operations"], c["objects"]) == (1, 1, 1)
    assert c["operations_by_command"] == {"C-MOVE": {"failure": 1}}
    assert c["expert_by_severity"] == {"error": 1}
    assert out["counts_unfiltered"] == doc["counts"]
    assert doc["associations"][1]["operations"] and len(doc["associations"][1]["operations"]) == 4  # untouched


def test_summary_association_filter_keeps_everything_of_the_association():
    _, _, doc = decoded(QR)
    out = compile_filter('dicom.assoc.calling == "VIEWER"').select_summary(doc)
    assert [a["id"] for a in out["associations"]] == [1]
    assert len(out["associations"][0]["operations"]) == 4
    assert {o["association"] for o in out["objects"]} == {1}
    assert len(out["objects"]) == sum(o["association"] == 1 for o in doc["objects"]) == 7
    assert [e["id"] for e in out["expert"]] == ["dicom.status.failure"]
    assert out["counts"]["pdus"] == sum(out["associations"][0]["pdus"].values())


def test_summary_expert_field_selects_entries():
    _, _, doc = decoded(RA)
    out = compile_filter('dicom.expert.id == "dicom.op.unanswered"').select_summary(doc)
    assert [a["id"] for a in out["associations"]] == [2]
    assert [(e["id"], e["frame"]) for e in out["expert"]] == [("dicom.op.unanswered", 112)]
    assert [o["command"] for o in out["objects"]] == ["C-STORE-RQ"]


def test_summary_with_nothing_selected():
    _, _, doc = decoded(RA)
    out = compile_filter('dicom.assoc.calling == "NOBODY"').select_summary(doc)
    assert out["associations"] == out["objects"] == out["expert"] == []
    assert out["counts"]["associations"] == out["counts"]["operations"] == 0


# --------------------------------------------------------- streaming = after
@pytest.mark.parametrize("text", ["dicom.op.latency > 0.05", 'dicom.op.status_class == "success"',
                                  "dicom.tag == 0x00100010", "dicom.pdv.reassembled.length > 1000"])
def test_matching_while_streaming_gives_the_same_answer(text):
    path = REAL / f"{QR}.pcap"
    flt = compile_filter(text)
    keep, _, _ = _decode(path, ports_of(path), flt)
    assert keep.live == [flt.match_pdu(r) for r in keep.recs]
    assert any(keep.live)


# ------------------------------------------------------ crafted conversation
@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    a = G.Conversation(client=("10.0.0.1", 40001), server=("10.0.0.2", 104))
    a.send(0, G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))],
                         extra_user=G._item(0x5F, b"\x01\x02\x03")))
    a.send(1, G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT)]))
    for k, (uid, status, patient) in enumerate([("1.2.3.1", 0xA700, "Doe^Jane"),
                                                ("1.2.3.2", 0xB000, "Roe^Richard")], 1):
        a.send(0, G.p_data((1, 3, G.c_store_rq(k, G.CT_STORAGE, uid))))
        a.send(0, G.p_data((1, 2, G.ct_dataset(uid, patient=patient))))
        a.wait(0.25 * k)
        a.send(1, G.p_data((1, 3, G.c_store_rsp(k, G.CT_STORAGE, uid, status=status))))
    a.send(0, G.release_rq())
    a.send(1, G.release_rp())
    a.close()
    b = G.Conversation(client=("10.0.0.3", 40002), server=("10.0.0.2", 104), t0=1_700_000_100.0)
    b.send(0, G.assoc_rq("PACS2", "MODALITY"))
    b.send(1, G.assoc_ac("PACS2", "MODALITY"))
    b.send(0, G.p_data((1, 3, G.c_echo_rq(1))))
    b.send(1, G.p_data((1, 3, G.c_echo_rsp(1))))
    b.send(0, G.release_rq())
    b.send(1, G.release_rp())
    b.close()
    path = tmp_path_factory.mktemp("filters") / "crafted.pcap"
    path.write_bytes(G.pcap(a, b))
    keep, dec, doc = _decode(path, (104,))
    return keep.recs, dec, doc, str(path)


# frames: handshake 1-3; each send is its segments then the peer's ACK; the
# data sets (~2.2 KB) take two segments
CRAFTED = [
    ('dicom.assoc.ae.called == "PACS"', [4, 6], {0: [("C-STORE", 0xA700), ("C-STORE", 0xB000)]}),
    ("dicom.userinfo.data == 01:02:03", [4], {0: [("C-STORE", 0xA700), ("C-STORE", 0xB000)]}),
    ("dicom.userinfo.data contains 02", [4], {0: [("C-STORE", 0xA700), ("C-STORE", 0xB000)]}),
    ('dicom.userinfo.data contains "\\x02\\003"', [4], {0: [("C-STORE", 0xA700), ("C-STORE", 0xB000)]}),
    ("dicom.userinfo.unknown and dicom.assoc.item.type == 0x5f", [4], ERR),
    ('dicom.op.status_class == "warning"', [20], {0: [("C-STORE", 0xB000)]}),
    ("dicom.status_msg", [20], {0: [("C-STORE", 0xA700), ("C-STORE", 0xB000)]}),
    ("dicom.status.failure", [13], {0: [("C-STORE", 0xA700), ("C-STORE", 0xB000)]}),
    ("dicom.op.latency > 0.4", [20], {0: [("C-STORE", 0xB000)]}),
    ('dicom.tag.value.str matches "^Doe"', [11], ERR),
    ('dicom.tag.value.str contains "CT Image" and dicom.tag == 0x00080016', [11, 18], ERR),
    ("ip.src == 10.0.0.0/24 and not ip.addr == 10.0.0.1", [32, 34, 36, 38, 40, 42], {1: [("C-ECHO", 0)]}),
    ("ip.src == 10.0.0.0/24 and not ip.src == 10.0.0.1", [6, 13, 20, 24, 32, 34, 36, 38, 40, 42],
     {1: [("C-ECHO", 0)]}),
    ("ip.src in {10.0.0.3..10.0.0.9}", [32, 36, 40], {1: [("C-ECHO", 0)]}),
    ('dicom.assoc.calling == "MODALITY"', [32, 34, 36, 38, 40, 42], {1: [("C-ECHO", 0)]}),
]


@pytest.mark.parametrize("text, frames, assocs", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted(crafted, text, frames, assocs):
    recs, dec, doc, _ = crafted
    flt = compile_filter(text)
    assert pdu_frames(recs, flt) == frames
    if assocs == ERR:
        with pytest.raises(FilterError):
            flt.check("summary")
    else:
        assert summary_selection(doc, flt) == assocs


def test_crafted_warning_keeps_only_its_object(crafted):
    _, dec, doc, _ = crafted
    out = compile_filter('dicom.op.status_class == "warning"').select_summary(doc)
    assert [o["sop_instance_uid"] for o in out["objects"]] == ["1.2.3.2"]
    assert [(e.id, e.frame) for e in dec.expert if compile_filter("dicom.status_msg").match_expert(e, dec)] \
        == [("dicom.status_msg", 20)]


# ------------------------------------------------------------------ errors
# (filter, message, caret position)
ERRORS = [
    ("", "expected a field name, found end of filter", 0),
    ("dicom.pdu.type ==", 'expected a value after "==", found end of filter', 17),
    ("dicom.pdu.type == 4 and", 'expected a field name after "and", found end of filter', 23),
    ("(dicom.pdu.type == 4", 'expected ")" to close the "(" at position 0, found end of filter', 20),
    ("dicom.pdu.type == 4)", 'unbalanced ")": no "(" to close', 19),
    ("dicom.foo == 1", 'unknown field "dicom.foo"', 0),
    ("dicom.pdu.typ == 1", 'unknown field "dicom.pdu.typ" (did you mean dicom.pdu.type?)', 0),
    ("dicom.tag.value == 1", 'unknown field "dicom.tag.value" (did you mean dicom.tag.value.str?)', 0),
    ("dicom.assoc.ae.called == 5", "dicom.assoc.ae.called is a string field: expected a double-quoted string, "
                                   'found 5 (write "5")', 25),
    ("dicom.assoc.ae.called == PACS", 'expected a double-quoted string, found PACS (write "PACS")', 25),
    ('dicom.pdu.type == "4"', 'dicom.pdu.type is an unsigned integer field: expected a number, found "4"', 18),
    ("dicom.pdu.type contains 4", '"contains" needs a string or bytes field: dicom.pdu.type is an unsigned '
                                  "integer", 15),
    ('dicom.tag.value.str matches "(["', "invalid regular expression: unterminated character set", 30),
    ("dicom.pdu.type matches \"1\"", '"matches" needs a string field', 15),
    ("dicom.pdu.type in {}", 'expected a value in the set, found "}"', 19),
    ("dicom.pdu.type in {1..}", 'expected a value after "..", found "}"', 22),
    ("dicom.pdu.type in {1, 2", 'expected "}" to close the set opened at position 18, found end of filter', 23),
    ("dicom.pdu.type = 4", 'unknown operator "=" (use "==")', 15),
    ("dicom.pdu.type 4", "expected an operator (==, !=, <, >, contains, matches, in), \"and\", \"or\" or end "
                         "of filter after dicom.pdu.type, found \"4\"", 15),
    ("dicom.pdu.type == 256", "256 is out of range for dicom.pdu.type (uint8: 0 to 255)", 18),
    ("dicom.pdu.type == -1", "dicom.pdu.type is unsigned: -1 is negative", 18),
    ("dicom.tag == 00100010", 'ambiguous number "00100010": write 0x00100010 for hexadecimal or 100010 '
                              "for decimal", 13),
    ("dicom.userinfo == 1", "dicom.userinfo is a presence-only field: it cannot be compared", 15),
    ('dicom.assoc.ae.called == "PACS', 'unterminated string: missing closing "', 25),
    (r'dicom.assoc.ae.called == "a\q"', r"invalid escape \q", 27),
    ('dicom.expert.severity >= "bad"', 'unknown severity "bad" (chat, note, warning, error)', 25),
    ('dicom.op.status_class == "failed"', 'unknown status class "failed"', 25),
    ('dicom.op.command == "C-STORE-RQ"', "did you mean C-STORE? dicom.op.command holds the service", 20),
    ('dicom.expert.id == "dicom.asoc.abort"', "(did you mean dicom.assoc.abort?)", 19),
    ("dicom.pdu.type == dicom.pdv.ctx", "comparing a field with another field (dicom.pdv.ctx) is not supported", 18),
    ('lower(dicom.assoc.ae.called) == "pacs"', 'unknown function "lower"', 0),
    ("dicom.pdv.flags & 2", "bitwise operators are not supported", 16),
    ("dicom.pdu.type[0] == 1", "slices are not supported", 14),
    ("dicom.pdv.reassembled.in", "is not supplied by fastdicom", 0),
    ("ip.addr == 1.2.3", '"1.2.3" is not an IPv4 or IPv6 address', 11),
    ("ip.addr > 10.0.0.0/8", "can only be tested with ==, != or in", 10),
    ("dicom.op.latency > 1.5.1", "expected a number, found 1.5.1", 19),
    ("dicom.pdu.type == 1 or or", 'expected a field name after "or", found "or"', 23),
    ("'PACS'", "single quotes are not string delimiters", 0),
    ("dicom.pdu.type == 1 dicom", 'expected "and", "or" or end of filter, found "dicom"', 20),
    ("(" * 70 + "dicom" + ")" * 70, "nested too deeply", 64),
]


@pytest.mark.parametrize("text, message, position", ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_errors(text, message, position):
    with pytest.raises(FilterError) as info:
        compile_filter(text)
    e = info.value
    assert message in str(e)
    assert e.position == position
    assert e.text == text
    assert e.pointer() == f"{text}\n{' ' * position}^"


@pytest.mark.parametrize("command, text, where", [
    ("summary", "dicom.pdu.type == 4", "'fastdicom pdus'"),
    ("summary", "dicom.tag == 0x00100010", "'fastdicom pdus'"),
    ("expert", 'dicom.op.status_class == "failure"', "'fastdicom pdus' or 'fastdicom summary'"),
    ("expert", "dicom.pdv.ctx == 1", "'fastdicom pdus'"),
])
def test_fields_absent_for_a_command(command, text, where):
    with pytest.raises(FilterError) as info:
        compile_filter(text, command=command)
    assert str(info.value).endswith(f"(it is in {where})")
    assert info.value.position == 0


def test_error_points_at_the_field_that_is_absent():
    text = 'dicom.assoc.called == "X" and dicom.pdv.ctx == 1'
    with pytest.raises(FilterError) as info:
        compile_filter(text, command="summary")
    assert info.value.position == text.index("dicom.pdv.ctx")


def test_equivalent_spellings():
    recs, _, _ = decoded(RA)
    same = [("dicom.pdu.type == 7", "dicom.pdu.type eq 7", "dicom.pdu.type any_eq 0x7", "dicom.pdu.type in {7}",
             "dicom.pdu.type in {6..7} && !dicom.pdu.type == 6", "dicom.pdu.type not in {1 2 3 4 5 6}"),
            ("dicom.pctx.id != 1", "dicom.pctx.id ne 1", "dicom.pctx.id all_ne 1"),
            ("dicom.pctx.id !== 1", "dicom.pctx.id ~= 1", "dicom.pctx.id any_ne 1"),
            ("dicom.pctx.id === 1", "dicom.pctx.id all_eq 1"),
            ("dicom.pdu.len > 100", "dicom.pdu.len gt 100", "not dicom.pdu.len le 100 and dicom.pdu.len"),
            ("dicom.pdu.len >= 148", "dicom.pdu.len ge 0x94"),
            ("dicom.pdu.len < 148", "dicom.pdu.len lt 148"),
            ('dicom.assoc.ae.calling matches "SCU$"', 'dicom.assoc.ae.calling ~ "SCU$"'),
            ("dicom.pdu.type == 1 AND dicom.assoc.id == 2", "dicom.pdu.type == 1 and dicom.assoc.id == 2")]
    for group in same:
        results = {t: pdu_frames(recs, compile_filter(t)) for t in group}
        assert len(set(map(tuple, results.values()))) == 1, results


def test_severity_is_ordered():
    _, dec, _ = decoded(QR)
    notes_and_warnings = [("dicom.pctx.rejected", 137), ("dicom.pdu.truncated", 250),
                          ("dicom.assoc.no_release", 250)]
    for text in ('dicom.expert.severity in {"note".."warning"}', 'dicom.expert.severity < "error"',
                 'dicom.expert.severity <= "warn"', 'not dicom.expert.severity == "error"',
                 'dicom.expert.severity != "error"', 'dicom.expert.severity > "chat" and dicom.expert.severity lt '
                                                     '"error"'):
        assert expert_selection(dec, compile_filter(text)) == notes_and_warnings, text
    assert expert_selection(dec, compile_filter('dicom.expert.severity contains "err"')) == \
        [("dicom.status.failure", 202)]


def test_matches_is_case_sensitive_unless_asked():
    recs, _, _ = decoded(RA)
    assert pdu_frames(recs, compile_filter('dicom.assoc.ae.called matches "wrong"')) == []
    assert pdu_frames(recs, compile_filter('dicom.assoc.ae.called matches "(?i)wrong"')) == [4]
    assert pdu_frames(recs, compile_filter('dicom.assoc.ae.called contains "WRONG"')) == [4]
    assert pdu_frames(recs, compile_filter('dicom.assoc.ae.called contains "wrong"')) == []


def test_uid_fields_compare_bare_uids():
    recs, _, _ = decoded(RA)
    assert pdu_frames(recs, compile_filter('dicom.pctx.abss.syntax == "CT Image Storage"')) == []
    assert pdu_frames(recs, compile_filter('dicom.pctx.abss.syntax == "1.2.840.10008.5.1.4.1.1.2"')) \
        == [4, 14, 71]
    assert pdu_frames(recs, compile_filter(r'dicom.pctx.abss.syntax matches "^1\\.2\\.840\\.10008\\.1\\.1$"')) \
        == [119]


# --------------------------------------------------------------------- CLI
RA_PATH = str(REAL / f"{RA}.pcap")
QR_PATH = str(REAL / f"{QR}.pcap")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_pdus(capsys):
    code, out, err = run(capsys, "pdus", RA_PATH, "--ports", "104 11112", "-Y",
                         "dicom.assoc.reject or dicom.assoc.abort")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["6", "53", "112", "121"]
    assert "A-ASSOCIATE reject  STORESCU <-- WRONG_AE" in lines[0]


def test_cli_pdus_jsonl_element_filter(capsys):
    code, out, _ = run(capsys, "pdus", RA_PATH, "--ports", "104 11112", "--format", "jsonl", "-Y",
                       'dicom.tag.value.str matches "^CompressedSamples"')
    assert code == 0
    recs = [json.loads(x) for x in out.splitlines()]
    assert [(r["frame"], r["frames"], r["association"]) for r in recs] == [(50, [46, 50], 1), (110, [106, 110], 2)]


def test_cli_summary_json(capsys):
    code, out, _ = run(capsys, "summary", QR_PATH, "--ports", "5678, 11113", "--format", "json", "-Y",
                       'dicom.op.status_class == "failure"')
    assert code == 0
    doc = json.loads(out)
    assert doc["filter"] == 'dicom.op.status_class == "failure"'
    assert [a["calling_ae"] for a in doc["associations"]] == ["VIEWER"]
    assert [(o["command"], o["status"], o["status_text"]) for o in doc["associations"][0]["operations"]] == \
        [("C-MOVE", 0xA801, "Refused: Move Destination unknown")]
    assert doc["counts"]["operations"] == 1 and doc["counts_unfiltered"]["operations"] == 8


def test_cli_summary_text_and_csv(capsys):
    code, out, _ = run(capsys, "summary", QR_PATH, "--ports", "5678, 11113", "-Y", 'dicom.assoc.called == "MOVEDEST"')
    assert code == 0 and "ARCHIVE → MOVEDEST" in out and "VIEWER" not in out
    code, out, _ = run(capsys, "summary", QR_PATH, "--ports", "5678, 11113", "--format", "csv", "-Y",
                       'dicom.op.command == "C-STORE" and dicom.assoc.id == 0')
    rows = out.splitlines()
    assert code == 0 and len(rows) == 4 and all(r.startswith("0,LOADER,ARCHIVE,C-STORE") for r in rows[1:])


def test_cli_expert(capsys):
    code, out, _ = run(capsys, "expert", RA_PATH, "--ports", "104 11112", "--format", "jsonl", "-Y",
                       'dicom.expert.severity >= "warning" and tcp.port == 104')
    assert code == 0
    assert [(e["id"], e["frame"]) for e in map(json.loads, out.splitlines())] == RA_ALL_EXPERT[2:]


@pytest.mark.parametrize("argv, message, caret", [
    (["pdus", RA_PATH, "-Y", "dicom.pdu.type =="], 'expected a value after "==", found end of filter',
     "dicom.pdu.type ==\n                 ^"),
    (["summary", "/nonexistent/capture.pcap", "-Y", "dicom.foo"], 'unknown field "dicom.foo"', "dicom.foo\n^"),
    # two CPUs: the capture would be opened and walked ahead while the decoder loads
    (["summary", "/nonexistent/capture.pcap", "--workers", "2", "-Y", "dicom.foo"],
     'unknown field "dicom.foo"', "dicom.foo\n^"),
    (["expert", "/nonexistent/capture.pcap", "-Y", "dicom.op.status == 1"],
     "dicom.op.status is not available in 'fastdicom expert'", "dicom.op.status == 1\n^"),
    (["summary", RA_PATH, "--format", "json", "-Y", "dicom.pdu.type == 4"],
     "dicom.pdu.type is not available in 'fastdicom summary'", "dicom.pdu.type == 4\n^"),
])
def test_cli_bad_filter_exits_2_before_reading(capsys, argv, message, caret):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("fastdicom: filter error: ") and message in err
    assert err.rstrip("\n").endswith(caret)
    assert "No such file" not in err and "Traceback" not in err


def test_cli_fields(capsys):
    code, out, _ = run(capsys, "fields")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "type", "available", "in", "description"]
    assert len(lines) == len(FIELDS) + 1
    row = next(ln for ln in lines if ln.startswith("dicom.op.latency "))
    assert row.split()[1:3] == ["float", "pdus,summary"]
    code, out, _ = run(capsys, "fields", "--format", "json")
    rows = json.loads(out)
    assert {r["name"] for r in rows} == set(FIELDS)
    assert {r["type"] for r in rows} <= {"uint", "int", "float", "string", "bytes", "none", "address"}
    tag = next(r for r in rows if r["name"] == "dicom.tag")
    assert (tag["type"], tag["bits"], tag["available_in"], tag["wireshark"]) == ("uint", 32, ["pdus"], True)
    code, out, _ = run(capsys, "fields", "userinfo")
    assert all("userinfo" in ln for ln in out.splitlines()[1:]) and len(out.splitlines()) > 20
    code, out, _ = run(capsys, "fields", "--help")
    assert code == 0 and "Example" in out and "-Y" in out


def test_registry():
    assert render_fields("text").count("\n") == len(FIELDS) + 1
    for name, f in FIELDS.items():
        assert f.name == name and f.description and f.contexts
        assert f.type in ("uint", "int", "float", "string", "bytes", "none", "address")
    wireshark = {n for n, f in FIELDS.items() if f.wireshark}
    assert {"dicom.pdu.type", "dicom.pctx.abss.syntax", "dicom.tag.value.32s", "dicom.userinfo.user_identify.type",
            "dicom.assoc.reject", "dicom.status_msg", "dicom.pdv.flags.invalid"} <= wireshark
    assert {"dicom.op.latency", "dicom.assoc.id", "ip.addr", "frame.number"}.isdisjoint(wireshark)


# -------------------------------------------------------------- hypothesis
_WORDS = list(FIELDS)[:60] + [
    "==", "!=", "===", "!==", "~=", "<", "<=", ">", ">=", "eq", "ne", "contains", "matches", "~", "in", "not",
    "and", "or", "&&", "||", "!", "(", ")", "{", "}", "..", ",", "[", "]", "&", "=", "'", "\\",
    '"x"', '"CT Image"', 'r"\\d+"', '"\\x41"', '"\\777"', '"\\uD800"', '"(["', '"a{99999999999}"', '"(?i)a"',
    "0x10", "-1", "1.5", "1e400", "nan", "00", "0", "::1", "10.0.0.0/8", "01:02", "0x", "65536", "4294967296"]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(_WORDS), max_size=14).map(" ".join)))
def test_random_text_raises_only_filter_error(text):
    try:
        flt = compile_filter(text)
    except FilterError as e:
        assert 0 <= e.position <= len(text)
        assert e.pointer().startswith(text)
        return
    assert isinstance(flt, Filter)
    recs, dec, doc = decoded(RA)  # whatever compiles evaluates without raising
    assert all(flt.match_pdu(r) in (True, False) for r in recs)
    assert all(flt.match_expert(e, dec) in (True, False) for e in dec.expert)
    flt.select_summary(doc)


def _literal(f):
    if f.type in ("uint", "int"):
        return st.sampled_from(["0", "1", "4", "0x10", "0xff00", "41"] + (["-1"] if f.type == "int" else []))
    if f.type == "float":
        return st.sampled_from(["0", "0.05", "1e-3", "2.5"])
    if f.type == "address":
        return st.sampled_from(["127.0.0.1", "::1", "127.0.0.0/8", "10.0.0.2"])
    if f.type == "bytes":
        return st.sampled_from(["01:02", '"ab"', "0x02"])
    values = {"severity": ['"note"', '"error"'], "status_class": ['"failure"', '"pending"'],
              "expert_id": ['"dicom.assoc.abort"'], "command": ['"C-STORE"', '"C-FIND"']}.get(f.flavor)
    return st.sampled_from(values or ['"STORESCP"', '"CT"', '"1.2.840.10008.1.2"', '"Doe"', '""'])


@st.composite
def _valid_filters(draw, depth=0):
    if depth < 3 and draw(st.booleans()):
        op = draw(st.sampled_from([" and ", " or "]))
        return "(" + draw(_valid_filters(depth + 1)) + op + draw(_valid_filters(depth + 1)) + ")"
    if depth < 3 and draw(st.integers(0, 5)) == 0:
        return "not " + draw(_valid_filters(depth + 1))
    f = FIELDS[draw(st.sampled_from(sorted(FIELDS)))]
    if f.type == "none":
        return f.name
    ops = ["==", "!=", "===", "!==", "<", ">=", "in"]
    if f.type in ("string", "bytes"):
        ops.append("contains")
    if f.type == "string":
        ops.append("matches")
    op = draw(st.sampled_from(ops))
    lit = draw(_literal(f))
    if op == "matches":
        return f'{f.name} matches "^[0-9A-Z]"'
    if op == "in":
        return f"{f.name} in {{{lit}, {draw(_literal(f))}}}"
    if op in ("<", ">=") and "/" in lit:
        return f"{f.name} == {lit}"
    return f"{f.name} {op} {lit}"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_valid_filters())
def test_random_valid_filters_evaluate_everywhere(text):
    try:
        flt = compile_filter(text)
    except FilterError as e:  # a literal out of a field's range, or an ordering on a flavour
        assert re.search(r"out of range|is unsigned|unknown|needs|ordered", str(e)), (text, str(e))
        return
    for name in (RA, QR):
        recs, dec, doc = decoded(name)
        for r in recs:
            assert flt.match_pdu(r) in (True, False)
        for e in dec.expert:
            assert flt.match_expert(e, dec) in (True, False)
        out = flt.select_summary(doc)
        assert len(out["associations"]) <= len(doc["associations"])
