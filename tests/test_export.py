"""Export: every data set, byte for byte, as a valid Part 10 file; never an
incomplete object under a normal name; safe names."""

import hashlib
import json
import os
import struct

import pydicom
import pytest

from fastdicom import capture
from fastdicom.decoder import Decoder
from fastdicom.export import ARTIFICIAL_INSTANCE_ROOT, IMPLEMENTATION_CLASS_UID, Exporter, safe_name, verify
from helpers import REAL, REAL_CAPTURES, ports_of, truth
import mutations
from mutations import mutate
import pcapgen as G


def export(path, out, ports=None, **kw):
    ex = Exporter(str(out), **kw)
    dec = Decoder([ex])
    ex.decoder = dec
    try:
        capture.run([str(path)], dec, capture.EngineOptions(ports=ports or ports_of(path), data_limit=-1))
    finally:
        ex.close()
    return ex, dec


def dataset_bytes(path):
    raw = open(path, "rb").read()
    assert raw[128:132] == b"DICM"
    glen = struct.unpack("<I", raw[140:144])[0]
    return raw[144 + glen:]


def score(truth_doc, out_dir):
    """Like the project's check_export: received objects found byte for byte."""
    got = {}
    for root, _, names in os.walk(out_dir):
        for n in names:
            if not n.endswith(".dcm"):
                continue
            p = os.path.join(root, n)
            ds = pydicom.dcmread(p)
            uid = str(ds.file_meta.MediaStorageSOPInstanceUID)
            got.setdefault(uid, []).append(hashlib.sha256(dataset_bytes(p)).hexdigest())
    ok = miss = 0
    for r in truth_doc["received"]:
        h = r.get("dataset_sha256")
        if r["sop_instance_uid"] in got and (h is None or h in got[r["sop_instance_uid"]]):
            ok += 1
        else:
            miss += 1
    return ok, miss


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_real_captures_export_byte_exact(name, tmp_path):
    ex, dec = export(REAL / f"{name}.pcap", tmp_path)
    ok, miss = score(truth(name), tmp_path)
    assert miss == 0 and ok == len(truth(name)["received"])
    assert verify(str(tmp_path)) == []
    lines = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == len(dec.objects)
    for rec in lines:
        if rec["file"]:
            ds = pydicom.dcmread(tmp_path / rec["file"])
            m = ds.file_meta
            # bare UIDs, never "UID (Name)" (Wireshark bug B1)
            for uid in (m.MediaStorageSOPClassUID, m.MediaStorageSOPInstanceUID, m.TransferSyntaxUID):
                assert all(c in "0123456789." for c in str(uid)), uid
            assert m.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
            assert m.ImplementationClassUID.startswith("2.25.")
            assert m.TransferSyntaxUID == rec["transfer_syntax"]
            want_ae = rec["calling_ae"] if rec["direction"] == "client_to_server" else rec["called_ae"]
            assert m.SourceApplicationEntityTitle.strip() == want_ae
            assert hashlib.sha256(dataset_bytes(tmp_path / rec["file"])).hexdigest() == rec["sha256"]


@pytest.mark.parametrize("mode", ["reorder", "dup", "overlap", "vlan", "qinq", "sll", "rawip", "nanosec",
                                  "bigendian", "pcapng", "gzip"])
@pytest.mark.parametrize("name", ["store_syntaxes", "concurrent", "multi_pdv"])
def test_mutated_captures_export_byte_exact(name, mode, tmp_path):
    src = tmp_path / "in.pcap"
    src.write_bytes(mutate((REAL / f"{name}.pcap").read_bytes(), mode, seed=3))
    export(src, tmp_path / "out", ports=ports_of(REAL / f"{name}.pcap"))
    ok, miss = score(truth(name), tmp_path / "out")
    assert miss == 0


def _manifest(out):
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]


def _object_key(rec):
    """What names a message in both exports: not the AE titles (lost with a
    dropped A-ASSOCIATE) nor fastdicom's artificial UIDs (numbered per export)."""
    uid = rec["sop_instance_uid"]
    return (rec["direction"], rec["message_id"], rec["command"],
            None if uid.startswith(ARTIFICIAL_INSTANCE_ROOT) else uid)


@pytest.mark.parametrize("rate", [0.03, 0.1])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("name", ["store_syntaxes", "concurrent", "big_store", "multi_pdv", "store_dcmtk",
                                  "query_retrieve", "reject_abort", "nservices"])
