"""What a network tap does to a capture, for tests: reordered, duplicated,
overlapping and lost segments, other link layers, other file formats.

Input is a clean Ethernet pcap; every function returns the bytes of a new
capture.  Deterministic for a given seed.
"""

from __future__ import annotations

import gzip
import random
import struct

import dpkt

MODES = ("reorder", "dup", "overlap", "drop", "vlan", "qinq", "sll", "sll2", "rawip", "null",
         "nanosec", "bigendian", "midstream", "pcapng", "gzip", "snaplen")


def read(data: bytes):
    import io
    r = dpkt.pcap.Reader(io.BytesIO(data))
    return r.datalink(), [(ts, bytes(buf)) for ts, buf in r]


def write(pkts, linktype=1, nano=False, big=False, snaplen=262144) -> bytes:
    e = ">" if big else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for p in pkts:
        ts, buf = p[0], p[1]
        orig = p[2] if len(p) > 2 else len(buf)
        sec = int(ts)
        frac = int(round((ts - sec) * (1e9 if nano else 1e6)))
        if frac >= (10**9 if nano else 10**6):
            sec, frac = sec + 1, 0
        out.append(struct.pack(e + "IIII", sec, frac, len(buf), orig))
        out.append(buf)
    return b"".join(out)


def payload_len(buf) -> int:
    eth = dpkt.ethernet.Ethernet(buf)
    ip = eth.data
    if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) and isinstance(ip.data, dpkt.tcp.TCP):
        return len(ip.data.data)
    return 0


