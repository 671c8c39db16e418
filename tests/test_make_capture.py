"""The benchmark capture generator (benchmarks/make_capture.py) writes what it says.

Small captures are generated into a temporary folder, then checked three ways:
as TCP (dpkt: headers, timestamps, contiguous streams), as DICOM (pynetdicom
decodes the association PDUs and command sets, pydicom reads the data sets),
and through fastdicom's pure-Python core, whose reassembled data sets must
match the truth file's lengths and SHA-256 digests.
"""

import hashlib
import io
import struct
import sys
from collections import defaultdict
from pathlib import Path

import dpkt
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pynetdicom.dsutils import decode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ

from fastdicom import _pycore
from fastdicom.events import EV_FLOW, EV_PDATA, EV_EXPERT, EV_GAP

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import make_capture as mc  # noqa: E402

SIZE = 3 << 20


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "plain.pcap"
    truth = mc.generate(path, SIZE, seed=7, associations=3, concurrency=2, frames=2,
                        truth_path=path.with_suffix(".truth.json"))
    return path, truth


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "reorder_dup.pcap"
    truth = mc.generate(path, SIZE, seed=11, associations=3, concurrency=3, frames=2,
                        reorder=0.1, dup=0.05)
    return path, truth


# ----------------------------------------------------------------- helpers
def read_packets(path):
    """[(ts, ip, tcp)] with dpkt; checks the pcap and IPv4/TCP header fields."""
    out = []
    with open(path, "rb") as f:
        r = dpkt.pcap.Reader(f)
        assert r.datalink() == dpkt.pcap.DLT_EN10MB
        for ts, buf in r:
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            assert isinstance(ip, dpkt.ip.IP) and ip.hl == 5
            assert ip.len == len(buf) - 14 <= 1500
            assert ip.sum == dpkt.ip.IP(bytes(ip)).sum  # stored checksum is right
            tcp = ip.data
            assert isinstance(tcp, dpkt.tcp.TCP)
            assert len(tcp.data) <= mc.MSS
            out.append((ts, ip, tcp))
    return out


def reassemble(packets):
    """Per direction ((src, sport, dst, dport) -> bytes): checks that the segments
    cover the sequence space from SYN to FIN without a hole, and that repeated
    bytes agree."""
    segs = defaultdict(list)
    isn, fin = {}, {}
    for _, ip, tcp in packets:
        key = (ip.src, tcp.sport, ip.dst, tcp.dport)
        if tcp.flags & dpkt.tcp.TH_SYN:
            isn[key] = tcp.seq
        if tcp.flags & dpkt.tcp.TH_FIN:
            fin[key] = tcp.seq + len(tcp.data)
        if tcp.data:
            segs[key].append((tcp.seq, bytes(tcp.data)))
    streams = {}
    for key in isn:
        base = isn[key] + 1
        out = bytearray()
        for seq, data in sorted(segs[key], key=lambda s: (s[0] - base) & 0xFFFFFFFF):
            rel = (seq - base) & 0xFFFFFFFF
            assert rel <= len(out), f"hole in {key} at {len(out)}"
            overlap = min(len(out) - rel, len(data))
            assert out[rel:rel + overlap] == data[:overlap]
            out += data[overlap:]
        assert (fin[key] - base) & 0xFFFFFFFF == len(out)
        streams[key] = bytes(out)
    return streams


def split_pdus(stream):
    """[(pdu_type, body)]; the stream must be whole PDUs, nothing else."""
    pdus, p = [], 0
    while p < len(stream):
        t, length = stream[p], struct.unpack_from(">I", stream, p + 2)[0]
        pdus.append((t, stream[p + 6:p + 6 + length]))
        p += 6 + length
    assert p == len(stream)
    return pdus


def pdvs(body):
    """[(context_id, control_header, value)] of a P-DATA-TF body."""
    out, p = [], 0
    while p < len(body):
        n = struct.unpack_from(">I", body, p)[0]
        out.append((body[p + 4], body[p + 5], body[p + 6:p + 4 + n]))
        p += 4 + n
    assert p == len(body)
    return out


def engine_datasets(path, **kw):
    """Data sets reassembled by the pure-Python core: [(flow, context, bytes)]."""
    e = _pycore.Engine(ports=[11112], **kw)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            e.feed(chunk)
    e.finish()
    events = e.pop_events()
    assert not [ev for ev in events if ev[0] in (EV_EXPERT, EV_GAP)]
    parts = defaultdict(list)
    done = []
    for ev in events:
        if ev[0] != EV_PDATA:
            continue
        flow = ev[1]
        for ctx, mch, pdv_len, off, length, data in ev[10]:
            if mch & 1:  # command
                continue
            assert len(data) == length
            parts[flow, ctx].append(data)
            if mch & 2 and off + length == pdv_len - 2:  # last fragment, whole
                done.append((flow, ctx, b"".join(parts.pop((flow, ctx)))))
    assert not parts
    return events, done