def test_drop_never_claims_a_damaged_object_complete(name, seed, rate, tmp_path):
    """Every file that claims to be complete holds exactly what the whole
    capture's export holds for that message (itself checked against the
    truth files).  Among the cases: segments lost between a command and its
    data set, that held its first PDVs (the data set must not look whole from
    the PDU the framer resynchronised on)."""
    ports = ports_of(REAL / f"{name}.pcap")
    export(REAL / f"{name}.pcap", tmp_path / "full", ports=ports)
    whole = {}
    for rec in _manifest(tmp_path / "full"):
        assert rec["complete"]
        whole.setdefault(_object_key(rec), set()).add(rec["sha256"])
    src = tmp_path / "in.pcap"
    src.write_bytes(mutate((REAL / f"{name}.pcap").read_bytes(), "drop", seed=seed, rate=rate))
    out = tmp_path / "out"
    ex, dec = export(src, out, ports=ports, keep_incomplete=True)
    partial = 0
    for rec in _manifest(out):
        if rec["file"] is None:
            continue
        if rec["complete"]:
            assert rec["file"].endswith(".dcm")
            assert rec["sha256"] in whole.get(_object_key(rec), set()), rec["file"]
            assert hashlib.sha256(dataset_bytes(out / rec["file"])).hexdigest() == rec["sha256"]
        else:
            assert rec["file"].endswith(".dcm.partial")
            partial += 1
    assert partial == ex.counts["partial"]
    assert any(e.id == "export.partial" for e in dec.expert) == bool(partial)


class _Pdus:
    def __init__(self):
        self.pdus = []

    def on_pdu(self, rec):
        self.pdus.append(rec)


@pytest.mark.parametrize("name,rate", [
    ("store_syntaxes", 0.4), ("concurrent", 0.4), ("concurrent", 0.2), ("store_syntaxes", 0.2),
    # the capture starts inside a PDU whose pixel data holds a P-DATA header claiming
    # 16 MB: the framer must not skip that length and miss the PDUs behind it
    ("multi_pdv", 0.2), ("multi_pdv", 0.4), ("store_dcmtk", 0.2),
    ("query_retrieve", 0.3), ("nservices", 0.3)])
def test_midstream_exports_every_object_that_began_after_the_start(name, rate, tmp_path):
    """Every message whose first PDU (its command's) is in the capture is
    exported whole, as in the export of the whole capture."""
    data = (REAL / f"{name}.pcap").read_bytes()
    ports = ports_of(REAL / f"{name}.pcap")
    pdus = _Pdus()
    dec = Decoder([pdus], keep_pdus=True)
    capture.run([str(REAL / f"{name}.pcap")], dec, capture.EngineOptions(ports=ports, data_limit=-1))
    command_pdu = {}
    for rec in pdus.pdus:
        for pdv in rec.pdvs:
            if pdv.command is not None:
                command_pdu[id(pdv.command)] = rec.frame_first
    _, pkts = mutations.read(data)
    cut = int(len(pkts) * rate)  # frames dropped from the front (as ../shared/tools/mutate.py does)
    after = [t for t in dec.objects if t.complete and t.command is not None
             and command_pdu[id(t.command)] > cut]
    src = tmp_path / "in.pcap"
    src.write_bytes(mutations.write(pkts[cut:]))
    export(src, tmp_path / "mid", ports=ports)
    got = {rec["sha256"] for rec in _manifest(tmp_path / "mid") if rec["complete"]}
    assert after
    for t in after:
        assert t.sha256 in got, (t.command.name, t.command.message_id)


def test_hostile_uids_stay_inside_the_output_folder(tmp_path):
    uids = ["../../etc/passwd", "/etc/shadow", "..", "a/../../b", "1.2.3\\..\\x", "\x1b[31mred"]
    conv = G.store_conversation(uids, client_ae="../../AE")
    src = tmp_path / "evil.pcap"
    src.write_bytes(G.pcap(conv))
    out = tmp_path / "out"
    for layout in ("flat", "association", "patient"):
        ex, dec = export(src, out / layout, ports=(104,), layout=layout)
        assert ex.counts["written"] == len(uids)
    for root, dirs, names in os.walk(tmp_path):
        for n in names + dirs:
            real = os.path.realpath(os.path.join(root, n))
            assert real.startswith(str(tmp_path) + os.sep)
            assert n not in (".", "..") and "/" not in n and "\\" not in n and "\x1b" not in n
    assert not (tmp_path.parent / "etc").exists()


