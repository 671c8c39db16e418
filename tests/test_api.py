"""The Python API (fastdicom.open, Capture, stream) on the real captures: every
iterator against the JSON summary, summary() against the CLI, data sets against
the exported files, Arrow tables, streaming, file objects, pipes and gzip; the
docstring and README examples; mypy on the public package."""

import dataclasses
import doctest
import gzip
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import fastdicom
from fastdicom import api
from fastdicom.cli import main
from helpers import REAL, REAL_CAPTURES, ports_of

ROOT = Path(__file__).resolve().parent.parent
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
QR = REAL / "query_retrieve.pcap"


def _open(name, **kw):
    p = REAL / f"{name}.pcap"
    return fastdicom.open(p, ports=ports_of(p), **kw)


def _cli_json(capsys, path, *extra):
    code = main(["summary", str(path), "--ports", ",".join(map(str, ports_of(Path(path)))),
                 "--format", "json", *extra])
    out, _ = capsys.readouterr()
    assert code == 0
    return json.loads(out)


@pytest.fixture(scope="module")
def caps():
    """One opened (and analysed) Capture per real capture."""
    out = {n: _open(n) for n in REAL_CAPTURES}
    yield out
    for c in out.values():
        c.close()


# ------------------------------------------------------- records -> JSON keys
def _t(ns):
    return None if ns is None else ns / 1e9


