"""The summary made from records as connections end is the summary made from
the whole decoder.

``summary`` runs a ``SummarySink(records=True)`` with a decoder made with
``keep_ended=False``: each connection's associations and objects become
their JSON records when the connection is over, and the decoder forgets it.
These tests hold that document equal to the one ``build`` makes from a
decoder that kept everything, on every capture the tests have (clean,
mutated as a tap mutates them, several captures in one run, redacted, with
digests), and check that what ended is really let go.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import pcapgen as G
from fastdicom import capture, summary
from fastdicom.decoder import Decoder
from helpers import DATA, ports_of
from mutations import mutate

CAPTURES = sorted(p for d in ("real", "public", "made", "loopback") for p in (DATA / d).iterdir()
                  if p.suffix in (".pcap", ".pcapng", ".gz") or p.name.endswith(".pcap.gz"))


def _run(paths, records: bool, redact=False, hash_data=False, ports=None, sinks=(), spill=False, hold=None,
         json_text=False):
    sink = summary.SummarySink(records=records, redact=redact, spill=spill, hold=hold, json_text=json_text)
    dec = Decoder([sink, *sinks], hash_data=hash_data, keep_ended=not records, keep_objects=not records)
    opts = capture.EngineOptions(ports=ports or ports_of(Path(paths[0])))
    infos = capture.run([str(p) for p in paths], dec, opts, read_ahead=False)
    return summary.build(dec, infos, sink, redact=redact), dec, sink


def _text(doc) -> str:
    """The document as written: its order counts (== on dicts ignores it)."""
    out = io.StringIO()
    summary.write_json(doc, out)
    return out.getvalue()


def _both(paths, **kw):
    """The whole decoder's summary, and the records' (held or spilled to a file)."""
    whole, _, _ = _run(paths, records=False, **kw)
    recs, dec, sink = _run(paths, records=True, **kw)
    text = _text(whole)
    for hold in (0, 3, None):  # every record in the file, the first 3 held, all held
        spilled, _, ssink = _run(paths, records=True, spill=True, hold=hold, **kw)
        # a spilled summary holds at most ``hold`` records in memory; its lists
        # read the others back from the file
        assert len(ssink.spill._held) <= (summary.HOLD_RECORDS if hold is None else hold)
        assert isinstance(spilled["associations"], summary.RecordList) == ssink.spill.in_file
        assert _text(spilled) == text
        for write in (_jsonl, _csv, _report):
            assert write(spilled) == write(whole)
        # kept as their JSON text (what `summary --format json` does): the same characters
        texts, _, tsink = _run(paths, records=True, spill=True, hold=hold, json_text=True, **kw)
        assert all(type(x) is tuple for x in tsink.spill._held)
        assert isinstance(texts["associations"], summary.RecordList) and texts["associations"].text
        assert _text(texts) == text
    return text, _text(recs), dec, sink


def _jsonl(doc) -> str:
    return "\n".join(json.dumps(line) for line in summary.jsonl_lines(doc))


def _report(doc) -> str:
    """The text summary, with a short and a long list of the slowest operations."""
    texts = []
    for slowest in (0, 1, 3, 10_000):
        out = io.StringIO()
        summary.render_text(doc, out, slowest=slowest, to_file=True)
        texts.append(out.getvalue())
    return "\f".join(texts)


def _csv(doc) -> str:
    out = io.StringIO()
    summary.write_csv(doc, out)
    return out.getvalue()


def test_every_capture_is_found():
    assert len(CAPTURES) >= 25


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_records_give_the_whole_decoder_summary(path):
    whole, recs, dec, sink = _both([path])
    assert recs == whole
    # what ended is let go: no connection, association, object or fact is held
    assert dec.flows == {}
    assert all(a is None for a in dec.associations)
    assert dec.objects == []
    assert sink.object_info == {} and sink._ended == {}


@pytest.mark.parametrize("name", ["store_dcmtk", "concurrent"])
@pytest.mark.parametrize("mode", ["reorder", "dup", "overlap", "drop", "midstream"])
def test_records_on_what_a_tap_does(tmp_path, name, mode):
    src = DATA / "real" / f"{name}.pcap"
    if not src.exists():
        pytest.fail(f"fixture {src} is missing")
    out = tmp_path / f"{name}.{mode}.pcap"
    out.write_bytes(mutate(src.read_bytes(), mode, seed=3, rate=0.08))
    whole, recs, _, _ = _both([out], ports=ports_of(src))
    assert recs == whole
    assert json.loads(whole)["counts"]["associations"] > 0


def test_records_redacted_and_hashed():
    path = DATA / "real" / "store_syntaxes.pcap"
    whole, recs, _, _ = _both([path], redact=True, hash_data=True)
    assert recs == whole
    assert any(o["sha256"] for o in json.loads(recs)["objects"])


def test_records_of_several_captures_in_one_run(tmp_path):
    """Association numbers and object order over captures, the same file twice included."""
    real = sorted((DATA / "real").glob("*.pcap"))[:3]
    paths = real + [real[0]]
    whole, recs, _, _ = _both(paths, ports=(104, 11112, 11113, 11114))
    assert recs == whole
    assocs = json.loads(recs)["associations"]
    assert [a["id"] for a in assocs] == list(range(len(assocs)))


def _many(n, tmp_path, overlap=False):
    """``n`` small C-STORE associations, one after another (or all at once)."""
    convs = [G.store_conversation([f"1.2.3.{k}"], client=("10.0.0.1", 40000 + k),
                                  t0=1_700_000_000.0 + (0 if overlap else k * 0.01)) for k in range(n)]
    p = tmp_path / "many.pcap"
    p.write_bytes(G.pcap(*convs, interleave=overlap))
    return p


@pytest.mark.parametrize("overlap", [False, True])
def test_records_of_many_associations(tmp_path, overlap):
    path = _many(40, tmp_path, overlap)
    whole, recs, _, _ = _both([path], ports=(104,))
    assert recs == whole
    counts = json.loads(recs)["counts"]
    assert counts["associations"] == 40 and counts["objects"] == 40


class _Watch:
    """Counts on_connection_end, and how many connections the decoder holds then."""

    def __init__(self):
        self.ended = []
        self.held = []
        self.decoder = None

    def on_connection_end(self, fl):
        self.ended.append(fl.id)
        self.held.append(len(self.decoder.flows))


@pytest.mark.parametrize("keep", [True, False])
def test_each_connection_ends_once(tmp_path, keep):
    path = _many(25, tmp_path)
    w = _Watch()
    dec = Decoder([w], keep_ended=keep)
    w.decoder = dec
    capture.run([str(path)], dec, capture.EngineOptions(ports=(104,)), read_ahead=False)
    assert sorted(w.ended) == sorted(set(w.ended)) and len(w.ended) == 25
    if keep:
        assert len([a for a in dec.associations if a is not None]) == 25
    else:
        # one after another: a connection is forgotten before the next ends
        assert max(w.held) == 1
        assert dec.associations == [None] * 25


def test_summary_command_output_is_unchanged(tmp_path, capsys):
    """The command (records) against build() over a decoder that kept everything."""
    from fastdicom import cli
    path = DATA / "real" / "concurrent.pcap"
    out = tmp_path / "s.json"
    assert cli.main(["summary", str(path), "--format", "json", "-o", str(out), "--workers", "1"]) == 0
    whole, _, _ = _run([path], records=False, ports=(104, 11112))
    mine = tmp_path / "w.json"
    with open(mine, "w") as f:
        summary.write_json(whole, f)
    assert out.read_bytes() == mine.read_bytes()


CYCLE_CAPTURES = ["query_retrieve", "nservices", "reject_abort", "concurrent", "multi_pdv", "negotiation"]


@pytest.mark.parametrize("name", CYCLE_CAPTURES)
def test_forgotten_connections_leave_no_cycles(name):
    """A forgotten connection is freed by reference counting at once, not
    left for the cyclic collector (whose passes over it cost time)."""
    import gc
    path = DATA / "real" / f"{name}.pcap"
    gc.collect()
    gc.disable()
    try:
        _, dec, sink = _run([path], records=True)
        found = gc.collect()
    finally:
        gc.enable()
    assert dec.flows == {} and sink.spill._held  # the records were made
    # a few objects of the run's own (frames, the engine) may be cyclic; a
    # connection's are dozens each
    assert found < 40, found


def test_spilled_lists_read_again_and_empty(tmp_path):
    """A RecordList reads its records again on every pass; a run with no
    association writes the same document as a held one."""
    path = DATA / "real" / "concurrent.pcap"
    doc, _, sink = _run([path], records=True, spill=True, hold=1)
    assert sink.spill._file is not None  # the file was used
    first = list(doc["associations"])
    assert first == list(doc["associations"]) and len(first) == len(doc["associations"]) > 1
    assert [a["id"] for a in first] == list(range(len(first)))
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(G.pcap())
    whole, recs, _, _ = _both([empty], ports=(104,))
    assert recs == whole and json.loads(whole)["associations"] == []


class _Name(str):
    """A str of a type of its own (marshal refuses it)."""


def test_spill_takes_what_marshal_cannot():
    """A record of a type marshal refuses goes by pickle, and reads back equal."""
    sp = summary.RecordSpill(hold=0)
    odd = {"calling_ae": _Name("CT01"), "n": 2**70, "t": 1700000000.0006988, "x": [None, True]}
    plain = {"a": [1, 2.5, "b"], "c": {"d": None}}
    at1, at2 = sp.put(odd), sp.put(plain)
    assert sp.get(at2) == plain and sp.get(at1) == odd
    assert list(sp.get(at2)) == ["a", "c"]  # order kept


@pytest.mark.parametrize("slowest", [1, 2, 5, 1000])
def test_slowest_operations_as_a_stable_sort(slowest):
    """The text summary's slowest operations, kept in a bounded heap, are the
    first ``slowest`` of a stable sort by latency, ties in order of appearance."""
    import re
    doc, _, _ = _run([DATA / "real" / "query_retrieve.pcap"], records=True)
    ops = [(op, a["id"]) for a in doc["associations"] for op in a["operations"]]
    assert len(ops) >= 6
    for k, (op, _) in enumerate(ops):  # many ties, and a few without a latency
        op["latency"] = None if k % 7 == 3 else [0.5, 0.2, 0.5, 0.9, 0.2][k % 5]
        op["message_id"] = 1000 + k  # tells the rows apart
    timed = [(op, aid) for op, aid in ops if op["latency"] is not None]
    want = sorted(timed, key=lambda r: -r[0]["latency"])[:slowest]
    out = io.StringIO()
    summary.render_text(doc, out, slowest=slowest, to_file=True)
    text = out.getvalue()
    assert f"Slowest operations (top {min(slowest, len(timed))})" in text
    part = text.split("Slowest operations", 1)[1].split("\n\n", 1)[0]
    got = [int(m) for m in re.findall(r"\b(1\d{3})\b", part)]
    assert got == [op["message_id"] for op, _ in want]


def test_spilled_batches_of_records(tmp_path):
    """More records in the file than one batch of the writer (512)."""
    path = _many(600, tmp_path)
    whole, _, _ = _run([path], records=False, ports=(104,))
    spilled, _, sink = _run([path], records=True, spill=True, hold=5, ports=(104,))
    assert sink.spill.in_file and len(spilled["objects"]) == 600
    assert _text(spilled) == _text(whole)


def test_a_spill_file_that_fails_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """No room for the temporary file: one line naming it, exit status 2."""
    import errno
    import tempfile
    from fastdicom import cli

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(summary, "HOLD_RECORDS", 2)
    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    path = _many(5, tmp_path)
    out = tmp_path / "s.json"
    assert cli.main(["summary", str(path), "--ports", "104", "--format", "json", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "temporary file" in err and "No space left on device" in err and "TMPDIR" in err
    assert "Traceback" not in err and "internal error" not in err


def test_same_associate_bytes_decoded_once(tmp_path, monkeypatch):
    """Associations whose A-ASSOCIATE-RQ/AC bytes are the same share one
    decoding; the memory of them is bounded in number and in size."""
    path = _many(6, tmp_path)
    dec = Decoder([])
    capture.run([str(path)], dec, capture.EngineOptions(ports=(104,)), read_ahead=False)
    rqs = {id(a.rq) for a in dec.associations}
    acs = {id(a.ac) for a in dec.associations}
    assert len(dec.associations) == 6 and len(rqs) == 1 and len(acs) == 1
    assert len(dec._associate_seen) == 2
    # at most ASSOCIATE_SEEN bodies, none longer than ASSOCIATE_SEEN_BYTES
    from fastdicom import pdu as P
    monkeypatch.setattr(Decoder, "ASSOCIATE_SEEN", 2)
    d2 = Decoder([])
    bodies = [G.assoc_rq("SCP", f"SCU{k}")[6:] for k in range(5)]
    for b in bodies:
        assert d2._decode_associate(b, True, False).calling_ae == P.decode_associate(b, True, False).calling_ae
    assert len(d2._associate_seen) == 2
    big = G.assoc_rq("SCP", "SCU", [(k, G.VERIFICATION, (G.IMPLICIT,) * 200) for k in range(1, 8, 2)])[6:]
    assert len(big) > Decoder.ASSOCIATE_SEEN_BYTES
    assert d2._decode_associate(big, True, False) is not d2._decode_associate(big, True, False)


def test_record_text_cuts_at_the_number():
    """A record kept as its JSON text: cut around its first member's number,
    which the document's order fills in; compact and expanded records, and a
    record whose number is None (left as it is)."""
    compact = {"association": 12, "capture": "a.pcap", "note": '"association": 12'}
    head, tail = summary.record_text(compact, "association")
    assert head == '{"association": ' and tail.startswith(', "capture"')
    expanded = {"id": 7, "capture": "a.pcap", "operations": [{"command": "C-ECHO"}]}
    head, tail = summary.record_text(expanded, "id")
    assert head.endswith('"id": ') and tail.startswith(',\n   "capture"')
    for rec, key, head_tail in ((compact, "association", summary.record_text(compact, "association")),
                                (expanded, "id", summary.record_text(expanded, "id"))):
        for n in (0, 3, 123456):
            doc = {"rows": [dict(rec, **{key: n})]}
            want = _text(doc)
            assert (head_tail[0] + repr(n) + head_tail[1]) in want
    none = {"association": None, "capture": "a.pcap"}
    assert summary.record_text(none, "association") == ('{"association": null, "capture": "a.pcap"}', None)


@pytest.mark.parametrize("batch", [1, 2, 3, 7, 1024])
def test_joined_texts_in_batches(batch):
    """The JSON texts of a list of records, joined a batch at a time, are the
    whole list's join (the first batch's leading separator dropped)."""
    path = DATA / "real" / "concurrent.pcap"
    doc, _, sink = _run([path], records=True, spill=True, hold=2, json_text=True)
    for rl in (doc["associations"], doc["objects"]):
        texts = list(rl)
        assert len(texts) > 3
        pieces = list(rl.joined_texts(",\n  ", batch=batch))
        assert len(pieces) == -(-len(texts) // batch)
        assert "".join(pieces) == ",\n  ".join(texts)
