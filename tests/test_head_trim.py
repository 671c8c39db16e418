"""Data set heads cut before their Pixel Data value (``Engine(trim_heads=True)``,
the summary's engine option): the summary is the same with and without the
cut, on real captures, on what a tap does to them and on built associations;
every walk of a cut head gives what the whole head gives; the core reads the
transfer syntax of a context only where the decoder reads the same one; and
both twins cut in the same places."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapgen as G
from fastdicom import _pycore, _pytagwalk, capture, pdu, summary
from fastdicom.dataset import check_limits, leading_values, walk_syntax
from fastdicom.decoder import Decoder
from fastdicom.events import EV_PDATA, EV_PDU
from mutations import mutated_file
from test_core_differential import DATA, load, outcome

_core = pytest.importorskip("fastdicom._core")

REAL = ["store_dcmtk", "multi_pdv", "concurrent", "big_store", "store_syntaxes", "query_retrieve",
        "reject_abort", "ipv6_oddport", "nservices"]
TWINS = [_pycore, _core]
SYNTAX_UIDS = {0: G.IMPLICIT, 1: G.EXPLICIT, 2: "1.2.840.10008.1.2.2"}


def summarised(path, trim: bool, data_limit: int, max_depth=None, runs=True):
    sink = summary.SummarySink()
    dec = Decoder([sink], hash_data=False)
    if max_depth is not None:
        dec.set_limits(max_depth=max_depth)
    opts = capture.EngineOptions(data_limit=data_limit, pdata_runs=runs, trim_heads=trim)
    infos = capture.run([str(path)], dec, opts, read_ahead=False)
    doc = summary.build(dec, infos, sink)
    doc.pop("captures", None)  # (timings)
    heads = [(t.index, t.length, t.sop_instance_uid) for t in dec.objects]
    return doc, heads


def head_bytes(path, trim: bool, data_limit: int) -> int:
    events, _ = outcome(_core, load(path), data_limit=data_limit, trim_heads=trim)
    return sum(len(p[5]) for ev in events if ev[0] == EV_PDATA for p in ev[10] if not p[1] & 1)


# ------------------------------------------------------------ the summary
@pytest.mark.parametrize("data_limit", [65536, 3000, 300])
@pytest.mark.parametrize("mode", [None, "drop", "reorder", "overlap", "dup", "midstream"])
@pytest.mark.parametrize("name", REAL)
def test_summary_is_the_same_with_heads_cut(tmp_path, name, mode, data_limit):
    path = mutated_file(DATA / "real" / f"{name}.pcap", mode, tmp_path, seed=5, rate=0.06)
    assert summarised(path, True, data_limit) == summarised(path, False, data_limit)


@pytest.mark.parametrize("max_depth", [0, 1])
@pytest.mark.parametrize("name", ["store_syntaxes", "big_store", "store_dcmtk"])
def test_depth_reports_are_the_same_with_heads_cut(name, max_depth):
    path = DATA / "real" / f"{name}.pcap"
    assert summarised(path, True, 65536, max_depth) == summarised(path, False, 65536, max_depth)


@pytest.mark.parametrize("name, data_limit", [("big_store", 65536), ("store_dcmtk", 3000), ("concurrent", 3000),
                                              ("multi_pdv", 3000), ("store_syntaxes", 3000)])
def test_heads_are_cut_on_real_captures(name, data_limit):
    """(Else the tests above would prove little.)  Only data sets longer than
    the limit can be cut: the objects of big_store at 64 KiB, those of the
    others at 3000 bytes."""
    path = DATA / "real" / f"{name}.pcap"
    whole, cut = head_bytes(path, False, data_limit), head_bytes(path, True, data_limit)
    assert cut < whole * (0.05 if name == "big_store" else 0.95)


def first_pieces(path, data_limit):
    """{transfer syntax: [was the first piece of each data set cut?]}"""
    events, _ = outcome(_core, load(path), data_limit=data_limit, trim_heads=True)
    syntax_of = {}
    cut = {}
    for ev in events:
        if ev[0] == EV_PDU and ev[3] == 2:
            for pc in pdu.decode_associate(ev[10], False).contexts_ac:
                syntax_of[(ev[1], pc.id)] = pc.transfer_syntax
        elif ev[0] == EV_PDATA:
            for ctx, mch, pdv_len, off, length, data in ev[10]:
                if not mch & 1 and off == 0 and data:
                    ts = syntax_of[(ev[1], ctx)]
                    cut.setdefault(ts, []).append(len(data) < min(length, data_limit))
    return cut


def test_each_syntax_is_cut_and_deflate_is_not():
    cut = first_pieces(DATA / "real" / "store_syntaxes.pcap", 3000)
    assert any(cut[G.IMPLICIT]) and any(cut["1.2.840.10008.1.2.2"])
    deflated = [ts for ts in cut if walk_syntax(ts)[1]]
    assert deflated and not any(any(cut[ts]) for ts in deflated)
    cut = first_pieces(DATA / "real" / "big_store.pcap", 65536)
    assert len(cut[G.EXPLICIT]) > 1 and all(cut[G.EXPLICIT])


# ----------------------------------------- built associations: when to cut
def ct(uid, pixels=80000):
    return G.ct_dataset(uid, pixels=pixels)


def conversation(*steps, port=104):
    """An association from (direction, PDU bytes) steps, data set PDUs in 16 KiB PDVs."""
    c = G.Conversation(server=("10.0.0.2", port))
    for d, b in steps:
        c.send(d, b)
    return c.close()


def store(uid, ctx=1, mid=1, ts_explicit=True):
    data = ct(uid)
    out = [(0, G.p_data((ctx, 3, G.c_store_rq(mid, G.CT_STORAGE, uid))))]
    for k in range(0, len(data), 16000):
        last = k + 16000 >= len(data)
        out.append((0, G.p_data((ctx, 2 if last else 0, data[k:k + 16000]))))
    out.append((1, G.p_data((ctx, 3, G.c_store_rsp(mid, G.CT_STORAGE, uid)))))
    return out


RQ = (0, G.assoc_rq(contexts=[(1, G.CT_STORAGE, (G.EXPLICIT,)), (3, G.CT_STORAGE, (G.IMPLICIT,))]))
AC = (1, G.assoc_ac(results=[(1, 0, G.EXPLICIT), (3, 0, G.IMPLICIT)]))


def cut_pieces(data: bytes, twin=_core) -> list:
    """Per data set: was its first PDV cut?"""
    events, _ = outcome(twin, data, data_limit=65536, trim_heads=True)
    out = []
    first = False
    for ev in events:
        if ev[0] == EV_PDATA:
            for ctx, mch, pdv_len, off, length, data in ev[10]:
                if mch & 1:
                    first = True
                elif first:
                    out.append(len(data) < length)
                    first = False
    return out


@pytest.mark.parametrize("twin", TWINS, ids=lambda m: m.IMPLEMENTATION)
def test_when_heads_are_cut(tmp_path, twin):
    plain = G.pcap(conversation(RQ, AC, *store("1.2.3.1")))
    assert cut_pieces(plain, twin) == [True]
    # explicit data set on a context the AC accepted as implicit: walked as
    # implicit, as the decoder does, so not cut (its first element's VR
    # reads as a huge length)
    wrong = G.pcap(conversation(RQ, AC, *store("1.2.3.1", ctx=3)))
    assert cut_pieces(wrong, twin) == [False]
    # no AC seen: no syntax known
    assert cut_pieces(G.pcap(conversation(RQ, *store("1.2.3.1"))), twin) == [False]
    # a second AC, or an RQ after the AC: the decoder may read another syntax
    assert cut_pieces(G.pcap(conversation(RQ, AC, AC, *store("1.2.3.1"))), twin) == [False]
    assert cut_pieces(G.pcap(conversation(RQ, AC, *store("1.2.3.1"), RQ, *store("1.2.3.2"))),
                      twin) == [True, False]
    # a context not accepted, one answered twice, one with two transfer syntaxes
    for results in ([(1, 3, G.EXPLICIT)], [(1, 0, G.EXPLICIT), (1, 0, G.EXPLICIT)]):
        ac = (1, G.assoc_ac(results=results))
        assert cut_pieces(G.pcap(conversation(RQ, ac, *store("1.2.3.1"))), twin) == [False]
    two = G._item(0x21, bytes([1, 0, 0, 0]) + G._item(0x40, G.EXPLICIT.encode()) * 2)
    body = G.assoc_ac(results=[])[6:]
    ac = (1, G.pdu(2, body[:68] + two + body[68:]))
    assert cut_pieces(G.pcap(conversation(RQ, ac, *store("1.2.3.1"))), twin) == [False]
    # a release between: the heads already cut are let go (decoder data sets may end)
    assert cut_pieces(G.pcap(conversation(RQ, AC, *store("1.2.3.1"), *store("1.2.3.3", mid=2))),
                      twin) == [True, True]


@pytest.mark.parametrize("twin", TWINS, ids=lambda m: m.IMPLEMENTATION)
def test_later_pdvs_of_a_cut_head_hand_nothing_out(twin):
    events, _ = outcome(twin, G.pcap(conversation(RQ, AC, *store("1.2.3.1"))), data_limit=65536,
                        trim_heads=True)
    data = [len(p[5]) for ev in events if ev[0] == EV_PDATA for p in ev[10] if not p[1] & 1]
    assert len(data) == 6 and 0 < data[0] < 300 and data[1:] == [0] * 5
    whole, _ = outcome(twin, G.pcap(conversation(RQ, AC, *store("1.2.3.1"))), data_limit=65536)
    assert [len(p[5]) for ev in whole if ev[0] == EV_PDATA for p in ev[10] if not p[1] & 1] == [
        16000] * 4 + [65536 - 64000, 0]


# ------------------------------------------------ the walks of a cut head
VRS_SHORT = ["AE", "CS", "DA", "LO", "PN", "SH", "UI", "US", "UL", "FD", "IS", "DS", "AT"]
VRS_LONG = ["OB", "OW", "UN", "UT", "OF", "UC"]
LEADING = (0x00080016, 0x00080018, 0x00080020, 0x00080050, 0x00080060, 0x00100010, 0x00100020,
           0x0020000D, 0x0020000E)


def element(tag, vr, value, syntax):
    big = syntax == 2
    o = ">" if big else "<"
    g, e = tag >> 16, tag & 0xFFFF
    if syntax == 0:
        return struct.pack("<HHI", g, e, len(value)) + value
    if vr in VRS_SHORT:
        return struct.pack(o + "HH2sH", g, e, vr.encode(), len(value)) + value
    return struct.pack(o + "HH2sHI", g, e, vr.encode(), 0, len(value)) + value


@st.composite
def data_sets(draw):
    """Data sets in any of the three syntaxes: short and long elements,
    sequences of defined and undefined length (explicit SQ, implicit private
    ones), then Pixel Data, and random bytes after it."""
    syntax = draw(st.sampled_from([0, 1, 2]))
    tags = sorted(draw(st.sets(st.one_of(st.sampled_from(LEADING),
                                         st.integers(0x00080000, 0x7FDFFFFF)), max_size=12)))
    out = b""
    for tag in tags:
        kind = draw(st.sampled_from(["short", "long", "sq", "sq_undefined"]))
        value = draw(st.binary(max_size=40))
        if len(value) % 2:
            value += b" "
        if kind == "short":
            out += element(tag, draw(st.sampled_from(VRS_SHORT)), value, syntax)
        elif kind == "long":
            out += element(tag, draw(st.sampled_from(VRS_LONG)), value, syntax)
        else:
            item = element(0x00100010, "PN", value, syntax)
            depth = draw(st.integers(0, 2))
            for _ in range(depth):
                item = element(0x00081140, "SQ", struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item, syntax)
            big = syntax == 2
            items = struct.pack(">HHI" if big else "<HHI", 0xFFFE, 0xE000, len(item)) + item
            if syntax == 0:
                tag |= 0x00010000  # a private group: an implicit sequence the walker sees
                tag = (tag & 0xFFFF0000) | 0x1000
            if kind == "sq_undefined":
                delim = struct.pack(">HHI" if big else "<HHI", 0xFFFE, 0xE0DD, 0)
                g, e = tag >> 16, tag & 0xFFFF
                if syntax == 0:
                    out += struct.pack("<HHI", g, e, 0xFFFFFFFF) + items + delim
                else:
                    out += struct.pack(">HH2sHI" if big else "<HH2sHI", g, e, b"SQ", 0, 0xFFFFFFFF) + items + delim
            else:
                out += element(tag, "SQ", items, syntax)
    # Pixel Data: its header with any length (undefined: encapsulated), value
    # bytes that may be cut, maybe an element after it
    pixels = draw(st.one_of(st.integers(0, 300), st.integers(0, 70000), st.just(0xFFFFFFFF)))
    out += element(0x7FE00010, draw(st.sampled_from(["OW", "OB", "SQ", "UN"])), b"", syntax)[:-4]
    out += struct.pack(">I" if syntax == 2 else "<I", pixels)
    fmt = ">HHI" if syntax == 2 else "<HHI"
    if pixels == 0xFFFFFFFF:
        out += struct.pack(fmt, 0xFFFE, 0xE000, 0) + struct.pack(fmt, 0xFFFE, 0xE000, 8) + bytes(8)
        out += struct.pack(fmt, 0xFFFE, 0xE0DD, 0)
    else:
        out += bytes(range(256)) * (min(pixels, 600) // 256) + bytes(min(pixels, 600) % 256)
    if draw(st.booleans()):
        out += element(0xFFFCFFFC, "OB", draw(st.binary(max_size=20)) * 2, syntax)
    out += draw(st.binary(max_size=64))
    return syntax, out


def walk(mod, buf, syntax, keep, max_depth=64, sq_tags=frozenset()):
    return mod.walk_dataset(buf, syntax, sq_tags, max_depth, 1_000_000, 0xFFFFFFFF, keep)


def same_but_the_cut_value(a, b, at):
    """Walk outcomes equal but for the value length of the element at ``at``
    (the one the cut shortens)."""
    (ea, sa, oa), (eb, sb, ob) = a, b
    strip = [tuple(e[:7]) if e[5] == at else e for e in ea]
    return (sa, oa) == (sb, ob) and strip == [tuple(e[:7]) if e[5] == at else e for e in eb]


def built(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@built(500)
@given(data_sets(), st.integers(16, 2000), st.one_of(st.integers(1, 2000), st.just(1 << 20)),
       st.sampled_from([0, 1, 2, 64]))
def test_every_walk_of_a_cut_head_is_the_same(ds, limit, first_pdv, max_depth):
    """The head is the first ``limit`` bytes; the cut is made from those of
    the first PDV."""
    syntax, data = ds
    head = data[:limit]
    first = data[:min(first_pdv, limit)]
    cut = _pycore.data_set_head_cut(first, syntax, limit)
    assert cut == _core.data_set_head_cut(first, syntax, limit)
    if cut < 0:
        return
    assert 0 < cut <= len(head)
    ts = SYNTAX_UIDS[syntax]
    for mod in (_pytagwalk, _core):
        for keep in (None, frozenset(), frozenset(LEADING)):
            for sq_tags in (frozenset(), frozenset({0x00081140})):
                whole = walk(mod, head, syntax, keep, max_depth, sq_tags)
                part = walk(mod, head[:cut], syntax, keep, max_depth, sq_tags)
                # (where the walks stop: the Pixel Data header, unless before)
                assert same_but_the_cut_value(whole, part, whole[2]), (keep, sq_tags)
    assert check_limits(head, ts, max_depth) == check_limits(head[:cut], ts, max_depth)
    assert leading_values(head, ts, LEADING) == leading_values(head[:cut], ts, LEADING)


@built(300)
@given(st.binary(max_size=300), st.sampled_from([0, 1, 2]), st.integers(0, 400))
def test_twins_cut_random_bytes_alike(data, syntax, limit):
    assert _pycore.data_set_head_cut(data, syntax, limit) == _core.data_set_head_cut(data, syntax, limit)


# ------------------------------------- the AC: the decoder's syntax or none
def decoder_syntaxes(body) -> dict:
    """{context ID: transfer syntax} as the decoder reads an AC (the last item wins)."""
    out = {}
    for pc in pdu.decode_associate(body, False).contexts_ac:
        if pc is not None:
            out[pc.id] = pc.transfer_syntax if pc.result == 0 else None
    return out


def check_ac(body):
    got = _core.ac_transfer_syntaxes(body)
    assert got == _pycore.ac_transfer_syntaxes(body)
    if got is None:
        return None
    want = decoder_syntaxes(body)
    for cid, code in got.items():
        assert walk_syntax(want[cid]) == (code - 1, False), (cid, want[cid])
    return got


@st.composite
def ac_bodies(draw):
    body = G.assoc_ac(results=[])[6:]
    items = []
    for _ in range(draw(st.integers(0, 6))):
        cid = draw(st.sampled_from([1, 3, 5, 2]))
        subs = b""
        for _ in range(draw(st.integers(0, 3))):
            t = draw(st.sampled_from([0x40, 0x40, 0x40, 0x30, 0x41]))
            uid = draw(st.sampled_from([G.IMPLICIT, G.EXPLICIT, "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
                                        "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1\0", "1.2.840.10008.1.2 ",
                                        "1.2.840.10008.1.20", "", "1.2.840.10008.1.2\0\0"]))
            subs += G._item(t, uid.encode())
        items.append(G._item(0x21, bytes([cid, 0, draw(st.sampled_from([0, 0, 1, 3])), 0]) + subs))
    b = body[:68] + b"".join(items) + body[68:]
    if draw(st.booleans()):  # damage: a length, a cut
        b = bytearray(b)
        k = draw(st.integers(0, len(b) - 1))
        b[k] = draw(st.integers(0, 255))
        b = bytes(b[:draw(st.integers(0, len(b)))]) if draw(st.booleans()) else bytes(b)
    return b


@built(600)
@given(ac_bodies())
def test_ac_syntaxes_are_the_decoders(body):
    check_ac(body)


def test_ac_syntaxes_of_real_captures():
    seen = 0
    for name in REAL:
        events, _ = outcome(_core, load(DATA / "real" / f"{name}.pcap"))
        for ev in events:
            if ev[0] == EV_PDU and ev[3] == 2:
                got = check_ac(ev[10])
                seen += bool(got)
    assert seen >= 10


def test_ac_syntaxes_bounds():
    body = G.assoc_ac(results=[])[6:]
    many = b"".join(G._item(0x21, bytes([1 + 2 * (k % 128), 0, 0, 0]) + G._item(0x40, G.EXPLICIT.encode()))
                    for k in range(257))
    assert check_ac(body[:68] + many + body[68:]) is None  # past pdu.MAX_CONTEXTS
    assert check_ac(body[:67]) is None
    assert check_ac(body[:68] + G._item(0x21, b"\x01\x00")) is None  # an item of 2 bytes
    one = G._item(0x21, bytes([1, 0, 0, 0]) + G._item(0x40, b"1.2.840.10008.1.2.2\0"))
    assert check_ac(body[:68] + one + body[68:]) == {1: 3}
