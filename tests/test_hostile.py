"""Hostile captures: every shared real capture, damaged on purpose.

Each capture of tests/data/real is damaged in several ways: random byte flips
in link/IP/TCP headers, truncation at random offsets, a damaged pcap record
length, PDU lengths of 0, 1 and 0xFFFFFFFF, a PDV length that overruns its
PDU, an association item length that overruns its PDU, odd lengths (a PDV
value one byte longer, an element length made odd) and undefined lengths
without delimiters.  On each variant ``summary`` and ``export`` must hold the
invariant (exit status 0 or 1, no internal error, no traceback; expert infos
describe the damage), and every object the clean export wrote whose
connection the damage did not touch (or that was complete before the first
damaged frame) must be exported again, byte for byte (SHA-256 of the data set
and of the whole file).
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import io
import json
import os
import random
import struct

import dpkt
import pytest

from fastdicom import _pycore, cli, core
from helpers import REAL, REAL_CAPTURES, ports_of

SEED = 20261127
WATCHDOG = 300  # seconds: a variant that takes longer is a hang, and ends the run


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main([str(a) for a in argv])
    finally:
        faulthandler.cancel_dump_traceback_later()
    return status, out.getvalue(), err.getvalue()


def check_invariant(status, err, what):
    assert status in (0, 1, 2), (what, status, err)
    assert "internal error" not in err and "Traceback" not in err, (what, err)
    if status == 2:  # a failure is one clear line
        assert err.count("\n") == 1 and err.startswith("fastdicom: "), (what, err)


# ----------------------------------------------------------- pcap records
def records(data: bytes):
    """[(record offset, data offset, length, connection or None)] of a pcap."""
    big = data[:4] == b"\xa1\xb2\xc3\xd4" or data[:4] == b"\xa1\xb2\x3c\x4d"
    e = ">" if big else "<"
    link = struct.unpack(e + "I", data[20:24])[0]
    out = []
    p = 24
    while p + 16 <= len(data):
        incl = struct.unpack(e + "I", data[p + 8:p + 12])[0]
        out.append((p, p + 16, incl, connection(data[p + 16:p + 16 + incl], link)))
        p += 16 + incl
    return out


def _ep(ip, port):
    import socket
    if len(ip) == 16:
        return f"[{socket.inet_ntop(socket.AF_INET6, ip)}]:{port}"
    return f"{socket.inet_ntop(socket.AF_INET, ip)}:{port}"


def connection(frame: bytes, link=1):
    """The TCP connection of a frame (a frozenset of its two endpoints), or None."""
    try:
        if link == 1:
            ip = dpkt.ethernet.Ethernet(frame).data
        elif link == 0:
            ip = dpkt.loopback.Loopback(frame).data
        else:
            ip = dpkt.ip.IP(frame)
        tcp = ip.data
        if not isinstance(tcp, dpkt.tcp.TCP):
            return None
        return frozenset((_ep(ip.src, tcp.sport), _ep(ip.dst, tcp.dport)))
    except Exception:  # noqa: BLE001 - not a TCP frame
        return None


def tcp_payload_offset(frame: bytes):
    """Offset of the TCP payload in an Ethernet frame (IPv4 or IPv6), or None."""
    try:
        eth = dpkt.ethernet.Ethernet(frame)
    except Exception:  # noqa: BLE001
        return None
    ip = eth.data
    if not isinstance(getattr(ip, "data", None), dpkt.tcp.TCP):
        return None
    tcp = ip.data
    return len(frame) - len(tcp.data) if tcp.data else None


# -------------------------------------------------------------- mutations
def pdu_starts(data, recs, types=(1, 2, 3, 4, 5, 6, 7), need=None):
    """(record index, payload offset) of segments whose payload starts with a
    well-formed PDU of one of ``types`` (the core's own candidate check)."""
    out = []
    for k, (_p, d, n, conn) in enumerate(recs):
        if conn is None:
            continue
        frame = data[d:d + n]
        off = tcp_payload_offset(frame)
        if off is None or frame[off] not in types:
            continue
        verdict, _L = _pycore.check_candidate(frame, off, len(frame), 64 << 20)
        if verdict in (_pycore.C_ACCEPT, _pycore.C_NEED, _pycore.C_TENTATIVE) and (
                need is None or need(frame, off)):
            out.append((k, d + off))
    return out


def mutate(data: bytes, recs, kind: str, rnd: random.Random):
    """(mutated capture, damaged record indexes, cut record index or None), or
    None when the capture offers no place for this kind of damage."""
    b = bytearray(data)
    if kind == "flip":
        hit = set()
        for k in rnd.sample(range(len(recs)), min(4, len(recs))):
            _p, d, n, conn = recs[k]
            hdr = tcp_payload_offset(data[d:d + n]) or min(n, 54)
            if hdr <= 0:
                continue
            at = d + rnd.randrange(hdr)
            b[at] ^= 1 << rnd.randrange(8)
            hit.update({k, ("conn", connection(bytes(b[d:d + n])))})
        return bytes(b), hit, None
    if kind == "truncate":
        k = rnd.randrange(len(recs) // 4, len(recs))
        p = recs[k][0] + rnd.randrange(1, 16 + recs[k][2])  # inside record k: never at a boundary
        return bytes(b[:p]), set(), k
    if kind == "reclen":
        k = rnd.randrange(len(recs))
        p = recs[k][0]
        big = data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
        bad = rnd.choice((0xFFFF0000, recs[k][2] + 7, max(0, recs[k][2] - 9)))
        b[p + 8:p + 12] = struct.pack(">I" if big else "<I", bad)
        return bytes(b), set(range(k, min(len(recs), k + 4))), None
    if kind.startswith("pdu_len_"):
        value = {"pdu_len_0": 0, "pdu_len_1": 1, "pdu_len_max": 0xFFFFFFFF}[kind]
        cands = pdu_starts(data, recs)
        if not cands:
            return None
        k, at = rnd.choice(cands)
        b[at + 2:at + 6] = struct.pack(">I", value)
        return bytes(b), {k}, None
    if kind == "pdv_overrun":
        cands = pdu_starts(data, recs, (4,))
        if not cands:
            return None
        k, at = rnd.choice(cands)
        L = struct.unpack(">I", data[at + 2:at + 6])[0]
        b[at + 6:at + 10] = struct.pack(">I", L + rnd.choice((1, 100, 1 << 20)))
        return bytes(b), {k}, None
    if kind == "item_overrun":
        cands = pdu_starts(data, recs, (1, 2), need=lambda f, o: len(f) >= o + 6 + 72)
        if not cands:
            return None
        k, at = rnd.choice(cands)
        b[at + 6 + 68 + 2:at + 6 + 68 + 4] = b"\xff\xff"  # the first item (application context)
        return bytes(b), {k}, None
    if kind == "odd_length":
        cands = pdu_starts(data, recs, (4,), need=lambda f, o: len(f) >= o + 20 and not f[o + 11] & 1)
        if not cands:
            return None
        k, at = rnd.choice(cands)
        if rnd.random() < 0.5:  # the PDV value one byte longer
            pl = struct.unpack(">I", data[at + 6:at + 10])[0]
            b[at + 6:at + 10] = struct.pack(">I", pl + 1)
        else:  # the first element's length made odd (explicit VR: 16 bits at +6; implicit: 32 at +4)
            el = at + 12
            if 0x41 <= data[el + 4] <= 0x5A and 0x41 <= data[el + 5] <= 0x5A:
                v = struct.unpack("<H", data[el + 6:el + 8])[0]
                b[el + 6:el + 8] = struct.pack("<H", v | 1)
            else:
                v = struct.unpack("<I", data[el + 4:el + 8])[0]
                b[el + 4:el + 8] = struct.pack("<I", v | 1)
        return bytes(b), {k}, None
    if kind == "undefined_length":
        # an element of a 32-bit length (OB, OW, SQ, UN, UT, or implicit VR) set to
        # undefined, with no item or delimiter to end it
        cands = []
        for k, (_p, d, n, conn) in enumerate(recs):
            frame = data[d:d + n]
            for pat in (b"\xe0\x7f\x10\x00OB\x00\x00", b"\xe0\x7f\x10\x00OW\x00\x00"):
                i = frame.find(pat)
                if i >= 0 and i + 12 <= n:
                    cands.append((k, d + i + 8))
            i = frame.find(b"SQ\x00\x00")
            if i >= 4 and i + 8 <= n and struct.unpack("<I", frame[i + 4:i + 8])[0] not in (0, 0xFFFFFFFF):
                cands.append((k, d + i + 4))
        if not cands:
            return None
        k, at = rnd.choice(cands)
        b[at:at + 4] = b"\xff\xff\xff\xff"
        return bytes(b), {k}, None
    raise ValueError(kind)


KINDS = ("flip", "truncate", "reclen", "pdu_len_0", "pdu_len_1", "pdu_len_max", "pdv_overrun",
         "item_overrun", "odd_length", "undefined_length")
# damage that always leaves a trace in the expert infos
NOTICED = {"truncate", "reclen", "pdu_len_0", "pdu_len_1", "pdu_len_max", "pdv_overrun",
           "item_overrun"}


# ---------------------------------------------------------------- exports
def exported(out_dir):
    """{(data set SHA-256, file SHA-256): count} of the complete objects written."""
    got = {}
    with open(os.path.join(out_dir, "manifest.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    for r in rows:
        if r.get("file") and r["complete"]:
            with open(os.path.join(out_dir, r["file"]), "rb") as fh:
                h = hashlib.sha256(fh.read()).hexdigest()
            key = (r["sha256"], h)
            got[key] = got.get(key, 0) + 1
    return rows, got


def analyse(path, tmp, tag, ports):
    """summary (JSON) and export of one capture: (status, summary, manifest rows, files)."""
    spec = ",".join(map(str, ports))
    s_out = tmp / f"{tag}.json"
    st, _o, err = run_cli(["summary", path, "--ports", spec, "--format", "json", "-o", s_out])
    check_invariant(st, err, f"summary {tag}")
    doc = json.loads(s_out.read_text()) if st != 2 else None
    out_dir = tmp / f"{tag}-export"
    st2, _o, err = run_cli(["export", path, "--ports", spec, "-o", out_dir, "--keep-incomplete"])
    check_invariant(st2, err, f"export {tag}")
    rows, files = exported(out_dir) if st2 != 2 else ([], {})
    return doc, rows, files


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_damaged_real_capture(name, tmp_path):
    path = REAL / f"{name}.pcap"
    if core.PURE_PYTHON and path.stat().st_size > 1_000_000:
        pytest.skip("the pure-Python twin takes minutes on this capture's 22 runs (the "
                    "differential tests hold it to the compiled core)")
    ports = ports_of(path)
    data = path.read_bytes()
    recs = records(data)
    clean_doc, clean_rows, _ = analyse(path, tmp_path, "clean", ports)
    endpoints = {a["id"]: frozenset((a["client"], a["server"])) for a in clean_doc["associations"]}
    clean_ids = sorted(e["id"] for e in clean_doc["expert"])
    rnd = random.Random(f"{SEED}-{name}")
    tried = 0
    for kind in KINDS:
        m = mutate(data, recs, kind, rnd)
        if m is None:
            continue
        tried += 1
        mutated, hit, cut = m
        damaged = {x for x in hit if isinstance(x, int)}
        conns = {recs[k][3] for k in damaged} | {x[1] for x in hit if isinstance(x, tuple)}
        first = min(damaged) + 1 if damaged else None  # frame numbers count from 1
        vpath = tmp_path / f"{kind}.pcap"
        vpath.write_bytes(mutated)
        doc, _rows, files = analyse(vpath, tmp_path, kind, ports)
        assert doc is not None, kind
        if kind in NOTICED:
            assert sorted(e["id"] for e in doc["expert"]) != clean_ids, f"{kind}: damage not reported"
        # objects the damage cannot have touched come out byte for byte
        want = {}
        for r in clean_rows:
            if not (r.get("file") and r["complete"]):
                continue
            before = (first is not None and r["last_frame"] < first) or (
                cut is not None and r["last_frame"] < cut + 1)
            untouched = cut is None and endpoints.get(r["association"]) not in conns
            if before or untouched:
                with open(os.path.join(tmp_path, "clean-export", r["file"]), "rb") as fh:
                    key = (r["sha256"], hashlib.sha256(fh.read()).hexdigest())
                want[key] = want.get(key, 0) + 1
        missing = {k: n - files.get(k, 0) for k, n in want.items() if files.get(k, 0) < n}
        assert not missing, f"{name} {kind}: {len(missing)} undamaged objects not exported exactly"
    assert tried >= 5, f"only {tried} kinds of damage applied to {name}"


# ------------------------------------------ a damaged record length, precisely
@pytest.mark.parametrize("delta", [7, -9, 0xFFFF0000])
def test_damaged_record_length_costs_one_record(delta):
    """A record whose length field is off by a few bytes used to leave the
    reader inside the next packet, reading garbage "records" (times decades
    away) until the end; now a header that jumps in time or whose lengths
    disagree is believed only if the record after it looks right, so exactly
    the damaged record is skipped.  Both twins agree."""
    import sys
    sys.path.insert(0, str(REAL.parent.parent.parent / "fuzz"))
    import targets
    import pcapgen as G
    from fastdicom.events import EV_EXPERT, X_CAPTURE_DAMAGED

    c = G.store_conversation([f"1.2.3.{k}" for k in range(5)])
    data = bytearray(G.pcap(c))
    recs = records(bytes(data))
    k = len(recs) // 2
    p, _d, n, _conn = recs[k]
    new = (n + delta) & 0xFFFFFFFF
    data[p + 8:p + 12] = struct.pack("<I", new)
    events, stats = targets.both_twins(bytes(data), None, ports=(104,))[:2]
    damaged = [e for e in events if e[0] == EV_EXPERT and e[3] == X_CAPTURE_DAMAGED]
    assert len(damaged) == 1
    # skipped: the damaged record, header and all (too long), or only the bytes
    # between the short record's end and the next header (too short: that record
    # is read as if the tap had cut it)
    assert damaged[0][8] == (16 + n if delta > 0 else -delta)
    assert stats["records"] == len(recs) - (1 if delta > 0 else 0)


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "trailing", "header"])
def test_damaged_gzip(tmp_path, damage):
    """A gzip-compressed capture damaged or cut short (copied while it was being
    written) is analysed as far as it inflates, and the loss is reported
    (capture.gzip, and the capture's error in the JSON); a gzip header that is
    not one is one clear error line."""
    import gzip
    data = bytearray(gzip.compress((REAL / "big_store.pcap").read_bytes()))
    if damage == "corrupt":
        for i in range(len(data) // 2, len(data) // 2 + 100):
            data[i] ^= 0x5A
    elif damage == "truncated":
        del data[len(data) // 2:]
    elif damage == "trailing":
        data += b"not gzip at all"
    else:
        data[3] = 0xFF  # reserved flag bits: not a gzip header
    path = tmp_path / "c.pcap.gz"
    path.write_bytes(bytes(data))
    ports = ",".join(map(str, ports_of(REAL / "big_store.pcap")))
    status, out, err = run_cli(["summary", path, "--ports", ports, "--format", "json"])
    check_invariant(status, err, f"summary {damage}")
    if damage == "header":
        assert status == 2 and "gzip" in err, err
        return
    assert status in (0, 1), err
    doc = json.loads(out)
    assert "capture.gzip" in {e["id"] for e in doc["expert"]}
    assert doc["captures"][0]["error"].startswith("gzip data ")
    if damage != "trailing":
        assert doc["counts"]["pdus"] > 0  # what came before the damage was analysed
    status, _out, err = run_cli(["export", path, "--ports", ports, "-o", tmp_path / "out"])
    check_invariant(status, err, f"export {damage}")
    assert status in (0, 1), err


def test_ip_fragment_every_command(tmp_path):
    """An IP fragment in a capture (not reassembled, reported once) used to stop
    every command with an internal error: the expert info's argument was
    called 'frame', as the info's own frame is."""
    data = bytearray((REAL / "store_dcmtk.pcap").read_bytes())
    recs = records(bytes(data))
    _p, d, _n, _c = recs[len(recs) // 2]
    data[d + 14 + 6:d + 14 + 8] = b"\x20\x00"  # IPv4 flags: more fragments
    path = tmp_path / "frag.pcap"
    path.write_bytes(bytes(data))
    ports = ",".join(map(str, ports_of(REAL / "store_dcmtk.pcap")))
    for argv in (["summary"], ["pdus"], ["show"], ["expert"], ["analyze"], ["export", "-o", tmp_path / "o"],
                 ["report", "-o", tmp_path / "r.html"]):
        status, out, err = run_cli([argv[0], path, "--ports", ports, *argv[1:]])
        check_invariant(status, err, argv[0])
        assert status in (0, 1), (argv, err)
    status, out, err = run_cli(["expert", path, "--ports", ports])
    assert "ip.fragment: IP fragments are not reassembled (first in frame" in out


@pytest.mark.parametrize("damage", ["block_length", "trailer", "truncate"])
def test_damaged_pcapng_block(tmp_path, damage):
    """The same capture as pcapng with one Enhanced Packet Block damaged: the
    reader skips to the next good block, the objects of the connections it did
    not touch are exported byte for byte, the damage is reported."""
    from mutations import read, to_pcapng
    path = REAL / "concurrent.pcap"
    ports = ports_of(path)
    spec = ",".join(map(str, ports))
    link, pkts = read(path.read_bytes())
    data = bytearray(to_pcapng(pkts, two_interfaces=False))
    # the EPBs, in order: (offset, length)
    blocks, p = [], 0
    while p + 12 <= len(data):
        btype, blen = struct.unpack("<II", data[p:p + 8])
        if btype == 6:
            blocks.append((p, blen))
        p += blen
    k = len(blocks) // 2
    off, blen = blocks[k]
    if damage == "block_length":
        data[off + 4:off + 8] = struct.pack("<I", blen + 8)
    elif damage == "trailer":
        data[off + blen - 4:off + blen] = struct.pack("<I", blen - 4)
    else:
        del data[off + blen // 2:]
    v = tmp_path / "v.pcapng"
    v.write_bytes(bytes(data))
    clean = tmp_path / "c.pcapng"
    clean.write_bytes(to_pcapng(pkts, two_interfaces=False))
    _doc, clean_rows, _ = analyse(clean, tmp_path, "clean", ports)
    doc, _rows, files = analyse(v, tmp_path, "damaged", ports)
    assert {"capture.damaged", "capture.truncated"} & {e["id"] for e in doc["expert"]}
    conn = connection(pkts[k][1])
    endpoints = {a["id"]: frozenset((a["client"], a["server"])) for a in _doc["associations"]}
    for r in clean_rows:
        if not (r.get("file") and r["complete"]):
            continue
        untouched = endpoints.get(r["association"]) != conn if damage != "truncate" else r["last_frame"] <= k
        if untouched:
            with open(tmp_path / "clean-export" / r["file"], "rb") as fh:
                key = (r["sha256"], hashlib.sha256(fh.read()).hexdigest())
            assert files.get(key), f"{damage}: {r['file']} not exported exactly"