def check_against_truth(done, truth):
    want = {r["sop_instance_uid"]: r for r in truth["received"]}
    assert len(done) == len(want)
    seen = set()
    for _, _, ds in done:
        digest = hashlib.sha256(ds).hexdigest()
        match = [u for u, r in want.items() if r["dataset_sha256"] == digest]
        assert len(match) == 1
        assert want[match[0]]["dataset_len"] == len(ds)
        seen.add(match[0])
    assert seen == set(want)


# ------------------------------------------------------------------- tests
def test_parse_size():
    assert mc.parse_size("1G") == 1 << 30
    assert mc.parse_size("500M") == 500 << 20
    assert mc.parse_size("20m") == 20 << 20
    assert mc.parse_size("4GiB") == 4 << 30
    assert mc.parse_size("1.5K") == 1536
    assert mc.parse_size("123") == 123
    with pytest.raises(ValueError):
        mc.parse_size("big")


def test_truth_file(plain):
    path, truth = plain
    import json

    assert json.loads(path.with_suffix(".truth.json").read_text()) == truth
    assert truth["capture"] == path.name
    assert truth["ports"] == [11112]
    assert len(truth["associations"]) == 3
    for a in truth["associations"]:
        assert a == {"calling_ae": a["calling_ae"], "called_ae": "STORESCP", "outcome": "accepted"}
    assert len(truth["operations"]) == len(truth["received"]) >= 3
    assert {o["sop_instance_uid"] for o in truth["operations"]} == \
        {r["sop_instance_uid"] for r in truth["received"]}
    assert all(o["kind"] == "C-STORE" and o["status"] == 0 for o in truth["operations"])
    kinds = {r["sop_class_uid"] for r in truth["received"]}
    assert mc.CT_IMAGE_STORAGE in kinds
    assert kinds & {mc.MF_WORD_SC_STORAGE, mc.MF_BYTE_SC_STORAGE}  # frames=2: small ones
    assert {r["transfer_syntax"] for r in truth["received"]} == {mc.EXPLICIT_VR_LE, mc.IMPLICIT_VR_LE}
    r = truth["received"][0]
    assert set(r) == {"scp", "sop_class_uid", "sop_instance_uid", "transfer_syntax",
                      "dataset_len", "dataset_sha256", "message_id"}


def test_size_is_approximate(plain):
    path, _ = plain
    assert 0.8 * SIZE < path.stat().st_size < 1.3 * SIZE


def test_tcp(plain):
    path, truth = plain
    packets = read_packets(path)
    ts = [p[0] for p in packets]
    assert ts == sorted(ts)
    # three handshakes and teardowns, all to the DICOM port, distinct clients
    syns = [(ip, tcp) for _, ip, tcp in packets if tcp.flags & dpkt.tcp.TH_SYN]
    assert len(syns) == 6
    clients = {(ip.src, tcp.sport) for ip, tcp in syns if tcp.dport == 11112}
    assert len(clients) == 3 and len({c[0] for c in clients}) == 3
    streams = reassemble(packets)
    assert len(streams) == 6
    isn = {(ip.src, tcp.sport): tcp.seq + 1 for _, ip, tcp in packets if tcp.flags & dpkt.tcp.TH_SYN}
    for (src, sport, dst, dport), stream in streams.items():
        if dport != 11112:
            continue
        # the server ACKs every two full segments, and each ACK is right
        run = acks = 0
        for _, ip, tcp in packets:
            key = (ip.src, tcp.sport, ip.dst, tcp.dport)
            if key == (src, sport, dst, dport) and len(tcp.data) == mc.MSS:
                run += 1
            elif key == (dst, dport, src, sport) and tcp.flags == dpkt.tcp.TH_ACK:
                assert run <= 2
                assert 0 < (tcp.ack - isn[src, sport]) & 0xFFFFFFFF <= len(stream)
                run = 0
                acks += 1
        assert acks >= len(stream) // mc.MSS // 2
        # PSH on the segment holding each write's (here: each PDU's) end
        psh = [((tcp.seq - isn[src, sport]) & 0xFFFFFFFF, len(tcp.data)) for _, ip, tcp in packets
               if (ip.src, tcp.sport) == (src, sport) and tcp.flags & dpkt.tcp.TH_PUSH]
        pos = 0
        for _, body in split_pdus(stream):
            pos += 6 + len(body)
            assert any(a < pos <= a + n for a, n in psh)
        assert len(psh) <= len(split_pdus(stream))


