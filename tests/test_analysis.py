"""The troubleshooting analyses: findings asserted on real captures (shared set
and tests/data/made), and on crafted conversations for what no real peer
would send."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pcapgen as G
from fastdicom import capture
from fastdicom.analysis import output as AO
from fastdicom.decoder import Decoder
from fastdicom.expert import Severity
from helpers import DATA, REAL, ports_of

MADE = DATA / "made"


def analyse(path, ports=None, redact=False):
    path = Path(path)
    summary_sink, collector = AO.sinks()
    dec = Decoder([summary_sink, collector], **AO.DECODER_OPTIONS)
    collector.bind(dec)
    capture.run([str(path)], dec, capture.EngineOptions(ports=ports or ports_of(path)))
    return dec, AO.run_analyses(dec, collector, redact)


def made_ports(name):
    return tuple(json.loads((MADE / "captures.json").read_text())[name]["ports"])


def findings(result, code, **where):
    out = [f for f in result.findings if f.code == code]
    for k, v in where.items():
        out = [f for f in out if (f.associations if k == "assoc" else f.data.get(k)) == v]
    return out


def one(result, code, **where):
    got = findings(result, code, **where)
    assert len(got) == 1, (code, where, [(f.code, f.associations, f.data) for f in result.findings])
    return got[0]


# ------------------------------------------------------------- reject_abort
@pytest.fixture(scope="module")
def reject_abort():
    return analyse(REAL / "reject_abort.pcap")[1]


def test_reject_called_ae_not_recognised(reject_abort):
    f = one(reject_abort, "assoc.rejected", assoc=[0])
    assert f.severity == Severity.ERROR
    assert f.data["cause"] == "called AE title not recognised"
    assert f.title == ("called AE title not recognised: WRONG_AE was called as 'WRONG_AE' "
                       "by STORESCU at 127.0.0.1")
    assert f.data["result"] == "rejected-permanent"
    assert f.data["source"] == "DICOM UL service-user"
    # the same server accepted another called AE title: the hint names it
    assert "'STORESCP'" in f.explanation
    assert f.frames


def test_reject_no_reason_given(reject_abort):
    f = one(reject_abort, "assoc.rejected", assoc=[3])
    assert f.data["cause"] == "no reason given"
    assert f.data["calling_ae"] == "SENDER" and f.data["called_ae"] == "DCMTK"


def test_abort_by_scu_after_its_operations(reject_abort):
    f = one(reject_abort, "assoc.aborted", assoc=[1])
    assert f.data["by"] == "requestor"
    assert f.data["cause"] == "association aborted by the service user"
    assert f.data["outstanding"] == [] and f.data["completed_operations"] == 1
    assert "STORESCU" in f.title


def test_abort_by_scp_while_store_outstanding(reject_abort):
    f = one(reject_abort, "assoc.aborted", assoc=[2])
    assert f.data["by"] == "acceptor"
    assert f.data["cause"] == "association aborted by the service user"
    assert f.data["outstanding"] == [{"command": "C-STORE", "message_id": 1}]
    assert f.severity == Severity.ERROR
    assert "DCMTK" in f.title


def test_reject_abort_counts(reject_abort):
    assert len(findings(reject_abort, "assoc.rejected")) == 2
    assert len(findings(reject_abort, "assoc.aborted")) == 2


# -------------------------------------------------------------- negotiation
@pytest.fixture(scope="module")
def negotiation():
    return analyse(REAL / "negotiation.pcap")[1]


def test_rejected_context(negotiation):
    f = one(negotiation, "pctx.rejected")
    assert [c["abstract_syntax"] for c in f.data["contexts"]] == ["1.2.840.10008.5.1.4.1.1.4"]
    assert f.data["contexts"][0]["reason"].startswith("abstract-syntax-not-supported")
    assert f.data["not_accepted_at_all"] == ["1.2.840.10008.5.1.4.1.1.4"]
    assert "MR Image Storage" in f.explanation


def test_user_identity_not_confirmed(negotiation):
    f = one(negotiation, "user_identity")
    assert f.data["type"] == 2 and f.data["positive_response_requested"] is True
    assert f.data["confirmed"] is False
    assert f.severity == Severity.NOTE
    assert "radiologist" in f.explanation and "PS3.7 D.3.3.7" in f.explanation


def test_user_identity_redacted():
    _, res = analyse(REAL / "negotiation.pcap", redact=True)
    f = one(res, "user_identity")
    assert "radiologist" not in f.explanation
    assert "radiologist" not in json.dumps(res.to_json())


def test_role_selection(negotiation):
    f = one(negotiation, "role.selection")
    assert f.data["roles"] == [{"sop_class_uid": "1.2.840.10008.5.1.4.1.1.2", "proposed_scu": 1,
                                "proposed_scp": 1, "accepted_scu": 1, "accepted_scp": 1}]
    assert "CT Image Storage: proposed SCU+SCP, accepted SCU+SCP" in f.explanation
    assert not findings(negotiation, "role.scp_refused")


def test_negotiation_matrix():
    from fastdicom.analysis.negotiation import matrix
    dec, _ = analyse(REAL / "negotiation.pcap")
    m = matrix(dec.associations[0])
    assert m["syntaxes"][0] == "1.2.840.10008.1.2"
    rows = {r["context_id"]: r for r in m["rows"]}
    assert rows[1]["cells"] == ["accepted", "offered", "offered", "offered"]
    assert rows[5]["cells"] == ["rejected"] * 4


# ----------------------------------------------------------- query_retrieve
@pytest.fixture(scope="module")
def query_retrieve():
    return analyse(REAL / "query_retrieve.pcap")[1]


def test_find_trailing_space_matched_nothing(query_retrieve):
    f = one(query_retrieve, "find.trailing_space")
    assert f.data["keyword"] == "PatientID" and f.data["trailing"] == 1
    assert f.data["matched_nothing"] is True
    assert f.severity == Severity.WARNING
    assert "'NO_SUCH_PATIENT '" in f.title
    z = one(query_retrieve, "find.zero_matches")
    assert z.data["matching_keys"] == ["PatientID"] and z.data["level"] == "STUDY"
    assert z.data["looser_query"]["matches"] == 3
    assert "'1CT1'" in z.explanation  # the patient IDs the capture did return


def test_find_first_query_is_clean(query_retrieve):
    # PatientName '*' is universal matching: no wildcard or space finding for it
    assert not findings(query_retrieve, "find.wildcard")
    assert not findings(query_retrieve, "find.missing_keys")


def test_move_linked_to_sub_association(query_retrieve):
    f = one(query_retrieve, "move.linked")
    assert f.data["destination"] == "MOVEDEST"
    assert f.data["sub_association"] == 2
    assert f.data["destination_address"] == "127.0.0.3:11113"
    assert f.associations == [1, 2]
    d = one(query_retrieve, "move.destination_address")
    assert d.data["requester_address"] == "127.0.0.1" and d.data["same_ae"] is False
    assert not findings(query_retrieve, "move.count_mismatch")


def test_move_unknown_destination(query_retrieve):
    f = one(query_retrieve, "move.destination_unknown")
    assert f.data["destination"] == "UNKNOWNDEST" and f.data["status"] == 0xA801
    assert f.severity == Severity.ERROR
    assert "ARCHIVE" in f.title
    # the failed move has no sub-association and no 'missing callback' noise
    assert not findings(query_retrieve, "move.no_callback")


def test_find_query_summaries(query_retrieve):
    dec, res = analyse(REAL / "query_retrieve.pcap")
    qs = res.context._cache["find.queries"]
    first, second = sorted(qs.values(), key=lambda q: q["matches"], reverse=True)
    assert first["matches"] == 3 and first["level"] == "PATIENT"
    kinds = {k["keyword"]: (k["kind"], k["returned"]) for k in first["keys"]}
    assert kinds["PatientName"] == ("matching", 3) and kinds["PatientID"] == ("return", 3)
    assert second["matches"] == 0


# --------------------------------------------------------------- loopback
def test_loopback_abort_unsendable_object():
    _, res = analyse(DATA / "loopback" / "dcmtk_storescu_4files_lo.pcap", ports=(11112,))
    f = one(res, "pctx.unsendable")
    assert f.data["operations_before"] == 3 and f.data["only_uncompressed"] is True
    assert "JPEG 2000" in f.explanation
    _, res = analyse(DATA / "loopback" / "dcmtk_storescu_abort_after_assoc_lo.pcap", ports=(11112,))
    f = one(res, "pctx.unsendable")
    assert f.data["operations_before"] == 0


def test_loopback_get_sub_operations():
    _, res = analyse(DATA / "loopback" / "dcmtk_qr_find_get_move_lo.pcap", ports=(11112, 11113, 11114))
    g = one(res, "get.linked")
    assert g.data["sub_operations"] == 1 and g.data["seen"]["success"] == 1
    assert not findings(res, "get.role")
    m = one(res, "move.linked")
    assert m.data["destination"] == "MOVEDEST"


# ---------------------------------------------------------- crafted cases
def _write(tmp_path, *convs, name="x.pcap"):
    p = tmp_path / name
    p.write_bytes(G.pcap(*convs, interleave=True))
    return p


def _find_rq(mid, ident, model=G.STUDY_FIND):
    return (G.command(affected_sop_class_uid=model, command_field=0x0020, message_id=mid,
                      priority=0, command_data_set_type=0x0000), ident)


def test_crafted_find_checks(tmp_path):
    ident = G.dataset_explicit([
        (0x00080052, "CS", b"STUDY"), (0x00080020, "DA", b"2024*"),
        (0x00100010, "PN", b"DOE^JOHN"), (0x00100020, "LO", b"A^B"),
        (0x0020000D, "UI", b"1.2.3"), (0x00080018, "UI", b"1.2.3.4"),
        (0x00080061, "CS", b""),
    ])
    c = G.Conversation()
    c.send(0, G.assoc_rq("PACS", "WS", [(1, G.STUDY_FIND, (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac("PACS", "WS", [(1, 0, G.EXPLICIT)]))
    cmd, ds = _find_rq(7, ident)
    c.send(0, G.p_data((1, 3, cmd)))
    c.send(0, G.p_data((1, 2, ds)))
    c.send(1, G.p_data((1, 3, G.command(affected_sop_class_uid=G.STUDY_FIND, command_field=0x8020,
                                        message_id_being_responded_to=7, command_data_set_type=0x0101,
                                        status=0))))
    c.send(0, G.release_rq()).send(1, G.release_rp()).close()
    _, res = analyse(_write(tmp_path, c), ports=(104,))
    assert one(res, "find.wildcard_vr").data["keyword"] == "StudyDate"
    seps = findings(res, "find.separator")
    assert {f.data["keyword"] for f in seps} == {"PatientName", "PatientID"}
    od = one(res, "find.over_defined")
    assert od.data["below_level"] == ["SOPInstanceUID"] and od.severity == Severity.WARNING
    assert one(res, "find.zero_matches").data["looser_query"] is None


def test_crafted_data_checks(tmp_path):
    """UID mismatch between command and data set; text the charset cannot decode."""
    c = G.Conversation()
    c.send(0, G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT)]))
    ds = G.dataset_explicit([
        (0x00080005, "CS", b"ISO_IR 192"), (0x00080016, "UI", G.CT_STORAGE.encode()),
        (0x00080018, "UI", b"1.2.3.999"), (0x00100010, "PN", b"M\xfcller^Hans"),
    ])
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3.4"))))
    c.send(0, G.p_data((1, 2, ds)))
    c.send(1, G.p_data((1, 3, G.c_store_rsp(1, G.CT_STORAGE, "1.2.3.4"))))
    c.send(0, G.release_rq()).send(1, G.release_rp()).close()
    _, res = analyse(_write(tmp_path, c), ports=(104,))
    m = one(res, "data.uid_mismatch")
    assert m.data["differences"] == [{"attribute": "SOP Instance UID", "command": "1.2.3.4",
                                      "data_set": "1.2.3.999"}]
    cs = one(res, "data.charset")
    assert cs.data["charset"] == "ISO_IR 192" and cs.data["elements"] == ["PatientName"]


def test_crafted_ae_variants_and_no_answer(tmp_path):
    a = G.store_conversation(["1.2.3.1"], client_ae="CT01", server_ae="PACS")
    b = G.Conversation(client=("10.0.0.1", 40002), t0=1_700_000_001.0)
    b.send(0, G.assoc_rq("pacs", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))]))
    b.send(1, G.assoc_rj(1, 1, 7)).close()
    c = G.Conversation(client=("10.0.0.1", 40003), t0=1_700_000_002.0)
    c.send(0, G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))]))
    c.wait(30).close()
    _, res = analyse(_write(tmp_path, a, b, c), ports=(104,))
    v = one(res, "ae.variants")
    assert set(v.data["variants"]) == {"PACS", "pacs"} and v.severity == Severity.WARNING
    r = one(res, "assoc.rejected")
    assert "'PACS'" in r.explanation  # the spelling the same server accepted
    n = one(res, "assoc.no_answer")
    assert n.associations == [2] and n.severity == Severity.ERROR


# ------------------------------------------------------------------- CLI
def _cli(*args):
    env = {"FASTDICOM_PURE_PYTHON": "1", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "fastdicom.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_analyze_json_and_fail_on():
    r = _cli("analyze", str(REAL / "query_retrieve.pcap"), "--ports", "5678,11113",
             "--format", "json", "--fail-on", "error")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    codes = {f["code"] for f in doc["findings"]}
    assert {"find.trailing_space", "move.linked", "move.destination_unknown"} <= codes
    assert doc["findings_by_severity"]["error"] >= 1
    r = _cli("analyze", str(REAL / "echo_dcmtk.pcap"), "--fail-on", "warning")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Facts" in r.stdout


def test_cli_help_has_examples():
    for cmd in ("analyze", "report"):
        r = _cli(cmd, "--help")
        assert r.returncode == 0 and "Example: fastdicom " + cmd in r.stdout


# ------------------------------------------------------ tests/data/made
def made(name):
    return analyse(MADE / f"{name}.pcap", ports=made_ports(name))[1]


def test_made_move_destination_refused():
    res = made("move_refused")
    f = one(res, "move.connect_failed")
    assert f.data["destination"] == "MOVEDEST" and f.data["outcome"] == "refused"
    assert f.data["destination_address"] == "127.0.0.1:11119"
    assert f.data["move_status"] == 0xA801 and f.severity == Severity.ERROR
    u = one(res, "move.destination_unknown")
    assert "unreachable" in u.title  # the capture shows it was known, just not reachable
    t = one(res, "tcp.refused")
    assert t.severity == Severity.NOTE and "MOVEDEST" in t.explanation
    assert not findings(res, "move.linked")


def test_made_get_with_sub_operations_then_cancelled_find():
    res = made("get_cancel")
    g = one(res, "get.linked")
    assert g.data["sub_operations"] == 2 and g.data["seen"]["success"] == 2
    assert g.data["reported"]["completed"] == 2
    assert set(g.data["sop_classes"]) == {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"}
    assert not findings(res, "get.role") and not findings(res, "get.count_mismatch")
    r = one(res, "role.selection")
    assert all(x["accepted_scp"] == 1 for x in r.data["roles"])
    c = one(res, "find.cancelled")
    assert c.data["matches_before_cancel"] == 2 and c.data["final_status"] == 0xFE00
    assert c.severity == Severity.NOTE
    assert not findings(res, "op.unanswered")


def test_made_get_without_role_selection():
    res = made("get_no_role")
    f = one(res, "get.no_subops")
    assert f.data["reported"]["failed"] == 2 and "role" in f.explanation


def test_made_ae_rejections_and_case():
    res = made("ae_reject")
    called = one(res, "assoc.rejected", assoc=[0])
    assert called.data["cause"] == "called AE title not recognised"
    assert called.title.startswith("called AE title not recognised: storescp was called as 'storescp'")
    assert "'STORESCP'" in called.explanation
    calling = one(res, "assoc.rejected", assoc=[1])
    assert calling.data["cause"] == "calling AE title not recognised"
    assert "'CT01'" in calling.explanation  # the calling AE the same server accepted
    variants = {tuple(sorted(f.data["variants"])) for f in findings(res, "ae.variants")}
    assert variants == {("STORESCP", "storescp"), ("CT01", "ct01")}


def test_made_no_answer_and_refused():
    res = made("no_answer")
    a = one(res, "assoc.aborted")
    assert a.data["by"] == "requestor" and "never answered" in a.explanation
    r = one(res, "tcp.refused")
    assert r.data["server"] == "127.0.0.1:11114" and r.severity == Severity.ERROR


def test_made_slow_scp():
    res = made("slow_scp")
    f = one(res, "perf.slow_side")
    assert f.data["side"] == "scp" and f.data["shares"]["processing"] > 0.6
    assert f.data["operations"] == 6


def test_crafted_store_failures_grouped(tmp_path):
    c = G.store_conversation(["1.2.3.1"], client_ae="CT01", server_ae="PACS")
    d = G.Conversation(client=("10.0.0.1", 40009), t0=1_700_000_005.0)
    d.send(0, G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))]))
    d.send(1, G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT)]))
    for k in (1, 2, 3):
        uid = f"1.2.3.{k + 10}"
        d.send(0, G.p_data((1, 3, G.c_store_rq(k, G.CT_STORAGE, uid))))
        d.send(0, G.p_data((1, 2, G.ct_dataset(uid))))
        d.send(1, G.p_data((1, 3, G.c_store_rsp(k, G.CT_STORAGE, uid, 0xA700 if k < 3 else 0xB000))))
    d.send(0, G.release_rq()).send(1, G.release_rp()).close()
    _, res = analyse(_write(tmp_path, c, d), ports=(104,))
    f = one(res, "op.failed")
    assert f.data["count"] == 2 and f.data["of"] == 3 and f.data["status"] == 0xA700
    assert f.associations == [1] and "Out of resources" in f.explanation
    w = one(res, "op.warning")
    assert w.data["status"] == 0xB000 and w.severity == Severity.WARNING
