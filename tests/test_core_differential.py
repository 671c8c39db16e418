"""The compiled core against its pure-Python twin: the same events and stats.

Every capture under tests/data, fed whole, byte by byte (the small ones) and in
random chunks, under several engine settings; tap distortions of the real
captures (tests/mutations.py); damaged captures; and Hypothesis-built captures
of real and synthetic associations with random segmentation, reordering,
duplication, overlapping retransmissions (same and conflicting bytes), losses,
link layers and file formats.  Without losses the PDUs rebuilt from the events
must equal the PDUs that were sent.
"""

import gzip
import json
import random
import socket
import struct
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapgen as G
from fastdicom import _pycore
from fastdicom.events import (
    EV_EXPERT, EV_FLOW, EV_GAP, EV_PDATA, EV_PDATA_RUN, EV_PDU, PF_FINAL, PF_TRUNCATED, X_CAPTURE_DAMAGED,
    X_OOO_SEGMENTS, X_TCP_OVERLAP_CONFLICT,
)
from mutations import mutate

_core = pytest.importorskip("fastdicom._core")

DATA = Path(__file__).parent / "data"
CAPTURES = sorted(p for p in DATA.rglob("*") if p.name.endswith((".pcap", ".pcap.gz", ".pcapng")))
SMALL = 60_000  # fed byte by byte below this size
MAX_OOO = _pycore.MAX_OOO_SEGMENTS


