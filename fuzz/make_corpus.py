"""Build the seed corpora of the fuzz targets from the captures in tests/data.

``python fuzz/make_corpus.py [OUTDIR]`` (default ``fuzz/corpus``) writes one
folder per target (see ``targets.py`` for each input layout):

- ``capture``: every capture (gzip inflated), its first 64 KiB, behind the
  two parameter bytes;
- ``stream`` and ``pipeline``: every DICOM connection as a conversation of
  PDUs rebuilt from the core's events, P-DATA values cut to 512 bytes per PDV
  (lengths fixed) so that seeds stay small;
- ``associate``: every A-ASSOCIATE-RQ/AC, -RJ and A-ABORT body;
- ``dimse``: every command set; ``tagwalk``: every data set's first 16 KiB.

Deterministic: the same captures give the same files (named by SHA-1).
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

from fastdicom import core  # noqa: E402
from fastdicom.events import EV_PDATA, EV_PDU  # noqa: E402

import targets  # noqa: E402

DATA = ROOT / "tests" / "data"
PORTS = (104, 11112, 11113, 11114, 5158, 4242, 5678)
PDV_CUT = 512


def captures():
    for p in sorted(DATA.rglob("*")):
        if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")) and "fuzz" not in p.parts:
            data = p.read_bytes()
            yield p, gzip.decompress(data) if p.name.endswith(".gz") else data


def events_of(data: bytes):
    eng = core.Engine(ports=PORTS, data_limit=-1)
    eng.feed(data)
    eng.finish()
    return eng.pop_events()


def conversations(events):
    """{flow: [(dir, pdu bytes)]}, data sets and command sets on the side."""
    convs, open_pdata, messages = {}, {}, []
    partial = {}
    for ev in events:
        if ev[0] == EV_PDU:
            _, fid, d, t, length, _off, _f0, _f1, _t0, _t1, body, _fl = ev
            convs.setdefault(fid, []).append((d, struct.pack(">BBI", t, 0, len(body)) + body))
            if t in (1, 2, 3, 7):
                kind = {1: 0, 2: 1, 3: 6, 7: 7}[t]
                messages.append(("associate", bytes([kind]) + body))
        elif ev[0] == EV_PDATA:
            _, fid, d, _t, _length, _off, _f0, _f1, _t0, _t1, pieces, flags, _rel, _last = ev
            items = open_pdata.setdefault((fid, d), [])
            for ctx, mch, _pl, offset, _plen, data in pieces:
                if offset == 0 or not items:
                    items.append([ctx, mch, bytearray()])
                items[-1][2] += data
                key = (fid, d, ctx, mch & 1)
                buf = partial.setdefault(key, bytearray())
                if len(buf) < 16384:
                    buf += data[:16384 - len(buf)]
            if flags & 1:
                body = b"".join(struct.pack(">IBB", len(v[:PDV_CUT]) + 2, c, m) + bytes(v[:PDV_CUT])
                                for c, m, v in items)
                convs.setdefault(fid, []).append((d, struct.pack(">BBI", 4, 0, len(body)) + body))
                for c, m, _v in items:
                    if m & 2:  # last fragment of a message
                        buf = partial.pop((fid, d, c, m & 1), b"")
                        messages.append(("dimse" if m & 1 else "dataset", bytes(buf)))
                del open_pdata[(fid, d)]
    return convs, messages


def merged(sends):
    out = []
    for d, b in sends:
        if out and out[-1][0] == d:
            out[-1] = (d, out[-1][1] + b)
        else:
            out.append((d, b))
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    outdir = Path(argv[0]) if argv else HERE / "corpus"
    seeds: dict[str, set] = {t: set() for t in targets.TARGETS}
    for path, data in captures():
        seeds["capture"].add(b"\0\0" + data[:65536])
        seeds["capture"].add(b"\x04\x07" + data[:16384])
        convs, messages = conversations(events_of(data))
        for k, sends in enumerate(convs.values()):
            sends = merged(sends)
            for params in (b"\0\0\x00\x04", bytes([k, 1, 0x07, 2])):
                conv = targets.encode_conversation(params, sends)[:65536]
                seeds["stream"].add(conv)
                seeds["pipeline"].add(bytes([len(seeds["pipeline"]) % len(targets.COMMANDS)]) + conv)
        for kind, body in messages:
            if kind == "associate":
                seeds["associate"].add(body)
                seeds["associate"].add(bytes([body[0] | 8]) + body[1:len(body) // 2])
            elif kind == "dimse":
                seeds["dimse"].add(body)
            else:
                seeds["tagwalk"].add(b"\x11\x04\x02" + body)  # explicit VR LE, depth 64
                seeds["tagwalk"].add(b"\x04\x04\x02" + body)  # implicit VR LE with the SQ tags
                seeds["tagwalk"].add(b"\x31\x04\x02" + body)  # deflated explicit VR LE
    total = 0
    for target, items in seeds.items():
        d = outdir / target
        d.mkdir(parents=True, exist_ok=True)
        for s in sorted(items):
            (d / hashlib.sha1(s).hexdigest()).write_bytes(s)
        total += len(items)
        print(f"{target}: {len(items)} seeds -> {d}")
    print(f"{total} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
