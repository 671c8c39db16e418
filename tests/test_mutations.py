"""A tap's distortions (reordered, duplicated, overlapping, lost segments; other
link layers and file formats) must not change the reassembled streams."""

import gzip

import pytest

from fastdicom import core
from fastdicom import events as E
from helpers import REAL, ports_of
from mutations import mutate

CAPTURES = ["store_syntaxes", "multi_pdv", "concurrent", "query_retrieve", "reject_abort",
            "ipv6_oddport", "nservices", "big_store"]
LOSSLESS = ["reorder", "dup", "overlap", "vlan", "qinq", "sll", "sll2", "rawip", "null",
            "nanosec", "bigendian", "pcapng", "gzip"]


def streams(data: bytes, ports):
    """{(client, server, dir): {stream offset: (type, length, content, truncated)}} and gaps."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    eng = core.Engine(ports=ports, data_limit=-1)
    step = 1 << 16
    for i in range(0, len(data), step):
        eng.feed(data[i:i + step])
    eng.finish()
    flows = {}
    out = {}
    gaps = {}
    open_pdata = {}
    for ev in eng.pop_events():
        k = ev[0]
        if k == E.EV_FLOW:
            flows[ev[1]] = (ev[4], ev[5], ev[6], ev[7])
        elif k == E.EV_PDU:
            key = flows[ev[1]] + (ev[2],)
            out.setdefault(key, {})[ev[5]] = (ev[3], ev[4], ev[10], bool(ev[11] & E.PF_TRUNCATED))
        elif k == E.EV_PDATA:
            key = flows[ev[1]] + (ev[2],)
            acc = open_pdata.setdefault(key, [])
            acc.extend((p[0], p[1], p[2], p[3], p[5]) for p in ev[10])
            if ev[11] & E.PF_FINAL:
                out.setdefault(key, {})[ev[5]] = (4, ev[4], tuple(acc), bool(ev[11] & E.PF_TRUNCATED))
                del open_pdata[key]
        elif k == E.EV_GAP:
            key = flows[ev[1]] + (ev[2],)
            gaps.setdefault(key, []).append((ev[3], ev[4]))
    return out, gaps


@pytest.fixture(scope="module", params=CAPTURES)
def clean(request):
    path = REAL / f"{request.param}.pcap"
    data = path.read_bytes()
    ports = ports_of(path)
    s, gaps = streams(data, ports)
    assert not gaps
    assert s
    return data, ports, s


@pytest.mark.parametrize("mode", LOSSLESS)
def test_lossless_modes_give_identical_streams(clean, mode):
    data, ports, want = clean
    got, gaps = streams(mutate(data, mode, seed=11), ports)
    assert not gaps
    assert got == want


def test_drop_keeps_everything_outside_the_gaps(clean):
    data, ports, want = clean
    got, gaps = streams(mutate(data, "drop", seed=5, rate=0.05), ports)
    assert gaps, "lost segments must be reported as gaps"
    same = 0
    for key, pdus in got.items():
        holes = gaps.get(key, [])
        for off, (t, length, content, truncated) in pdus.items():
            end = off + 6 + length
            hit = any(g_off < end and (g_size < 0 or g_off + g_size > off) for g_off, g_size in holes)
            if not hit:  # untouched by a gap: exactly what the clean capture gives
                assert want[key][off] == (t, length, content, truncated)
                same += 1
            else:
                assert truncated or t == 4  # a P-DATA stepped over a hole in a PDV value
    assert same > 0


def test_midstream_resynchronises(clean):
    data, ports, want = clean
    got, gaps = streams(mutate(data, "midstream", rate=0.3), ports)
    assert got, "a capture that starts mid-association is still decoded"
    for key, pdus in got.items():
        # from the first PDU boundary on, exactly the tail of the clean stream
        seen = list(pdus.values())
        ref = list(want[key].values())
        assert seen == ref[len(ref) - len(seen):], key


def test_snaplen_cut_records_become_gaps(clean):
    data, ports, want = clean
    got, gaps = streams(mutate(data, "snaplen"), ports)
    assert gaps
    for key, pdus in got.items():
        for off, v in pdus.items():
            if not v[3] and v[0] != 4:
                assert want[key][off] == v