def load(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def dicom_ports(path: Path) -> tuple:
    """The DICOM ports of a fixture: its truth file or its folder's captures.json,
    else tests/data/SOURCES.md and loopback/README.md."""
    name = path.name.split(".")[0]
    truth = path.with_name(name + ".truth.json")
    if truth.exists():
        return tuple(json.loads(truth.read_text())["ports"])
    listing = path.with_name("captures.json")
    if listing.exists() and name in json.loads(listing.read_text()):
        return tuple(json.loads(listing.read_text())[name]["ports"])
    if path.name.startswith("profuzzbench"):
        return (5158,)
    if path.name.startswith("wireshark"):
        return (4242,)
    if path.parent.name == "loopback":
        return (11112, 11113, 11114)
    return (104,)


def outcome(mod, data: bytes, chunks=None, **options):
    """Events and stats of one engine; a raised exception is an outcome too."""
    eng = mod.Engine(**options)
    events = []
    try:
        if chunks is None:
            eng.feed(data)
        else:
            pos = 0
            for size in chunks:
                eng.feed(data[pos:pos + size])
                events += eng.pop_events()
                pos += size
        eng.finish()
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return ("raised", type(exc).__name__, str(exc), events + eng.pop_events(), eng.stats())
    return events + eng.pop_events(), eng.stats()


def random_chunks(n: int, seed: int, largest: int = 5000) -> list:
    rnd = random.Random(seed)
    chunks = []
    while n > 0:
        k = min(n, rnd.choice((1, 2, 3, 16, 17, 100, rnd.randint(1, largest), rnd.randint(1, largest))))
        chunks.append(k)
        n -= k
    return chunks


def assert_same(data: bytes, chunks=None, **options):
    a = outcome(_pycore, data, chunks, **options)
    b = outcome(_core, data, chunks, **options)
    if a != b:
        ea, eb = a[-2] if a[0] == "raised" else a[0], b[-2] if b[0] == "raised" else b[0]
        k = next((i for i, (x, y) in enumerate(zip(ea, eb)) if x != y), min(len(ea), len(eb)))
        pytest.fail(f"twins differ ({options}): {len(ea)} vs {len(eb)} events; first difference "
                    f"at {k}:\n  py: {str(ea[k:k + 1])[:400]}\n  c:  {str(eb[k:k + 1])[:400]}\n"
                    f"  py outcome {str(a[:3])[:200]}\n  c outcome  {str(b[:3])[:200]}")
    return a


def settings_for(path: Path):
    return {
        "default": {},
        "no-data": {"data_limit": 0},
        "small-pieces": {"data_limit": 100, "chunk_size": 1000},
        "tiny-ooo": {"ooo_budget": 1500, "history": 100},
        "ports-only": {"heuristic": False, "ports": dicom_ports(path)},
        "summary": {"heuristic": False, "ports": dicom_ports(path), "data_limit": 65536, "trim_heads": True},
        "heads-cut": {"data_limit": 700, "chunk_size": 1000, "trim_heads": True},
    }


# ------------------------------------------------------------ fixtures
@pytest.mark.parametrize("name", ["default", "no-data", "small-pieces", "tiny-ooo", "ports-only", "summary",
                                  "heads-cut"])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fixture_whole_and_random_chunks(path, name):
    data = load(path)
    options = settings_for(path)[name]
    whole = assert_same(data, **options)
    chunked = assert_same(data, random_chunks(len(data), len(data)), **options)
    assert whole == chunked  # the chunking of the input never matters


def expand_runs(events) -> list:
    """Each EV_PDATA_RUN replaced by the EV_PDATA of each of its PDUs, made
    again from its rows (events.py)."""
    out = []
    for ev in events:
        if ev[0] != EV_PDATA_RUN:
            out.append(ev)
            continue
        _, fid, direction, ctx, n, pdu_bytes, value_bytes, f_last, t_min, t_max, t_last, plen_last, rows = ev
        row = memoryview(rows).cast("q").tolist()
        assert len(row) == 9 * n > 0
        pdus = [row[k:k + 9] for k in range(0, len(row), 9)]
        assert pdu_bytes == sum(p[0] + 6 for p in pdus) and value_bytes == sum(p[6] - 2 for p in pdus)
        assert (f_last, t_last, plen_last) == (pdus[-1][3], pdus[-1][5], pdus[-1][6] - 2)
        assert (t_min, t_max) == (min(p[5] for p in pdus), max(p[5] for p in pdus))
        for length, off, f0, f1, t0, t1, pdv_len, release, flow_last in pdus:
            assert length == pdv_len + 4 and pdv_len > 2
            out.append((EV_PDATA, fid, direction, 4, length, off, f0, f1, t0, t1,
                        ((ctx, 0, pdv_len, 0, pdv_len - 2, b""),), PF_FINAL, release, flow_last))
    return out


def by_connection(events) -> dict:
    """The events of each connection, in order (-1: of the capture itself)."""
    out = defaultdict(list)
    for ev in events:
        out[-1 if ev[0] == EV_EXPERT and ev[1] < 0 else ev[1] if ev[0] != 7 else ("attempt", ev[1])].append(ev)
    return dict(out)


@pytest.mark.parametrize("data_limit", [65536, 0])
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_pdata_runs_hold_the_pdus_they_stand_for(path, data_limit):
    """With pdata_runs the twins agree; each run, expanded, gives the EV_PDATA
    events the engine gives without runs, in the same order within each
    connection (a run stands where its first PDU would; other connections'
    events may come between its PDUs), and the stats are the same."""
    data = load(path)
    for chunks in (None, random_chunks(len(data), 5, 100_000)):
        runs = assert_same(data, chunks, data_limit=data_limit, pdata_runs=True)
        plain = outcome(_core, data, chunks, data_limit=data_limit)
        assert runs[-1] == plain[-1]
        got, want = (r[-2] if r[0] == "raised" else r[0] for r in (runs, plain))
        assert by_connection(expand_runs(got)) == by_connection(want)
        assert sorted(map(repr, expand_runs(got))) == sorted(map(repr, want))


def test_pdata_runs_gather_many_pdus():
    """(Else the test above would prove little.)"""
    data = load(DATA / "real" / "big_store.pcap")
    events, _ = outcome(_core, data, data_limit=0, pdata_runs=True)
    runs = [ev for ev in events if ev[0] == EV_PDATA_RUN]
    assert runs and sum(ev[4] for ev in runs) > 10 * len(runs)
    assert len(events) < len(outcome(_core, data, data_limit=0)[0]) / 5


def test_twin_survives_memoryviews_that_outlive_the_walk(monkeypatch):
    """A sampling profiler (a Dask worker's) keeps the frames it samples, and
    with them the memoryviews of the twin's input buffer that they hold: the
    buffer can then not be resized.  The twin takes a new buffer instead, and
    its events are the same."""
    data = load(DATA / "real" / "big_store.pcap")
    chunks = random_chunks(len(data), 7, largest=20000)
    want = outcome(_pycore, data, chunks)
    held = []
    record = _pycore.Engine._record

    def keeping(self, linktype, ts, view, wirelen):
        held.append(view)  # as a frame kept by a profiler would
        del held[:-3]
        return record(self, linktype, ts, view, wirelen)

    monkeypatch.setattr(_pycore.Engine, "_record", keeping)
    got = outcome(_pycore, data, chunks)
    assert held and got == want and got[0] != "raised"


@pytest.mark.parametrize("name", ["default", "small-pieces"])
@pytest.mark.parametrize("path", [p for p in CAPTURES if len(load(p)) < SMALL], ids=lambda p: p.name)
def test_fixture_byte_by_byte(path, name):
    data = load(path)
    options = settings_for(path)[name]
    assert assert_same(data, [1] * len(data), **options) == assert_same(data, **options)


def test_every_fixture_is_seen_as_dicom():
    """(A check of dicom_ports for the folders whose ports this file knows.)"""
    for path in CAPTURES:
        if path.parent.name not in ("real", "public", "loopback"):
            continue
        events, _ = outcome(_core, load(path), heuristic=False, ports=dicom_ports(path))
        assert any(ev[0] == EV_FLOW for ev in events), path.name


MUTATED = ["store_dcmtk", "multi_pdv", "query_retrieve", "reject_abort", "ipv6_oddport", "concurrent"]
MODES = ["reorder", "dup", "overlap", "drop", "vlan", "qinq", "sll", "sll2", "rawip", "null",
         "nanosec", "bigendian", "midstream", "pcapng", "snaplen"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MUTATED)
def test_tap_distortions(name, mode):
    data = mutate((DATA / "real" / f"{name}.pcap").read_bytes(), mode, seed=3, rate=0.08)
    for options in ({}, {"data_limit": 100, "chunk_size": 700, "ooo_budget": 4000}, {"pdata_runs": True},
                    {"data_limit": 65536, "pdata_runs": True, "trim_heads": True},
                    {"data_limit": 900, "trim_heads": True}):
        assert_same(data, **options)
    assert_same(data, random_chunks(len(data), 11, 3000))


@pytest.mark.parametrize("seed", range(12))
def test_damaged_captures(seed):
    """Flipped, cut and inserted bytes: record/block resync and framer resync."""
    rnd = random.Random(seed)
    path = rnd.choice([DATA / "real" / "store_dcmtk.pcap", DATA / "real" / "multi_pdv.pcap",
                       DATA / "public" / "ndpi_dicom.pcap", DATA / "real" / "nservices.pcap"])
    data = bytearray(path.read_bytes())
    for _ in range(rnd.randint(1, 6)):
        at = rnd.randrange(24, len(data))
        how = rnd.random()
        if how < 0.5:
            data[at] ^= 1 << rnd.randrange(8)
        elif how < 0.7:
            del data[at:at + rnd.randint(1, 40)]
        elif how < 0.85:
            data[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 40)))
        else:
            data[at:at + 4] = b"\xff\xff\x00\x00"
    if rnd.random() < 0.5:
        del data[rnd.randrange(len(data) // 2, len(data)):]
    data = bytes(data)
    assert_same(data)
    assert_same(data, random_chunks(len(data), seed, 700), data_limit=50, chunk_size=64)


def test_not_a_capture():
    for data in (b"", b"\x0a", b"hello world, not a capture", gzip.compress(b"x" * 100), bytes(30)):
        assert_same(data)
        assert_same(data, [1] * len(data))


# ----------------------------------------------- conversations as capture bytes
def rebuild_pdus(events):
    """{(flow, dir): [PDU bytes]} from the events of a data_limit=-1 engine;
    also the set of (flow, dir) that had a gap or a truncated PDU."""
    out = defaultdict(list)
    partial = {}
    damaged = set()
    for ev in events:
        if ev[0] == EV_PDU:
            _, flow, d, t, length, _, _, _, _, _, body, flags = ev
            out[flow, d].append(bytes((t, 0)) + length.to_bytes(4, "big") + body)
        elif ev[0] == EV_PDATA:
            _, flow, d, _, length, _, _, _, _, _, pieces, flags, _, _ = ev
            buf = partial.setdefault((flow, d), bytearray())
            for ctx, mch, pdv_len, off, n, data in pieces:
                if off == 0:
                    buf += pdv_len.to_bytes(4, "big") + bytes((ctx, mch))
                buf += data
                if len(data) != n:
                    damaged.add((flow, d))
            if flags & PF_FINAL:
                out[flow, d].append(b"\x04\x00" + length.to_bytes(4, "big") + bytes(partial.pop((flow, d))))
        else:
            continue
        if flags & PF_TRUNCATED:
            damaged.add((ev[1], ev[2]))
    damaged.update((ev[1], ev[2]) for ev in events if ev[0] == EV_GAP)
    return out, damaged


def conversation_of(path: Path):
    """The first association of a capture as [(dir, PDU bytes)] in the order sent."""
    events, _ = outcome(_pycore, path.read_bytes(), data_limit=-1, ports=dicom_ports(path))
    first = next(ev[1] for ev in events if ev[0] == EV_FLOW)
    starts = [(ev[6], ev[2]) for ev in events if ev[0] == EV_PDU and ev[1] == first]
    seen = set()
    for ev in events:  # the first event of each P-DATA gives its first frame
        if ev[0] == EV_PDATA and ev[1] == first and (ev[2], ev[5]) not in seen:
            seen.add((ev[2], ev[5]))
            starts.append((ev[6], ev[2]))
    pdus, damaged = rebuild_pdus(events)
    assert not damaged
    order = [d for _, d in sorted(starts, key=lambda x: (x[0], x[1]))]
    iters = {d: iter(pdus[first, d]) for d in (0, 1)}
    return [(d, next(iters[d])) for d in order]


REAL_CONVERSATIONS = {}


def real_conversation(name):
    if name not in REAL_CONVERSATIONS:
        REAL_CONVERSATIONS[name] = conversation_of(DATA / "real" / f"{name}.pcap")
    return REAL_CONVERSATIONS[name]


def synthetic_conversation(rnd: random.Random):
    """An association built from PS3.8 PDUs: echo, stores with random PDV splits."""
    contexts = [(1, G.CT_STORAGE, (G.EXPLICIT,)), (3, G.VERIFICATION, (G.IMPLICIT,))]
    conv = [(0, G.assoc_rq("SCP", "SCU", contexts, max_len=rnd.choice((0, 4096, 16384)))),
            (1, G.assoc_ac("SCP", "SCU", [(1, 0, G.EXPLICIT), (3, 0, G.IMPLICIT)],
                           max_len=rnd.choice((0, 8192, 16384))))]
    for mid in range(1, rnd.randint(1, 4)):
        if rnd.random() < 0.3:
            conv.append((0, G.p_data((3, 3, G.c_echo_rq(mid)))))
            conv.append((1, G.p_data((3, 3, G.c_echo_rsp(mid)))))
            continue
        uid = f"1.2.3.{mid}"
        ds = G.ct_dataset(uid, pixels=rnd.choice((0, 256, 2048, 9000)))
        cmd = G.c_store_rq(mid, G.CT_STORAGE, uid)
        cut = rnd.randint(1, len(cmd) - 1)
        conv.append((0, G.p_data((1, 3, cmd)) if rnd.random() < 0.7 else
                     G.p_data((1, 1, cmd[:cut]), (1, 3, cmd[cut:]))))
        pdvs = []
        pos = 0
        while pos < len(ds):
            n = rnd.choice((1, 7, 100, 1000, 5000, len(ds)))
            last = pos + n >= len(ds)
            pdvs.append((1, 2 if last else 0, ds[pos:pos + n]))
            pos += n
        while pdvs:  # one or more PDVs per P-DATA-TF
            k = rnd.randint(1, 3)
            conv.append((0, G.p_data(*pdvs[:k])))
            pdvs = pdvs[k:]
        conv.append((1, G.p_data((1, 3, G.c_store_rsp(mid, G.CT_STORAGE, uid)))))
    if rnd.random() < 0.8:
        conv += [(0, G.release_rq()), (1, G.release_rp())]
    else:
        conv.append((rnd.randint(0, 1), G.abort(rnd.choice((0, 2)), 0)))
    return conv


def hostile(conv, rnd):
    """Malformed PDUs: bad lengths, reserved flags, even context IDs, junk between
    PDUs, PDUs cut short."""
    conv = list(conv)
    for _ in range(rnd.randint(1, 3)):
        k = rnd.randrange(len(conv))
        d, pdu = conv[k]
        pdu = bytearray(pdu)
        how = rnd.randrange(7)
        if how == 0 and len(pdu) > 6:
            pdu[rnd.randrange(6)] = rnd.choice((0, 4, 9, 0xFF))
        elif how == 1 and len(pdu) >= 10:  # first PDV item length
            pdu[6:10] = struct.pack(">I", rnd.choice((0, 1, 2, len(pdu), len(pdu) - 6, 0xFFFFFFF0)))
        elif how == 2 and len(pdu) >= 12:
            pdu[11] = rnd.choice((0x04, 0xFF, 0x83))
        elif how == 3 and len(pdu) >= 12:
            pdu[10] = 2 * rnd.randrange(128)
        elif how == 4:
            pdu += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 20)))
        elif how == 5 and len(pdu) > 8:
            del pdu[rnd.randrange(6, len(pdu)):]
        else:  # the PDU length disagrees with the body
            pdu[2:6] = struct.pack(">I", max(0, len(pdu) - 6 + rnd.choice((-3, -1, 1, 4, 100000))))
        conv[k] = (d, bytes(pdu))
    return conv