def test_collisions_never_overwrite(tmp_path):
    conv = G.store_conversation(["1.2.3.4", "1.2.3.4", "1.2.3.4"])
    src = tmp_path / "dup.pcap"
    src.write_bytes(G.pcap(conv))
    out = tmp_path / "out"
    out.mkdir()
    (out / "CT01_1_1.2.3.4.dcm").write_bytes(b"precious")
    ex, dec = export(src, out, ports=(104,))
    assert (out / "CT01_1_1.2.3.4.dcm").read_bytes() == b"precious"
    files = sorted(p.name for p in out.glob("*.dcm"))
    assert len(files) == 4


def test_symlinked_output_folder_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(Exception):
        Exporter(str(tmp_path / "link"))


def test_min_size_commands_and_no_meta(tmp_path):
    path = REAL / "nservices.pcap"
    ex, _ = export(path, tmp_path / "a", min_size=450)  # meta header plus data, as Wireshark's
    sizes = [os.path.getsize(p) for p in (tmp_path / "a").glob("*.dcm")]
    assert sizes and min(sizes) >= 450 and ex.counts["skipped_small"] == 2
    ex, _ = export(path, tmp_path / "b", include_commands=True)
    cmds = [json.loads(x) for x in (tmp_path / "b" / "manifest.jsonl").read_text().splitlines()
            if json.loads(x).get("kind") == "command"]
    assert len(cmds) == 6  # N-CREATE, N-SET, N-ACTION: requests and responses
    for c in cmds:
        ds = pydicom.dcmread(tmp_path / "b" / c["file"])
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"  # commands: implicit VR LE
        assert str(ds.file_meta.MediaStorageSOPClassUID).startswith("2.25.")
        assert ds[0x00000100].value in (0x0140, 0x8140, 0x0120, 0x8120, 0x0130, 0x8130)
    ex, dec = export(path, tmp_path / "c", meta_header=False)
    for p in (tmp_path / "c").glob("*.dcm"):
        assert p.read_bytes()[128:132] != b"DICM"
    by_sha = {t.sha256 for t in dec.objects}
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "c").glob("*.dcm")} <= by_sha


def test_bounded_open_files_reopen_and_append(tmp_path):
    convs = [G.store_conversation([f"1.2.3.{i}"], client=("10.0.0.1", 41000 + i), t0=1_700_000_000 + i * 1e-5)
             for i in range(12)]
    src = tmp_path / "many.pcap"
    src.write_bytes(G.pcap(*convs, interleave=True))
    ex, dec = export(src, tmp_path / "out", ports=(104,), max_open=2)
    assert ex.counts["written"] == 12
    for t in dec.objects:
        assert t.complete
    for p in (tmp_path / "out").glob("*.dcm"):
        ds = pydicom.dcmread(p)
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID


def test_abort_mid_transfer_is_incomplete(tmp_path):
    c = G.Conversation()
    c.send(0, G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT)]))
    ds = G.ct_dataset("1.2.3.9")
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3.9"))))
    c.send(0, G.p_data((1, 0, ds[:1000])))
    c.send(0, G.abort())
    c.close(rst=True)
    src = tmp_path / "abort.pcap"
    src.write_bytes(G.pcap(c))
    ex, dec = export(src, tmp_path / "out", ports=(104,), keep_incomplete=True)
    assert ex.counts["written"] == 0 and ex.counts["partial"] == 1
    assert list((tmp_path / "out").glob("*.dcm")) == []
    assert len(list((tmp_path / "out").glob("*.dcm.partial"))) == 1
    assert any(e.id == "dicom.object.incomplete" and "A-ABORT" in e.message for e in dec.expert)


def test_safe_name():
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name("..") == "unknown"
    assert safe_name("a" * 100, 10) == "a" * 10
    assert safe_name(None) == "unknown"


