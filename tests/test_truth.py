"""The JSON summary against what the peers themselves saw (NAME.truth.json)."""

from collections import Counter

import pytest

from fastdicom.status import status_class
from helpers import REAL_CAPTURES, summarize, truth

PENDING = (0xFF00, 0xFF01)

# What the peers saw but the capture does not hold: tcpdump stopped before the
# traffic ended.  Each is checked below to really be cut (the last PDU of the
# capture is truncated), so the exception cannot hide a decoding bug.
CUT_BY_CAPTURE_END = {
    # the second C-ECHO-RSP: only its first 12 bytes are in the capture
    "echo_dcmtk": {"operations": [("C-ECHO", 0)]},
    # the C-GET on the last association: only the A-ASSOCIATE and 12 bytes of
    # the C-GET-RQ are captured, not the C-STORE sub-operation to GETTER
    "query_retrieve": {"received": ["1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"]},
}


@pytest.fixture(scope="module", params=REAL_CAPTURES)
def case(request):
    name = request.param
    # data_limit=-1: every data set byte reaches the decoder, so SHA-256 can be checked
    return name, summarize(f"tests/data/real/{name}.pcap", heuristic=True, data_limit=-1), truth(name)


def _outcome_ok(a, outcome):
    if outcome == "accepted":
        return a["result"] == "accepted"
    if outcome == "rejected":
        return a["result"] == "rejected" and a["reject"] is not None
    if outcome == "aborted-by-scu":
        return a["end"] == "aborted" and a["abort"]["by"] == "client"
    if outcome == "aborted-by-scp":
        return a["end"] == "aborted" and a["abort"]["by"] == "server"
    if outcome == "failed":  # the SCP saw the association fail: here, an A-ABORT
        return a["end"] == "aborted"
    raise AssertionError(f"unknown truth outcome {outcome}")


def test_associations(case):
    name, doc, t = case
    ours = doc["associations"]
    for ta in t["associations"]:
        match = [a for a in ours if a["calling_ae"] == ta["calling_ae"] and a["called_ae"] == ta["called_ae"]
                 and _outcome_ok(a, ta["outcome"])]
        assert match, f"{name}: no association {ta} in {[(a['calling_ae'], a['called_ae'], a['result'], a['end']) for a in ours]}"
        for ctx_uid in ta.get("rejected_contexts", []):
            rejected = [c for a in match for c in a["contexts"]
                        if c["abstract_syntax"] == ctx_uid and c["result"] == "rejected"]
            assert rejected, f"{name}: context {ctx_uid} not reported rejected"


def test_operations(case):
    name, doc, t = case
    cut = CUT_BY_CAPTURE_END.get(name, {})
    ours_final = Counter()
    ours_pending = Counter()
    ours_uids = Counter()
    for a in doc["associations"]:
        for op in a["operations"]:
            ours_pending[op["command"]] += op["pending_responses"]
            if op["status"] is not None:
                ours_final[(op["command"], op["status"])] += 1
                if op["command"] == "C-STORE":
                    ours_uids[(op["affected_sop_instance_uid"], op["status"])] += 1
    want_final = Counter()
    want_pending = Counter()
    want_uids = Counter()
    for op in t["operations"]:
        if op["status"] in PENDING:
            want_pending[op["kind"]] += 1
        else:
            want_final[(op["kind"], op["status"])] += 1
            if "sop_instance_uid" in op:
                want_uids[(op["sop_instance_uid"], op["status"])] += 1
    for k in cut.get("operations", []):
        want_final[k] -= 1
    assert +want_final <= ours_final or want_final == ours_final, (name, want_final, ours_final)
    assert (+want_final - ours_final) == Counter(), (name, want_final, ours_final)
    for kind, n in want_pending.items():
        assert ours_pending[kind] == n, (name, kind, n, ours_pending)
    assert (+want_uids - ours_uids) == Counter(), (name, want_uids, ours_uids)


def test_received_objects(case):
    name, doc, t = case
    cut = CUT_BY_CAPTURE_END.get(name, {})
    objects = doc["objects"]
    for r in t["received"]:
        if r["sop_instance_uid"] in cut.get("received", []):
            continue
        match = [o for o in objects if o["sop_instance_uid"] == r["sop_instance_uid"] and o["complete"]
                 and o["transfer_syntax"] == r["transfer_syntax"]]
        assert match, f"{name}: received object {r['sop_instance_uid']} missing or incomplete"
        if "dataset_sha256" in r:
            assert any(o["sha256"] == r["dataset_sha256"] and o["bytes"] == r["dataset_len"]
                       for o in match), f"{name}: {r['sop_instance_uid']} bytes differ"


@pytest.mark.parametrize("name", sorted(CUT_BY_CAPTURE_END))
def test_cut_captures_really_end_inside_a_pdu(name):
    doc = summarize(f"tests/data/real/{name}.pcap")
    last = max(doc["expert"], key=lambda e: e["frame"] or 0)
    assert any(e["id"] == "dicom.pdu.truncated" for e in doc["expert"]), name
    assert last["id"] in ("dicom.pdu.truncated", "dicom.op.unanswered", "dicom.assoc.no_release")


def test_no_unearned_errors(case):
    """Captures of real peers raise error-severity expert info only for what the
    peers themselves saw fail (a failure status)."""
    name, doc, t = case
    failures = sorted(op["status"] for op in t["operations"] if status_class(op["status"]) == "failure")
    errors = [e for e in doc["expert"] if e["severity"] == "error"]
    assert sorted(e["id"] for e in errors) == ["dicom.status.failure"] * len(failures), errors
    for e, status in zip(errors, failures):
        assert f"0x{status:04x}" in e["message"]