def ip_frame(link, v6, src, dst, sport, dport, seq, ack, flags, payload, win=65535, *,
             options=0, proto=6, fragment=False):
    """A frame of ``link`` (-1: Ethernet with a VLAN tag); ``options`` adds that
    many 4-byte words of TCP and IPv4 options (IPv6: a hop-by-hop header)."""
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (5 + options) << 4, flags, win, 0, 0) + b"\x01" * (4 * options) + payload
    if v6:
        chain = ([(0, b"\x01\x04\x00\x00\x00\x00")] if options else []) + (  # hop-by-hop: PadN
            [(44, b"\x00\x09\x00\x00\x00\x01")] if fragment else [])  # fragment: offset 1, M set
        nexts = [t for t, _ in chain[1:]] + [proto]
        ext = b"".join(bytes((nxt, 0)) + body for nxt, (_, body) in zip(nexts, chain))
        ip = struct.pack(">IHBB16s16s", 0x60000000, len(ext) + len(tcp), chain[0][0] if chain else proto,
                         64, src, dst) + ext + tcp
        et = 0x86DD
    else:
        ihl = 5 + options
        ip = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(tcp), 0,
                         0x2000 if fragment else 0x4000, 64, proto, 0, src, dst) + b"\x01" * (4 * options) + tcp
        et = 0x0800
    mac = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
    if link == 1:
        return mac + struct.pack(">H", et) + ip
    if link == -1:  # Ethernet with an 802.1Q tag
        return mac + b"\x81\x00\x00\x2a" + struct.pack(">H", et) + ip
    if link == 113:
        return struct.pack(">HHH8sH", 0, 1, 6, mac[:8], et) + ip
    if link == 276:
        return struct.pack(">HHIHBB8s", et, 0, 1, 1, 0, 6, mac[:8]) + ip
    if link == 0:
        return struct.pack("<I", 30 if v6 else 2) + ip
    return ip  # 101: raw IP