def test_pdus_decode_with_pynetdicom(plain):
    path, truth = plain
    streams = reassemble(read_packets(path))
    want = {r["sop_instance_uid"]: r for r in truth["received"]}
    n_store = 0
    max_pdus = set()
    move_originators = 0
    for (src, sport, dst, dport), c2s in streams.items():
        if dport != 11112:
            continue
        s2c = streams[dst, dport, src, sport]
        up, down = split_pdus(c2s), split_pdus(s2c)
        assert [t for t, _ in up][0] == 0x01 and up[-1] == (0x05, bytes(4))
        assert [t for t, _ in down][0] == 0x02 and down[-1] == (0x06, bytes(4))

        rq_bytes = struct.pack(">BBI", 1, 0, len(up[0][1])) + up[0][1]
        rq = A_ASSOCIATE_RQ()
        rq.decode(rq_bytes)
        assert rq.encode() == rq_bytes  # pynetdicom's encoder gives the same bytes back
        assert rq.called_ae_title == "STORESCP"
        assert rq.application_context_name == "1.2.840.10008.3.1.1.1"
        abstract = {str(c.abstract_syntax) for c in rq.presentation_context}
        assert abstract == {mc.CT_IMAGE_STORAGE, mc.MR_IMAGE_STORAGE,
                            mc.MF_BYTE_SC_STORAGE, mc.MF_WORD_SC_STORAGE}
        for c in rq.presentation_context:
            assert c.context_id % 2 == 1
            assert set(map(str, c.transfer_syntax)) == {mc.EXPLICIT_VR_LE, mc.IMPLICIT_VR_LE}
        ui = {type(i).__name__: i for i in rq.user_information.user_data}
        assert ui["MaximumLengthSubItem"].maximum_length_received == 16384
        assert str(ui["ImplementationClassUIDSubItem"].implementation_class_uid).startswith("2.25.")
        assert ui["ImplementationVersionNameSubItem"].implementation_version_name

        ac_bytes = struct.pack(">BBI", 2, 0, len(down[0][1])) + down[0][1]
        ac = A_ASSOCIATE_AC()
        ac.decode(ac_bytes)
        assert ac.encode() == ac_bytes
        accepted = {c.context_id: str(c.transfer_syntax)
                    for c in ac.presentation_context if c.result == 0}
        assert set(accepted) == {c.context_id for c in rq.presentation_context}
        ui = {type(i).__name__: i for i in ac.user_information.user_data}
        max_pdu = ui["MaximumLengthSubItem"].maximum_length_received
        max_pdus.add(max_pdu)

        # requests: command PDV, then data PDVs fitting the SCP's maximum
        msg_id = 0
        data = {}
        for t, body in up[1:-1]:
            assert t == 0x04
            if max_pdu:
                assert len(body) + 6 <= max_pdu
            for cid, mch, value in pdvs(body):
                if mch & 1:
                    assert mch == 0x03
                    cmd = decode(io.BytesIO(value), True, True)
                    msg_id += 1
                    assert cmd.CommandGroupLength == len(value) - 12
                    assert cmd.CommandField == 0x0001
                    assert cmd.MessageID == msg_id
                    assert cmd.Priority == 0
                    assert cmd.CommandDataSetType == 0x0000
                    if "MoveOriginatorApplicationEntityTitle" in cmd:
                        assert cmd.MoveOriginatorApplicationEntityTitle == "QRSCU"
                        assert cmd.MoveOriginatorMessageID > 0
                        move_originators += 1
                    uid = str(cmd.AffectedSOPInstanceUID)
                    r = want[uid]
                    assert str(cmd.AffectedSOPClassUID) == r["sop_class_uid"]
                    assert r["message_id"] == msg_id
                    assert accepted[cid] == r["transfer_syntax"]
                    data[cid] = [uid, b""]
                else:
                    data[cid][1] += value
                    if mch & 2:
                        uid, ds = data.pop(cid)
                        assert len(ds) == want[uid]["dataset_len"]
                        assert hashlib.sha256(ds).hexdigest() == want[uid]["dataset_sha256"]
                        n_store += 1
        assert not data
        # responses
        rsp_ids = []
        for t, body in down[1:-1]:
            [(cid, mch, value)] = pdvs(body)
            assert mch == 0x03
            cmd = decode(io.BytesIO(value), True, True)
            assert cmd.CommandField == 0x8001 and cmd.Status == 0x0000
            assert cmd.CommandDataSetType == 0x0101
            assert str(cmd.AffectedSOPInstanceUID) in want
            rsp_ids.append(cmd.MessageIDBeingRespondedTo)
        assert rsp_ids == list(range(1, msg_id + 1))
    assert n_store == len(truth["received"])
    assert max_pdus == {16384, 65536, 0}  # one association each
    assert move_originators