def _check_time(rec, name):
    """The datetime field is the _ns field, in UTC, to the microsecond."""
    ns, dt = getattr(rec, name + "_ns"), getattr(rec, name)
    if ns is None:
        assert dt is None
    else:
        assert dt.tzinfo is timezone.utc and dt == EPOCH + timedelta(microseconds=ns // 1000)


def op_json(op):
    d = dataclasses.asdict(op)
    for k in ("association", "calling_ae", "called_ae"):
        d.pop(k)
    for k in ("request_time", "request_end_time", "first_response_time", "response_time", "cancel_time"):
        _check_time(op, k)
        d[k] = _t(d.pop(k + "_ns"))
    sub = d["sub_operations"]
    d["sub_operations"] = None if sub is None else {k: v for k, v in sub.items() if v is not None}
    return d


def assoc_json(a):
    _check_time(a, "start")
    _check_time(a, "end_time")
    abort = None
    if a.abort is not None:
        _check_time(a.abort, "time")
        abort = {k: getattr(a.abort, k) for k in ("source", "source_text", "reason", "reason_text", "by")}
        abort["time"] = _t(a.abort.time_ns)
    return {
        "id": a.id, "capture": a.capture, "client": a.client, "server": a.server,
        "calling_ae": a.calling_ae, "called_ae": a.called_ae, "result": a.result, "end": a.end,
        "state": a.state, "reject": None if a.reject is None else dataclasses.asdict(a.reject),
        "abort": abort,
        "contexts": [dataclasses.asdict(c) for c in a.contexts],
        "roles": list(a.roles), "user_info": a.user_info,
        "max_pdu_length": {"client_receives": a.max_pdu_length_client_receives,
                           "server_receives": a.max_pdu_length_server_receives},
        "start": _t(a.start_ns), "end_time": _t(a.end_time_ns), "duration": a.duration,
        "start_frame": a.start_frame, "first_pdu_end_frame": a.first_pdu_end_frame,
        "end_frame": a.end_frame,
        "bytes": {"client_to_server": a.bytes_client_to_server, "server_to_client": a.bytes_server_to_client},
        "pdus": {"client_to_server": a.pdus_client_to_server, "server_to_client": a.pdus_server_to_client},
        "gaps": a.gaps, "gap_bytes": a.gap_bytes,
        "tcp": None if a.tcp is None else dataclasses.asdict(a.tcp),
        "operations": [op_json(op) for op in a.operations],
    }


def object_json(o):
    d = {f.name: getattr(o, f.name) for f in dataclasses.fields(o) if f.name not in ("_data", "index")}
    for k in ("time_first", "time_last"):
        _check_time(o, k)
        d[k] = _t(d.pop(k + "_ns"))
    for k in api._LEADING:
        if d[k] is None:
            del d[k]  # the summary has the key only when the value was found
    return d


def expert_json(e):
    _check_time(e, "time")
    d = dataclasses.asdict(e)
    d["time"] = _t(d.pop("time_ns"))
    return d


def _norm(x):
    return json.loads(json.dumps(x))  # tuples -> lists, as in the JSON


# ---------------------------------------------------------------- summary
@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_summary_is_the_cli_json(capsys, caps, name):
    assert caps[name].summary() == _cli_json(capsys, REAL / f"{name}.pcap")


def test_summary_hash_is_the_cli_json_with_hash(capsys):
    with _open("store_syntaxes", hash_data=True) as cap:
        doc = cap.summary()
    assert doc == _cli_json(capsys, REAL / "store_syntaxes.pcap", "--hash")
    assert all(o["sha256"] for o in doc["objects"] if o["complete"])


def test_truth_through_the_api(caps):
    """The objects the peers received (truth files), seen through objects()."""
    cut = {"1.3.6.1.4.1.5962.1.1.4.1.1.20040826185059.5457"}  # query_retrieve: cut by the capture's end
    for name in REAL_CAPTURES:
        truth = json.loads((REAL / f"{name}.truth.json").read_text())
        got = {o.sop_instance_uid for o in caps[name].objects() if o.complete}
        want = {r["sop_instance_uid"] for r in truth["received"]} - cut
        assert want <= got, name


# -------------------------------------------------------------- iterators
@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_iterators_agree_with_the_summary(caps, name):
    cap = caps[name]
    doc = cap.summary()
    assocs = list(cap.associations())
    assert _norm([assoc_json(a) for a in assocs]) == doc["associations"]
    ops = list(cap.operations())
    assert [op for a in assocs for op in a.operations] == ops
    for op in ops:
        a = assocs[op.association]
        assert (op.calling_ae, op.called_ae) == (a.calling_ae, a.called_ae)
    objs = list(cap.objects())
    assert _norm([object_json(o) for o in objs]) == doc["objects"]
    assert sorted(o.index for o in objs) == list(range(len(objs)))  # in the order they ended
    assert _norm([expert_json(e) for e in cap.expert()]) == doc["expert"]
    assert len(assocs) == doc["counts"]["associations"]
    assert len(ops) == doc["counts"]["operations"]


def test_records_are_frozen_and_hashable(caps):
    cap = caps["query_retrieve"]
    op = next(cap.operations())
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.status = 1
    assert len({*cap.operations()}) == len(list(cap.operations()))
    assert len({*cap.objects()}) == len(list(cap.objects()))
    a = next(cap.associations())
    assert hash(a) == hash(next(cap.associations()))


@pytest.mark.parametrize("name", ["query_retrieve", "reject_abort", "multi_pdv", "nservices"])
def test_pdus_are_the_cli_jsonl(capsys, caps, name):
    p = REAL / f"{name}.pcap"
    assert main(["pdus", str(p), "--ports", ",".join(map(str, ports_of(p))), "--format", "jsonl"]) == 0
    want = [json.loads(line) for line in capsys.readouterr()[0].splitlines()]
    got = list(caps[name].pdus())
    assert len(got) == len(want)
    for pdu, w in zip(got, want):
        d = {"frame": pdu.frame, "frames": list(pdu.frames), "time": pdu.time_ns / 1e9,
             "time_first": pdu.time_first_ns / 1e9, "src": pdu.src, "dst": pdu.dst, "type": pdu.type,
             "type_name": pdu.type_name, "length": pdu.length, "association": pdu.association,
             "info": pdu.info, "truncated": pdu.truncated}
        if pdu.type == 4:
            d["pdvs"] = [dataclasses.asdict(v) for v in pdu.pdvs]
        assert d == w
        assert pdu.time == EPOCH + timedelta(microseconds=pdu.time_ns // 1000)


# --------------------------------------------------------------- data sets
@pytest.mark.parametrize("name", ["query_retrieve", "store_syntaxes", "multi_pdv", "big_store",
                                  "concurrent", "ipv6_oddport", "store_dcmtk"])
def test_dataset_equals_the_exported_file(tmp_path, caps, name):
    import pydicom

    cap = caps[name]
    res = cap.export(tmp_path / "out")
    assert res.counts["written"] == len(res.files) > 0
    objs = list(cap.objects())
    lines = res.manifest.read_text().splitlines()
    assert len(lines) == len(objs)  # one manifest line per object, in the same order
    for obj, line in zip(objs, lines):
        rec = json.loads(line)
        assert (rec["association"], rec["first_frame"], rec["bytes"]) == \
            (obj.association, obj.frame_first, obj.bytes)
        if not rec["file"]:
            continue
        fds = pydicom.dcmread(res.directory / rec["file"])
        ds = obj.dataset()
        assert ds == fds
        assert ds.file_meta == fds.file_meta
        assert ds.file_meta.TransferSyntaxUID == obj.transfer_syntax
        if "SOPInstanceUID" in ds:
            assert ds.SOPInstanceUID == obj.sop_instance_uid


def test_dataset_of_incomplete_object_and_after_close():
    data = (REAL / "big_store.pcap").read_bytes()
    with fastdicom.open(data[:len(data) * 3 // 10], ports=ports_of(REAL / "big_store.pcap")) as cut:
        bad = [o for o in cut.objects() if not o.complete]
        assert bad, "the capture cut in the middle of a C-STORE"
        with pytest.raises(ValueError, match="incomplete"):
            bad[0].dataset()
        partial = bad[0].dataset(allow_incomplete=True)  # missing bytes read as zeros
        assert partial.SOPInstanceUID == bad[0].sop_instance_uid
    cap = _open("query_retrieve")
    objs = list(cap.objects())
    good = next(o for o in objs if o.complete and o.command == "C-STORE-RQ")
    assert good.dataset().SOPInstanceUID == good.sop_instance_uid
    spool = cap._workdir.path
    assert spool and os.path.isdir(spool)
    cap.close()
    assert not os.path.exists(spool)
    with pytest.raises(ValueError, match="closed"):
        good.dataset()


def test_dataset_spool_is_made_once(caps, monkeypatch):
    cap = _open("store_syntaxes")
    calls = []
    real = api._run
    monkeypatch.setattr(api, "_run", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    objs = [o for o in cap.objects() if o.complete]
    assert len(calls) == 1  # the analysis
    for o in objs:
        o.dataset()
    assert len(calls) == 2  # and one spool pass for all the data sets
    assert os.path.getsize(os.path.join(cap._workdir.path, "datasets.spool")) == \
        sum(o.bytes for o in cap.objects())
    cap.close()


# ------------------------------------------------------------------- tables
TS = "timestamp[ns, tz=UTC]"


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_tables_types_and_rows(caps, name):
    import pyarrow as pa

    cap = caps[name]
    doc = cap.summary()
    t = cap.tables()
    assert set(t) == {"associations", "operations", "objects", "expert"}
    assert t["associations"].num_rows == len(doc["associations"])
    assert t["operations"].num_rows == doc["counts"]["operations"]
    assert t["objects"].num_rows == len(doc["objects"])
    assert t["expert"].num_rows == len(doc["expert"])
    schemas = api.table_schemas()
    for k, table in t.items():
        assert table.schema == schemas[k]
        assert table.column("capture").to_pylist() == [cap.name] * table.num_rows
    ops = t["operations"]
    types = {f.name: str(f.type) for f in ops.schema}
    assert types["status"] == "uint16" and types["message_id"] == "uint16"
    assert types["request_time"] == types["response_time"] == TS
    assert types["affected_sop_instance_uid"] == "string" and types["dataset_bytes"] == "int64"
    jops = [op for a in doc["associations"] for op in a["operations"]]
    assert ops.column("status").to_pylist() == [op["status"] for op in jops]
    assert ops.column("status").null_count == sum(op["status"] is None for op in jops)
    ns = ops.column("request_time").cast(pa.int64()).to_pylist()
    assert ns == [op.request_time_ns for op in cap.operations()]
    assert ops.column("calling_ae").to_pylist() == [op.calling_ae for op in cap.operations()]
    objs = t["objects"]
    assert str(objs.schema.field("time_first").type) == TS
    assert objs.column("sop_instance_uid").to_pylist() == [o["sop_instance_uid"] for o in doc["objects"]]
    assert objs.column("bytes").to_pylist() == [o["bytes"] for o in doc["objects"]]
    assoc = t["associations"]
    assert str(assoc.schema.field("start").type) == TS
    assert assoc.column("operations").to_pylist() == [len(a["operations"]) for a in doc["associations"]]
    assert [len(c) for c in assoc.column("contexts").to_pylist()] == \
        [len(a["contexts"]) for a in doc["associations"]]
    assert t["expert"].column("id").to_pylist() == [e["id"] for e in doc["expert"]]


# ------------------------------------------------------------------ stream
@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_stream_yields_what_the_full_run_has(caps, name):
    cap = caps[name]
    events = list(fastdicom.stream(REAL / f"{name}.pcap", ports=ports_of(REAL / f"{name}.pcap")))
    ops = [e for e in events if isinstance(e, fastdicom.Operation)]
    objs = [e for e in events if isinstance(e, fastdicom.Object)]
    assocs = [e for e in events if isinstance(e, fastdicom.Association)]
    assert Counter(ops) == Counter(cap.operations())
    assert objs == list(cap.objects())
    assert [e for e in events if isinstance(e, fastdicom.Expert)] == list(cap.expert())
    assert sorted(a.id for a in assocs) == [a.id for a in cap.associations()]
    full = {a.id: a for a in cap.associations()}
    for a in assocs:
        assert Counter(a.operations) == Counter(full[a.id].operations)
        assert (a.result, a.end, a.calling_ae, a.called_ae, a.contexts) == \
            (full[a.id].result, full[a.id].end, full[a.id].calling_ae, full[a.id].called_ae,
             full[a.id].contexts)
    # each operation comes before the end of its association
    pos = {id(e): k for k, e in enumerate(events)}
    end = {a.id: pos[id(a)] for a in assocs}
    assert all(pos[id(op)] < end[op.association] for op in ops)


def test_stream_datasets_and_memory():
    p = REAL / "store_syntaxes.pcap"
    with fastdicom.open(p, ports=ports_of(p)) as cap:
        want = {o.index: o.dataset() for o in cap.objects() if o.complete}
    got = {}
    dec = None
    orig = api._StreamDecoder.__init__

    def spy(self, *a, **k):
        nonlocal dec
        dec = self
        orig(self, *a, **k)

    api._StreamDecoder.__init__ = spy
    try:
        for ev in fastdicom.stream(p, ports=ports_of(p), datasets=True):
            if isinstance(ev, fastdicom.Object) and ev.complete:
                got[ev.index] = ev.dataset()
    finally:
        api._StreamDecoder.__init__ = orig
    assert got == want and got
    # nothing that ended is kept
    assert dec.flows == {} and dec.objects == [] and dec.expert == []
    assert all(a is None for a in dec.associations)
    with pytest.raises(ValueError, match="datasets=True"):
        next(e for e in fastdicom.stream(p, ports=ports_of(p)) if isinstance(e, fastdicom.Object)).dataset()


# ------------------------------------------------------ inputs of every kind
def _same_analysis(a, b):
    da, db = a.summary(), b.summary()
    for k in ("associations", "objects", "expert", "tcp_attempts"):
        for x in da[k] + db[k]:
            x.pop("capture", None)  # the capture's name
    for k in ("associations", "objects", "expert", "counts", "tcp_attempts"):
        assert _norm(da[k]) == _norm(db[k]), k


def test_file_object_bytes_and_gzip(caps):
    ref = caps["query_retrieve"]
    data = QR.read_bytes()
    ports = ports_of(QR)
    with builtins_open(QR) as f:
        f.read(0)
        cap = fastdicom.open(f, ports=ports, name=str(QR))
        _same_analysis(cap, ref)
        assert cap.summary() == ref.summary()  # same name, same bytes: the same document
        assert len(list(cap.pdus())) == len(list(ref.pdus()))  # read again from the start
    gz = gzip.compress(data)
    cap = fastdicom.open(io.BytesIO(gz), ports=ports)
    _same_analysis(cap, ref)
    assert cap.summary()["captures"][0]["gzip"] is True
    assert cap.name == "<stream>"
    obj = next(o for o in cap.objects() if o.complete)
    assert obj.dataset() == next(o for o in ref.objects() if o.index == obj.index).dataset()
    cap.close()
    cap = fastdicom.open(gz, ports=ports, name="qr.pcap.gz")
    _same_analysis(cap, ref)
    assert cap.summary()["captures"][0]["name"] == "qr.pcap.gz"


def test_gzip_file_on_disk(tmp_path, caps, capsys):
    p = tmp_path / "qr.pcap.gz"
    p.write_bytes(gzip.compress(QR.read_bytes()))
    cap = fastdicom.open(p, ports=ports_of(QR))
    _same_analysis(cap, caps["query_retrieve"])
    code = main(["summary", str(p), "--ports", "5678,11113", "--format", "json"])
    assert code == 0 and cap.summary() == json.loads(capsys.readouterr()[0])


def test_pipe_is_copied_once_for_later_passes(caps, monkeypatch):
    ref = caps["query_retrieve"]
    proc = subprocess.Popen(["cat", str(QR)], stdout=subprocess.PIPE)
    try:
        assert not proc.stdout.seekable()
        cap = fastdicom.open(proc.stdout, ports=ports_of(QR))
        # the PDU pass comes first: the analysis reads (and copies) the pipe before it
        assert len(list(cap.pdus())) == len(list(ref.pdus()))
        _same_analysis(cap, ref)
        objs = [o for o in cap.objects() if o.complete]
        assert [o.dataset() for o in objs] == [o.dataset() for o in ref.objects() if o.complete]
        copy = os.path.join(cap._workdir.path, "input.copy")
        assert os.path.getsize(copy) == QR.stat().st_size
        cap.close()
    finally:
        proc.wait()
    # standard input: "-"
    proc = subprocess.Popen(["cat", str(QR)], stdout=subprocess.PIPE)
    try:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(proc.stdout))
        evs = list(fastdicom.stream("-", ports=ports_of(QR)))
        assert Counter(e for e in evs if isinstance(e, fastdicom.Operation)) == Counter(ref.operations())
    finally:
        proc.wait()


def builtins_open(p):
    import builtins

    return builtins.open(p, "rb")


def test_errors():
    with pytest.raises(fastdicom.CaptureReadError, match="no-such.pcap"):
        fastdicom.open("/nonexistent/no-such.pcap")
    cap = fastdicom.open(b"this is not a capture at all", name="junk")
    with pytest.raises(fastdicom.CaptureFormatError, match="junk"):
        cap.summary()
    with pytest.raises(TypeError, match="unknown option"):
        fastdicom.open(QR, colour="blue")
    with pytest.raises(TypeError, match="binary"):
        fastdicom.open(io.StringIO("text"))
    with pytest.raises(ValueError):
        fastdicom.open(QR, ports=[0])
    assert fastdicom.open(QR, ports="5678, 11113")._options.ports == (5678, 11113)


# ------------------------------------------------- cheap import, docs, types
def test_import_is_cheap():
    code = ("import sys, fastdicom; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'pydicom', 'dask', "
            "'duckdb', 'rich')], sorted(sys.modules); "
            "assert 'fastdicom.api' not in sys.modules and 'fastdicom.core' not in sys.modules; "
            "cap = fastdicom.open(fastdicom.samples.path()); list(cap.operations()); cap.summary(); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'pydicom', 'dask')]")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


def test_public_names():
    for name in fastdicom.__all__:
        assert getattr(fastdicom, name) is not None
    assert fastdicom.open is api.open and "open" in dir(fastdicom)
    with pytest.raises(AttributeError):
        fastdicom.no_such_thing  # noqa: B018


def test_api_docstring_examples():
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20 and result.failed == 0


def _readme_examples():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```pycon\n(.*?)```", text, flags=re.S)


def test_readme_examples(tmp_path, monkeypatch):
    blocks = _readme_examples()
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    globs = {}
    for k, block in enumerate(blocks):
        test = parser.get_doctest(block, globs, f"README[{k}]", "README.md", 0)
        runner.run(test, clear_globs=False)
        globs = test.globs  # one session across the blocks
    res = runner.summarize(verbose=False)
    assert res.failed == 0 and res.attempted > 5


def test_mypy_clean(request, tmp_path_factory):
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed (it comes with the 'test' extra)")
    cache = request.config.cache.mkdir("mypy") if getattr(request.config, "cache", None) else \
        tmp_path_factory.mktemp("mypy")
    files = ["src/fastdicom/api.py", "src/fastdicom/__init__.py", "src/fastdicom/batch.py"]
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *files],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