def test_deferred_meta_header_streams_and_keeps_holes(tmp_path):
    """Fuzzing found it (tests/data/fuzz/pipeline/export-deferred-meta-after-825mb-hole):
    a data set whose UIDs were not known when it began gets its meta header at
    the end. That must neither read the object into memory nor turn the holes
    of a .partial file (a sequence number jump claimed 825 MB lost) into
    written zeros: a 6 KB capture once cost 829 MB of memory and of disk."""
    import sys
    import tracemalloc
    sys.path.insert(0, str(REAL.parents[2] / "fuzz"))
    import targets

    data = (REAL.parent / "fuzz" / "pipeline" / "export-deferred-meta-after-825mb-hole").read_bytes()
    cap = tmp_path / "c.pcap"
    cap.write_bytes(targets.conversation_pcap(data[1:]))
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        status, _out, err = targets.run_cli(["export", str(cap), "--keep-incomplete", "-o", str(out)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 0, err
    assert peak < 64e6, peak
    (partial,) = out.glob("*.dcm.partial")
    st = partial.stat()
    assert st.st_size > 800e6  # the lost bytes keep their positions...
    assert st.st_blocks * 512 < 4e6  # ...as a hole, not as written zeros
    meta = pydicom.filereader.read_file_meta_info(str(partial))
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_prepend_meta_copies_exactly(tmp_path, layout):
    from fastdicom.export import COPY_CHUNK
    ex = Exporter(str(tmp_path / "out"))

    class Item:
        tmp = str(tmp_path / "x.part")

    body = os.urandom(3 * COPY_CHUNK + 123)
    with open(Item.tmp, "wb") as f:
        if layout == "dense":
            f.write(body)
            want = body
        else:  # data, a 64 MiB hole, data, and a hole at the end
            f.write(body)
            f.seek(len(body) + (64 << 20))
            f.write(body[:1000])
            f.truncate(len(body) + (64 << 20) + 1000 + (8 << 20))
            want = body + bytes(64 << 20) + body[:1000] + bytes(8 << 20)
    meta = b"M" * 200
    ex._prepend_meta(Item, meta)
    got = open(Item.tmp, "rb").read()
    assert len(got) == len(meta) + len(want) and got == meta + want
    assert not os.path.exists(Item.tmp + ".meta")
    ex.close()


def _big_part10(path, pixel_bytes):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.PatientName = meta.MediaStorageSOPClassUID, "1.2.3.4", "A^B"
    seq_item = Dataset()
    seq_item.CodeValue = "X"
    ds.ProcedureCodeSequence = [seq_item]
    ds.Rows, ds.Columns, ds.BitsAllocated = pixel_bytes // 2048, 1024, 16
    ds.PixelData = bytes(pixel_bytes)
    ds["PixelData"].VR = "OW"
    ds.save_as(path, enforce_file_format=True)


def test_verify_skips_over_big_values_and_finds_truncation(tmp_path):
    import tracemalloc
    p = tmp_path / "big.dcm"
    _big_part10(str(p), 16 << 20)
    tracemalloc.start()
    try:
        assert verify(str(tmp_path)) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak  # the 16 MiB value was never read
    data = p.read_bytes()
    p.write_bytes(data[:-100])  # cut inside the pixel data
    (bad,) = verify(str(tmp_path))
    assert bad[0] == "big.dcm" and "past the end of the file" in bad[1]


def test_verify_finds_a_value_cut_by_the_end_of_the_file(tmp_path):
    p = tmp_path / "a.dcm"
    _big_part10(str(p), 4096)
    data = p.read_bytes()
    i = data.index(b"A^B")
    p.write_bytes(data[:i - 2] + b"\xf0\x00" + data[i:i + 3])  # PatientName claims 240 bytes
    (bad,) = verify(str(tmp_path))
    assert bad[0] == "a.dcm" and "(0010,0010)" in bad[1] and "past the end of the file" in bad[1]


@pytest.mark.parametrize("name", ["big_store", "concurrent"])
def test_direct_io_and_page_cache_writes_give_the_same_files(name, tmp_path):
    """O_DIRECT (the default where the file system takes it) and ordinary
    writes leave identical folders: names, manifest and every byte."""
    export(REAL / f"{name}.pcap", tmp_path / "direct", direct_io=True)
    export(REAL / f"{name}.pcap", tmp_path / "buffered", direct_io=False, max_open=1)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a, b = files(tmp_path / "direct"), files(tmp_path / "buffered")
    assert a.keys() == b.keys() and len(a) > 2
    assert a == b


@pytest.mark.parametrize("spelling", ["out", "out/", "./out", "abs"])
def test_manifest_paths_are_relative_to_the_output_folder(tmp_path, monkeypatch, spelling):
    """The manifest names each file relative to the output folder, however
    the folder was spelt (Exporter._rel against os.path.relpath)."""
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "out") if spelling == "abs" else spelling
    ex, _ = export(REAL / "store_dcmtk.pcap", out)
    recs = _manifest(tmp_path / "out")
    assert recs and all(r.get("file") for r in recs)
    for f in ex.files:
        assert ex._rel(f) == os.path.relpath(f, out)
    assert {r["file"] for r in recs} == {os.path.relpath(f, out) for f in ex.files}
    for r in recs:
        assert (tmp_path / "out" / r["file"]).is_file()
    for folder in (out, os.path.join(out, "a"), os.path.join(out, "a", "b")):
        assert ex._rel(folder) == os.path.relpath(folder, out)