def write_pcap(records, link, big=False, nano=False, snaplen=262144):
    e = ">" if big else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen,
                       1 if link == -1 else link)]
    for ns, buf, orig in records:
        sec, frac = divmod(ns, 10**9)
        out.append(struct.pack(e + "IIII", sec, frac if nano else frac // 1000, len(buf), orig) + buf)
    return b"".join(out)


def write_pcapng(records, link, big, tsresol, rnd, lossless):
    e = ">" if big else "<"

    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack(e + "II", btype, len(body) + 12) + body + struct.pack(e + "I", len(body) + 12)

    def opt(code, val):
        return struct.pack(e + "HH", code, len(val)) + val + b"\0" * (-len(val) % 4)

    pow2 = tsresol & 0x80
    units = (1 << (tsresol & 0x7F)) if pow2 else 10 ** tsresol
    tsoff = rnd.choice((0, 0, -5, 3600))
    out = [block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack(e + "HHI", 1 if link == -1 else link, 0, 0) + opt(9, bytes((tsresol,)))
                 + opt(14, struct.pack(e + "q", tsoff)) + opt(0, b""))]
    for k, (ns, buf, orig) in enumerate(records):
        t = (ns - tsoff * 10**9) * units // 10**9
        r = rnd.random()
        if r < 0.03 and k and not lossless:  # a Simple Packet Block: it loses the time stamp
            out.append(block(3, struct.pack(e + "I", orig) + buf))
        elif r < 0.04 and not lossless:
            out.append(block(6, struct.pack(e + "IIIII", 7, 0, 0, len(buf), orig) + buf))  # no such interface
        else:
            out.append(block(6, struct.pack(e + "IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(buf), orig) + buf))
        if r > 0.98:
            out.append(block(0x0BAD, b"custom"))
    return b"".join(out)


def tcp_packets(conv, rnd, *, isn, handshake, fin, mss):
    """Packets [(dir, seq, flags, payload)] of one connection carrying ``conv``."""
    seq = [isn[0], isn[1]]
    pkts = []
    if handshake:
        pkts += [(0, seq[0], 0x02, b""), (1, seq[1], 0x12, b""), (0, seq[0] + 1, 0x10, b"")]
        seq = [seq[0] + 1, seq[1] + 1]
    i = 0
    while i < len(conv):
        d = conv[i][0]
        data = b""
        while i < len(conv) and conv[i][0] == d:  # a burst of PDUs from one side
            data += conv[i][1]
            i += 1
        pos = 0
        while pos < len(data):
            n = min(len(data) - pos, rnd.choice((1, 5, 6, 7, mss, mss, mss, rnd.randint(1, mss))))
            pkts.append((d, seq[d], 0x18, data[pos:pos + n]))
            seq[d] += n
            pos += n
            if rnd.random() < 0.3:
                pkts.append((1 - d, seq[1 - d], 0x10, b""))
    if fin:
        pkts += [(0, seq[0], 0x11, b""), (1, seq[1], 0x11, b""), (0, seq[0] + 1, 0x10, b"")]
    return pkts


def distort(pkts, rnd, *, reorder, dup, overlap, conflict, loss):
    """A tap's view: swapped neighbours, copies, re-split and conflicting
    retransmissions, lost data segments.  Conflicting copies always come after
    every original byte they cover, so the first copy (the true one) wins."""
    out = [p for p in pkts if not (p[3] and loss and rnd.random() < loss)]
    for k in range(len(out) - 1):
        if out[k][3] and out[k + 1][3] and rnd.random() < reorder:
            out[k], out[k + 1] = out[k + 1], out[k]
    for p in [p for p in out if p[3]]:
        if rnd.random() < dup:
            out.insert(rnd.randint(0, len(out)), p)
    by_dir = defaultdict(list)
    for p in pkts:
        if p[3]:
            by_dir[p[0]].append(p)
    for d, segs in by_dir.items():
        for _ in range(int(len(segs) * overlap) + (1 if rnd.random() < overlap else 0)):
            a = rnd.randrange(len(segs))
            b = min(len(segs), a + rnd.randint(1, 3))
            run = b"".join(s[3] for s in segs[a:b])
            lo = rnd.randrange(len(run))
            hi = rnd.randint(lo + 1, len(run))
            piece = bytearray(run[lo:hi])
            if rnd.random() < conflict:
                piece[rnd.randrange(len(piece))] ^= 0x5A
            copy = (d, segs[a][1] + lo, 0x18, bytes(piece))
            last = max((out.index(s) for s in segs[a:b] if s in out), default=-1)
            out.insert(rnd.randint(last + 1, len(out)), copy)
    return out


@st.composite
def captures(draw, lossless=False):
    """(capture bytes, chunking, engine options, [(client ip, client port, conversation)])."""
    seed = draw(st.integers(0, 2**32 - 1))
    rnd = random.Random(seed)
    source = draw(st.sampled_from(["synthetic", "synthetic", "multi_pdv", "negotiation", "nservices",
                                   "store_dcmtk", "reject_abort"]))
    n_conv = draw(st.integers(1, 3))
    convs = []
    for k in range(n_conv):
        src = source if k == 0 else rnd.choice(("synthetic", "negotiation", "nservices"))
        convs.append(synthetic_conversation(rnd) if src == "synthetic" else real_conversation(src))
        if not lossless and rnd.random() < 0.3:
            convs[-1] = hostile(convs[-1], rnd)
    clients = []
    link = draw(st.sampled_from([1, 1, -1, 113, 276, 101, 0]))
    v6 = draw(st.booleans())
    fmt = draw(st.sampled_from(["pcap", "pcap", "pcap-be", "pcap-ns", "pcapng", "pcapng-be"]))
    distortion = dict(reorder=draw(st.sampled_from([0, 0, 0.1, 0.5])),
                      dup=draw(st.sampled_from([0, 0, 0.1])),
                      overlap=draw(st.sampled_from([0, 0, 0.05, 0.3])),
                      conflict=draw(st.sampled_from([0, 0.5])),
                      loss=0 if lossless else draw(st.sampled_from([0, 0, 0.02, 0.2])))
    handshake = lossless or draw(st.booleans())
    same_ports = draw(st.booleans()) and n_conv > 1  # a connection reused on the same ports
    packets = []
    t0 = 1_700_000_000 * 10**9 + rnd.randrange(10**9)
    for k, conv in enumerate(convs):
        host = 1 if same_ports else k + 1
        client = bytes(15) + bytes((host,)) if v6 else bytes((10, 0, 0, host))
        server = bytes(15) + b"\xfe" if v6 else b"\x0a\x00\x00\xfe"
        cport = 40000 if same_ports else 40000 + k
        sport = 104 if same_ports else rnd.choice((104, 104, 11112, 4242))
        clients.append((socket.inet_ntop(socket.AF_INET6 if v6 else socket.AF_INET, client), cport, conv))
        isn = (rnd.choice((0, 0xFFFFFFFF - rnd.randrange(3000), rnd.randrange(2**32))),
               rnd.randrange(2**32))
        hs = handshake or (k > 0 and same_ports)
        pkts = tcp_packets(conv, rnd, isn=isn, handshake=hs,
                           fin=lossless or rnd.random() < 0.8, mss=rnd.choice((1448, 1448, 300, 9000)))
        body = distort(pkts[3:] if hs else pkts, rnd, **distortion)
        pkts = (pkts[:3] if hs else []) + body
        if not lossless and rnd.random() < 0.1:
            pkts.insert(rnd.randrange(len(pkts) + 1), (rnd.randint(0, 1), rnd.randrange(2**32), 0x14, b""))
        ts = t0 + k * rnd.choice((0, 10**6, 10**12))
        options = rnd.choice((0, 0, 1, 3))
        for d, seq, flags, payload in pkts:
            src, dst, sp, dp = (client, server, cport, sport) if d == 0 else (server, client, sport, cport)
            frame = ip_frame(link, v6, src, dst, sp, dp, seq, 0, flags, payload, options=options)
            packets.append((ts, k, frame))
            if rnd.random() < 0.02:  # traffic the core skips: UDP, IP fragments
                packets.append((ts, k, ip_frame(link, v6, src, dst, sp, dp, seq, 0, flags, payload,
                                                options=options, proto=rnd.choice((6, 17)), fragment=True)))
                packets.append((ts, k, ip_frame(link, v6, src, dst, sp, dp, 0, 0, 0, b"x" * 9, proto=17)))
            ts += rnd.choice((1000, 1000, 50_000, 3 * 10**9))
    if not same_ports:
        packets.sort(key=lambda p: p[0])  # connections interleaved in time
    snap = 262144
    records = []
    for ts, _, frame in packets:
        if not lossless and rnd.random() < 0.02:
            snap = 200
            records.append((ts, frame[:200], len(frame)))
        else:
            records.append((ts, frame, len(frame)))
    if fmt.startswith("pcapng"):
        tsresol = rnd.choice((6, 9, 3, 0x83, 0x90))
        data = write_pcapng(records, link, fmt.endswith("be"), tsresol, rnd, lossless)
    else:
        data = write_pcap(records, link, fmt == "pcap-be", fmt == "pcap-ns", snap)
    options = draw(st.fixed_dictionaries({}, optional={
        "data_limit": st.sampled_from([-1, 0, 1, 100, 5000]),
        "chunk_size": st.sampled_from([64, 1000, 1 << 20]),
        "ooo_budget": st.sampled_from([0, 100, 3000, 64 << 20]),
        "history": st.sampled_from([0, 1, 50, 16384]),
        "max_flows": st.sampled_from([1, 2, 100_000]),
        "idle_timeout": st.sampled_from([1, 10**6, 10**9, 600 * 10**9]),
        "heuristic": st.booleans(),
        "heuristic_window": st.sampled_from([10, 1000, 1 << 20]),
        "ports": st.sampled_from([(104,), (104, 11112), (), (4242, 104)]),
        "max_pdu": st.sampled_from([100, 16384, 0xFFFFFFFF]),
        "sync_max_pdu": st.sampled_from([100, 64 << 20]),
        "max_command": st.sampled_from([0, 10, 1 << 20]),
        "max_assoc_pdu": st.sampled_from([100, 1 << 20]),
        "partition": st.sampled_from([(0, 1), (0, 2), (1, 2)]),
        "pdata_runs": st.booleans(),
        "trim_heads": st.booleans(),
    }))
    if not lossless and draw(st.booleans()):  # damage a few bytes of the file, cut its end
        buf = bytearray(data)
        for _ in range(draw(st.integers(0, 4))):
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            del buf[rnd.randrange(len(buf)):]
        if rnd.random() < 0.05:
            buf[20:24] = b"\x2a\x00\x00\x00"  # an unsupported link type
        data = bytes(buf)
    chunks = random_chunks(len(data), seed, draw(st.sampled_from([100, 3000, 1 << 20])))
    return data, chunks, options, clients


def built(max_examples):
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@built(1200)
@given(captures())
def test_twins_agree_on_built_captures(case):
    data, chunks, options, _ = case
    assert_same(data, chunks, **options)


@built(400)
@given(captures(lossless=True), st.sampled_from([64, 1000, 1 << 20]), st.sampled_from([0, 100, 16384]))
def test_lossless_captures_give_the_pdus_sent(case, chunk_size, history):
    data, chunks, _, clients = case
    options = {"data_limit": -1, "chunk_size": chunk_size, "history": history, "ports": (104, 11112, 4242),
               "heuristic": False}
    events, _ = assert_same(data, chunks, **options)
    pdus, damaged = rebuild_pdus(events)
    assert not damaged
    sent = defaultdict(list)  # connections on the same addresses and ports follow one another
    for ip, port, conv in clients:
        sent[ip, port].append(conv)
    flows = [ev for ev in events if ev[0] == EV_FLOW]
    assert len(flows) == len(clients)
    for flow in flows:
        conv = sent[flow[4], flow[5]].pop(0)
        for d in (0, 1):
            assert pdus[flow[1], d] == [p for x, p in conv if x == d]


# ------------------------------------------------------------ pure helpers
def pdu_like():
    """Byte strings that are often close to a PDU header and body."""
    head = st.tuples(st.integers(0, 8), st.sampled_from([0, 0, 1]), st.integers(0, 0x20000)).map(
        lambda t: struct.pack(">BBI", *t))
    pdv = st.tuples(st.integers(0, 300), st.integers(0, 255), st.integers(0, 5), st.binary(max_size=40)).map(
        lambda t: struct.pack(">IBB", *t[:3]) + t[3])
    return st.lists(st.one_of(head, pdv, st.binary(max_size=30), st.just(G.assoc_rq()),
                              st.just(G.abort()), st.just(_pycore.COMMAND_GROUP_LENGTH)),
                    max_size=8).map(b"".join)


@settings(max_examples=2000, deadline=None)
@given(pdu_like(), st.integers(0, 50), st.integers(0, 400), st.sampled_from([6, 100, 1 << 20, 64 << 20]))
def test_check_candidate(buf, p, n, sync_max):
    n = min(n, len(buf))
    p = min(p, n)
    assert _core.check_candidate(buf, p, n, sync_max) == _pycore.check_candidate(buf, p, n, sync_max)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.builds(lambda m, x: G.assoc_rq(max_len=m)[6:] + x,
                                                        st.integers(0, 2**32 - 1), st.binary(max_size=8))))
def test_parse_max_length_and_fnv(body):
    assert _core.parse_max_length(body) == _pycore.parse_max_length(body)
    assert _core.fnv1a64(body) == _pycore.fnv1a64(body)


# ------------------------------------ regressions of twin bugs fixed in the port
def loopback_pcap(pkts):
    """A pcap of ``(connection, direction, seq, flags, payload)`` packets
    between clients 10.0.0.1:40000+connection and the server 10.0.0.2:104,
    a microsecond apart."""
    client, server = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    records = []
    for k, (c, d, seq, flags, payload) in enumerate(pkts):
        ends = ((client, 40000 + c), (server, 104))[::1 if d == 0 else -1]
        frame = ip_frame(1, False, ends[0][0], ends[1][0], ends[0][1], ends[1][1], seq, 0, flags, payload)
        records.append((1_700_000_000 * 10**9 + k * 1000, frame, len(frame)))
    return write_pcap(records, 1)


def held_segments_capture(n_held, descending=False):
    """An association whose P-DATA arrives as ``n_held`` 1-byte segments with
    holes between them, then one segment covering them all."""
    rq = G.assoc_rq()
    stream = rq + G.p_data((1, 2, bytes(range(256)) * ((2 * n_held + 600) // 256)))
    isn = 1000
    pkts = [(0, 0, isn, 0x02, b""), (0, 1, 9000, 0x12, b""), (0, 0, isn + 1, 0x10, b""), (0, 0, isn + 1, 0x18, rq)]
    offsets = [len(rq) + 10 + 2 * k for k in range(n_held)]
    pkts += [(0, 0, isn + 1 + o, 0x18, stream[o:o + 1]) for o in (offsets[::-1] if descending else offsets)]
    pkts.append((0, 0, isn + 1 + len(rq), 0x18, stream[len(rq):]))
    return loopback_pcap(pkts), stream


def test_one_segment_spanning_many_held_segments():
    """The twin's _insert recursed once per hole spanned (RecursionError at ~1000)."""
    data, stream = held_segments_capture(1500)
    events, _ = assert_same(data, data_limit=-1)
    pdus, damaged = rebuild_pdus(events)
    assert not damaged and b"".join(pdus[0, 0]) == stream


@pytest.mark.parametrize("descending", [False, True])
def test_too_many_held_segments(descending):
    data, _ = held_segments_capture(MAX_OOO + 4, descending)
    events, _ = assert_same(data)
    assert any(ev[0] == EV_EXPERT and ev[3] == X_OOO_SEGMENTS for ev in events)


def pcapng_one_packet(t, tsresol, tsoff):
    conv = real_conversation("negotiation")[:1]
    frame = ip_frame(1, False, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 40000, 104, 1, 0, 0x02, b"")
    data = ip_frame(1, False, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 40000, 104, 2, 0, 0x18, conv[0][1])

    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", btype, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    opts = (struct.pack("<HH", 9, 1) + bytes((tsresol, 0, 0, 0)) + struct.pack("<HHq", 14, 8, tsoff)
            + struct.pack("<HH", 0, 0))
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", 1, 0, 0) + opts)]
    for buf in (frame, data):
        out.append(block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(buf), len(buf)) + buf))
    return b"".join(out)


@pytest.mark.parametrize("t, tsresol, tsoff, ts", [
    (2**62, 0, 0, 2**63 - 1),  # seconds: far past what int64 nanoseconds hold
    (2**64 - 1, 0x80, 0, 2**63 - 1),  # 2^0 units per second
    (5, 9, -(2**62), -(2**63)),  # offset far back
    (1_700_000_000_123_456, 6, 10, 1_700_000_010_123_456_000),  # an ordinary one
])
def test_pcapng_timestamps_saturate(t, tsresol, tsoff, ts):
    events, _ = assert_same(pcapng_one_packet(t, tsresol, tsoff))
    flow = next(ev for ev in events if ev[0] == EV_FLOW)
    assert flow[3] == ts


@pytest.mark.parametrize("to_the_end", [False, True])
def test_damaged_record_expert(to_the_end):
    """X_CAPTURE_DAMAGED: arg1 = file offset, arg2 = bytes skipped; counted once."""
    data = bytearray((DATA / "real" / "nservices.pcap").read_bytes())
    data[24 + 8:24 + 12] = b"\xff\xff\xff\x7f"  # the first record's length
    if to_the_end:
        data += b"\xff" * 40
        data[24 + 16 + struct.unpack_from("<I", data, 24 + 12)[0]:] = b"\xff" * 100
    events, stats = assert_same(bytes(data))
    damaged = [ev for ev in events if ev[0] == EV_EXPERT and ev[3] == X_CAPTURE_DAMAGED]
    assert damaged and damaged[0][6] == damaged[0][7] == 24 and damaged[0][8] > 0
    assert stats["damaged_records"] == 1


@pytest.mark.parametrize("name", ["multi_pdv", "big_store", "store_dcmtk", "concurrent"])
@pytest.mark.parametrize("cut", [0.1, 0.2, 0.3, 0.5])
def test_midstream_cuts(name, cut):
    """Captures that begin at several points inside an association, some inside
    pixel data that looks like a long P-DATA header (a resynchronising framer
    believes an unverifiable one only if its first PDV fills it): both twins
    agree, whole and fed in pieces."""
    import mutations
    _, pkts = mutations.read((DATA / "real" / f"{name}.pcap").read_bytes())
    data = mutations.write(pkts[int(len(pkts) * cut):])
    assert_same(data)
    assert_same(data, random_chunks(len(data), 5, 3000))


@pytest.mark.parametrize("impl", [_core, _pycore], ids=["cython", "python"])
def test_a_long_unverifiable_pdata_is_believed_only_if_its_first_pdv_fills_it(impl):
    L = 16 << 20  # longer than the window: its end cannot be looked at
    filled = bytes([4, 0]) + L.to_bytes(4, "big") + (L - 4).to_bytes(4, "big") + bytes([1, 0]) + bytes(100)
    short = bytes([4, 0]) + L.to_bytes(4, "big") + (1000).to_bytes(4, "big") + bytes([1, 0]) + bytes(100)
    assert impl.check_candidate(filled, 0, len(filled), 64 << 20) == (_pycore.C_TENTATIVE, L)
    assert impl.check_candidate(short, 0, len(short), 64 << 20) == (_pycore.C_REJECT, 0)


def interleaved_retransmission_capture(conflict: bool, n_segments: int):
    """Two associations whose P-DATA arrives interleaved, segment by segment,
    then a retransmission of one of connection A's early segments (its bytes
    still within the history), with one byte changed if ``conflict``."""
    streams, pkts = [], []
    for c in range(2):
        rq = G.assoc_rq()
        streams.append(rq + G.p_data((1, 2, bytes((c + k) & 0xFF for k in range(100 * n_segments)))))
    for c in range(2):
        pkts += [(c, 0, 1000, 0x02, b""), (c, 1, 9000, 0x12, b""), (c, 0, 1001, 0x10, b"")]
    pos = [0, 0]
    while any(pos[c] < len(streams[c]) for c in range(2)):
        for c in range(2):
            if pos[c] < len(streams[c]):
                pkts.append((c, 0, 1001 + pos[c], 0x18, streams[c][pos[c]:pos[c] + 100]))
                pos[c] += 100
    again = bytearray(streams[0][500:600])
    if conflict:
        again[40] ^= 0x5A
    pkts.append((0, 0, 1001 + 500, 0x18, bytes(again)))
    return loopback_pcap(pkts)


@pytest.mark.parametrize("chunks", [None, "random"])
@pytest.mark.parametrize("n_segments", [20, 100])  # fewer and more than the spans noted per direction
@pytest.mark.parametrize("conflict", [False, True])
def test_retransmission_compared_after_interleaved_connections(conflict, n_segments, chunks):
    """The history of each direction is filled lazily: a retransmission is
    compared with the right bytes even when other connections received data
    in between, in the same feed() call or not."""
    data = interleaved_retransmission_capture(conflict, n_segments)
    events, stats = assert_same(data, None if chunks is None else random_chunks(len(data), n_segments))
    conflicts = [ev for ev in events if ev[0] == EV_EXPERT and ev[3] == X_TCP_OVERLAP_CONFLICT]
    assert len(conflicts) == (1 if conflict else 0)
    assert stats["overlap_conflicts"] == (1 if conflict else 0)
    assert stats["retransmissions"] >= 1


def _flows_of(events):
    """(first frame, client, server) of every connection in the events."""
    return sorted((ev[2], ev[4], ev[5], ev[6], ev[7]) for ev in events if ev[0] == EV_FLOW)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("path", [p for p in CAPTURES if "concurrent" in p.name or "multi" in p.name
                                  or "big" in p.name], ids=lambda p: p.name)
def test_partitions_share_out_every_connection_once(path, n):
    """Workers k of n decide the same owners: every connection the whole
    capture has is seen by exactly one of them, with the same events, and the
    twins agree on each share."""
    data = load(path)
    ports = dicom_ports(path)
    whole, stats = assert_same(data, ports=ports)
    shares = [assert_same(data, random_chunks(len(data), k), ports=ports, partition=(k, n))
              for k in range(n)]
    assert sorted(f for events, _ in shares for f in _flows_of(events)) == _flows_of(whole)
    for counter in ("dicom_packets", "other_tcp_packets", "flows", "pdus"):
        assert sum(s[counter] for _, s in shares) == stats[counter]
    assert all(s["dicom_packets"] + s["other_tcp_packets"] + s["partition_skipped"] == stats["tcp_packets"]
               for _, s in shares)
    # the events of a share are the whole capture's events of its connections
    def pdus(events):
        return sorted((ev[2], ev[4] if len(ev) > 4 else None) for ev in events if ev[0] == EV_PDU)
    assert sorted(p for events, _ in shares for p in pdus(events)) == pdus(whole)


def test_partitions_balance_the_load():
    """Owners go to the least loaded worker: a capture whose connections
    differ widely in size is still shared out evenly (a hash of the keys gave
    one worker 76 % of the benchmark capture's packets)."""
    rnd = random.Random(5)
    pkts = []
    sizes = [rnd.choice((2, 4, 40, 200)) for _ in range(24)]
    for c, size in enumerate(sizes):  # one after the other, as a modality's stores
        pkts += [(c, 0, 1000, 0x02, b""), (c, 1, 9000, 0x12, b""), (c, 0, 1001, 0x10, b"")]
        pkts += [(c, 0, 1001 + 1000 * k, 0x18, bytes(1000)) for k in range(size)]
    data = loopback_pcap(pkts)
    for n in (2, 3):
        got = [outcome(_core, data, ports=(104,), partition=(k, n))[1] for k in range(n)]
        got = [s["tcp_packets"] - s["partition_skipped"] for s in got]
        assert sum(got) == len(pkts)
        assert max(got) - min(got) <= max(sizes) + 3