def test_datasets_read_with_pydicom(plain):
    path, truth = plain
    _, done = engine_datasets(path)
    by_digest = {r["dataset_sha256"]: r for r in truth["received"]}
    for _, _, raw in done:
        r = by_digest[hashlib.sha256(raw).hexdigest()]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = r["sop_class_uid"]
        meta.MediaStorageSOPInstanceUID = r["sop_instance_uid"]
        meta.TransferSyntaxUID = r["transfer_syntax"]
        f = io.BytesIO()
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, meta, enforce_standard=True)
        f.write(raw)
        f.seek(0)
        ds = pydicom.dcmread(f, force=True)
        assert ds.SOPInstanceUID == r["sop_instance_uid"]
        assert ds.SOPClassUID == r["sop_class_uid"]
        frames = int(ds.get("NumberOfFrames", 1))
        assert len(ds.PixelData) == ds.Rows * ds.Columns * frames * ds.BitsAllocated // 8
        assert ds.pixel_array.size == ds.Rows * ds.Columns * frames


def test_engine_matches_truth(plain):
    path, truth = plain
    events, done = engine_datasets(path)
    flows = [ev for ev in events if ev[0] == EV_FLOW]
    assert len(flows) == 3 and {ev[7] for ev in flows} == {11112}
    check_against_truth(done, truth)


def test_engine_matches_truth_with_reorder_and_dup(damaged):
    path, truth = damaged
    packets = read_packets(path)
    streams = reassemble(packets)  # still recoverable
    for s in streams.values():
        split_pdus(s)
    # the damage is there: data segments out of order and repeated
    n_ooo = n_dup = 0
    for key in streams:
        seqs = [tcp.seq for _, ip, tcp in packets
                if (ip.src, tcp.sport, ip.dst, tcp.dport) == key and tcp.data]
        n_dup += len(seqs) - len(set(seqs))
        n_ooo += sum(1 for a, b in zip(seqs, seqs[1:]) if 0 < (a - b) & 0xFFFFFFFF < 1 << 30)
    assert n_ooo > 10 and n_dup > 10
    _, done = engine_datasets(path)
    check_against_truth(done, truth)


def test_deterministic(tmp_path):
    a = mc.generate(tmp_path / "a.pcap", 1 << 20, seed=3, associations=2)
    b = mc.generate(tmp_path / "b.pcap", 1 << 20, seed=3, associations=2)
    assert a["received"] == b["received"]
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()


def test_cli(tmp_path):
    out = tmp_path / "cli.pcap"
    assert mc.main(["1M", str(out), "--seed", "2", "--associations", "2",
                    "--concurrency", "1"]) == 0
    import json

    truth = json.loads((tmp_path / "cli.truth.json").read_text())
    assert truth["capture"] == "cli.pcap" and len(truth["associations"]) == 2
    packets = read_packets(out)
    # one association at a time: the second handshake comes after the first FIN
    syn_at = [i for i, (_, _, tcp) in enumerate(packets) if tcp.flags == dpkt.tcp.TH_SYN]
    fin_at = [i for i, (_, _, tcp) in enumerate(packets) if tcp.flags & dpkt.tcp.TH_FIN]
    assert syn_at[1] > fin_at[1]


def test_many_small_associations(tmp_path):
    """benchmarks/make_many_small.py: N whole associations, one after another."""
    import make_many_small
    from helpers import summarize
    out = tmp_path / "many.pcap"
    make_many_small.write(7, str(out))
    doc = summarize(out, ports=(104,))
    c = doc["counts"]
    assert (c["associations"], c["objects"], c["objects_complete"]) == (7, 7, 7)
    assert c["operations_by_command"] == {"C-STORE": {"success": 7}}
    assert len({a["client"] for a in doc["associations"]}) == 7
    assert all(a["end"] == "released" for a in doc["associations"])
    assert doc["expert"] == []