def resegment(buf, cuts):
    """Frames carrying the same TCP data as ``buf``, split at the offsets in ``cuts``."""
    eth = dpkt.ethernet.Ethernet(buf)
    ip = eth.data
    tcp = ip.data
    data = bytes(tcp.data)
    bounds = [0] + sorted(cuts) + [len(data)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        t = dpkt.tcp.TCP(bytes(tcp))
        t.seq = (tcp.seq + a) & 0xFFFFFFFF
        t.data = data[a:b]
        t.sum = 0
        i = ip.__class__(bytes(ip))
        i.data = t
        if isinstance(i, dpkt.ip.IP):
            i.len = 0
            i.sum = 0
        else:
            i.plen = 0
        e2 = dpkt.ethernet.Ethernet(bytes(eth))
        e2.data = i
        out.append(bytes(e2))
    return out


def with_payload(buf, data: bytes):
    """The frame with its TCP payload replaced (same length or not)."""
    eth = dpkt.ethernet.Ethernet(buf)
    ip = eth.data
    t = ip.data
    t.data = data
    t.sum = 0
    if isinstance(ip, dpkt.ip.IP):
        ip.len = 0
        ip.sum = 0
    else:
        ip.plen = 0
    ip.data = t
    eth.data = ip
    return bytes(eth)


def mutated_file(src, mode: str | None, folder, seed: int = 7, rate: float = 0.05):
    """The capture file ``src`` as a tap in ``mode`` gives it, written into
    ``folder`` (``src`` itself when ``mode`` is None)."""
    if mode is None:
        return src
    out = folder / f"{mode}_{seed}_{src.name}"
    out.write_bytes(mutate(src.read_bytes(), mode, seed=seed, rate=rate))
    return out


def mutate(data: bytes, mode: str, seed: int = 7, rate: float = 0.05) -> bytes:
    rnd = random.Random(seed)
    link, pkts = read(data)
    assert link == 1, "input must be Ethernet"
    if mode == "reorder":
        i = 0
        while i < len(pkts) - 1:
            if payload_len(pkts[i][1]) and payload_len(pkts[i + 1][1]) and rnd.random() < max(rate, 0.2):
                pkts[i], pkts[i + 1] = pkts[i + 1], pkts[i]
                i += 2
            else:
                i += 1
        return write(pkts)
    if mode in ("dup", "overlap"):
        out, later = [], []
        for ts, buf in pkts:
            out.append((ts, buf))
            n = payload_len(buf)
            if n > 8 and rnd.random() < max(rate, 0.2):
                if mode == "dup":
                    later.append([rnd.randint(1, 6), buf])
                else:
                    k = rnd.randint(1, 3)
                    cuts = sorted(rnd.sample(range(1, n), min(k, n - 1)))
                    for piece in resegment(buf, cuts):
                        later.append([rnd.randint(1, 6), piece])
            keep = []
            for item in later:
                if item[0] <= 0:
                    out.append((ts, item[1]))
                else:
                    item[0] -= 1
                    keep.append(item)
            later = keep
        ts = out[-1][0] if out else 0
        out.extend((ts, b) for _, b in later)
        return write(out)
    if mode == "drop":
        return write([(ts, b) for ts, b in pkts if not (payload_len(b) and rnd.random() < rate)])
    if mode in ("vlan", "qinq"):
        tags = b"\x81\x00\x00\x2a" if mode == "vlan" else b"\x88\xa8\x00\x64\x81\x00\x00\x2a"
        return write([(ts, b[:12] + tags + b[12:]) for ts, b in pkts])
    if mode == "sll":
        out = []
        for ts, b in pkts:
            hdr = struct.pack(">HHH8sH", 0, 772, 6, b[6:12] + b"\0\0", struct.unpack(">H", b[12:14])[0])
            out.append((ts, hdr + b[14:]))
        return write(out, linktype=113)
    if mode == "sll2":
        out = []
        for ts, b in pkts:
            hdr = struct.pack(">HHIHBB8s", struct.unpack(">H", b[12:14])[0], 0, 1, 772, 0, 6, b[6:12] + b"\0\0")
            out.append((ts, hdr + b[14:]))
        return write(out, linktype=276)
    if mode == "rawip":
        return write([(ts, b[14:]) for ts, b in pkts], linktype=101)
    if mode == "null":  # BSD loopback, family in little-endian host order
        out = []
        for ts, b in pkts:
            fam = 2 if b[12:14] == b"\x08\x00" else 30
            out.append((ts, struct.pack("<I", fam) + b[14:]))
        return write(out, linktype=0)
    if mode == "nanosec":
        return write(pkts, nano=True)
    if mode == "bigendian":
        return write(pkts, big=True)
    if mode == "midstream":
        return write(pkts[int(len(pkts) * max(rate, 0.3)):])
    if mode == "pcapng":
        return to_pcapng(pkts)
    if mode == "gzip":
        return gzip.compress(write(pkts))
    if mode == "snaplen":  # a tap with a short snap length: records cut, wire length kept
        return write([(ts, b[:200], len(b)) for ts, b in pkts], snaplen=200)
    raise ValueError(mode)


def to_pcapng(pkts, tsresol: int = 9, two_interfaces: bool = True) -> bytes:
    """pcapng with EPBs; with ``two_interfaces``, odd packets go to a second
    interface with another link type (raw IP) and microsecond resolution."""

    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    def opt(code, val):
        return struct.pack("<HH", code, len(val)) + val + b"\0" * (-len(val) % 4)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    out.append(block(1, struct.pack("<HHI", 1, 0, 0) + opt(9, bytes([tsresol])) + opt(0, b"")))
    if two_interfaces:
        out.append(block(1, struct.pack("<HHI", 101, 0, 0) + opt(9, bytes([6])) + opt(0, b"")))
    for k, (ts, buf) in enumerate(pkts):
        if two_interfaces and k % 2:
            t = int(round(ts * 1e6))
            ifid, data = 1, buf[14:]
        else:
            t = int(round(ts * 10**tsresol))
            ifid, data = 0, buf
        body = struct.pack("<IIIII", ifid, t >> 32, t & 0xFFFFFFFF, len(data), len(data)) + data
        out.append(block(6, body))
        if k == 3:  # an unknown block type in the middle must be skipped
            out.append(block(0x0BADF00D & 0x7FFFFFFF, b"custom"))
    return b"".join(out)
