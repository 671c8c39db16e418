"""pcapng corner cases: several sections of either byte order, the obsolete
Packet Block, interfaces with other link types and time resolutions."""

import struct

from helpers import REAL, ports_of
from mutations import read
from test_mutations import streams


def _block(e, btype, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack(e + "II", btype, len(body) + 12) + body + struct.pack(e + "I", len(body) + 12)


def _opt(e, code, val):
    return struct.pack(e + "HH", code, len(val)) + val + b"\0" * (-len(val) % 4)


def _section(e, pkts, *, obsolete, tsresol):
    out = [_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)),
           _block(e, 1, struct.pack(e + "HHI", 113, 0, 0) + _opt(e, 0, b"")),  # an unused SLL interface
           _block(e, 1, struct.pack(e + "HHI", 1, 0, 0) + _opt(e, 9, bytes([tsresol])) + _opt(e, 0, b""))]
    units = (1 << (tsresol & 0x7F)) if tsresol & 0x80 else 10 ** tsresol
    for ts, buf in pkts:
        t = int(round(ts * units))
        if obsolete:  # Packet Block (type 2): interface(2) drops(2) ts_high ts_low caplen len
            body = struct.pack(e + "HHIIII", 1, 0, t >> 32, t & 0xFFFFFFFF, len(buf), len(buf)) + buf
            out.append(_block(e, 2, body))
        else:
            body = struct.pack(e + "IIIII", 1, t >> 32, t & 0xFFFFFFFF, len(buf), len(buf)) + buf
            out.append(_block(e, 6, body))
        out.append(_block(e, 5, struct.pack(e + "III", 1, 0, 0)))  # an Interface Statistics Block
    return b"".join(out)


def test_sections_of_both_byte_orders_and_the_obsolete_packet_block():
    path = REAL / "store_syntaxes.pcap"
    data = path.read_bytes()
    _, pkts = read(data)
    half = len(pkts) // 2
    ng = (_section("<", pkts[:half], obsolete=False, tsresol=9)
          + _section(">", pkts[half:], obsolete=True, tsresol=0x94))
    want, gaps = streams(data, ports_of(path))
    got, gaps2 = streams(ng, ports_of(path))
    assert not gaps2 and got == want


def test_capture_files_are_read_in_released_pieces_of_one_buffer(tmp_path, monkeypatch):
    """A capture file is read in pieces into one reused buffer: the pieces
    join to the file, each is released once the consumer is done with it
    (a consumer that kept one gets an error, never bytes of a later piece),
    and a small read size does not change the analysis."""
    import pytest

    from fastdicom import capture
    src = REAL / "multi_pdv.pcap"
    monkeypatch.setattr(capture, "READ_CHUNK", 4096)
    info = capture.CaptureInfo(str(src))
    got, kept = bytearray(), []
    for part in capture._chunks(str(src), info):
        got += part
        kept.append(part)
    assert bytes(got) == src.read_bytes() and info.read_bytes == len(got) == info.size
    assert len(kept) > 1
    with pytest.raises(ValueError):
        bytes(kept[0])
    opts = capture.EngineOptions(ports=ports_of(src))
    small = _summary(capture, [str(src)], opts)
    monkeypatch.setattr(capture, "READ_CHUNK", 1 << 20)
    assert _summary(capture, [str(src)], opts) == small


def _summary(capture, names, opts):
    from fastdicom import summary
    from fastdicom.decoder import Decoder
    sink = summary.SummarySink()
    dec = Decoder([sink])
    infos = capture.run(names, dec, opts)
    doc = summary.build(dec, infos, sink)
    doc.pop("captures", None)  # reading time and the like
    return doc
