"""DICOM detection: --ports and the heuristic, with no false positives on
HTTP, TLS or random data (both core twins)."""

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapgen as G
from fastdicom import events as E
from fastdicom.capture import parse_ports


def flows(core_impl, data: bytes, ports=(104, 11112), heuristic=True):
    e = core_impl.Engine(ports=ports, heuristic=heuristic)
    e.feed(data)
    e.finish()
    evs = e.pop_events()
    return [ev for ev in evs if ev[0] == E.EV_FLOW], evs


def conversation(c2s, s2c, port=8080, handshake=True, segment=None):
    c = G.Conversation(server=("10.0.0.2", port), handshake=handshake)
    for a, b in zip(c2s, s2c):
        c.send(0, a, segment=segment)
        if b:
            c.send(1, b, segment=segment)
    return G.pcap(c.close())


HTTP = (b"GET /wado?studyUID=1.2.3 HTTP/1.1\r\nHost: pacs\r\nAccept: */*\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom\r\nContent-Length: 8\r\n\r\n\x01\x00\x00\x00\x00\x04\x00\x00")


def test_http_is_not_dicom(core_impl):
    for handshake in (True, False):
        f, _ = flows(core_impl, conversation([HTTP[0]] * 3, [HTTP[1]] * 3, handshake=handshake))
        assert f == []


def test_tls_is_not_dicom(core_impl):
    rnd = random.Random(1)
    hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + rnd.randbytes(500)
    app = [bytes([0x17, 0x03, 0x03, 0x40, 0x00]) + rnd.randbytes(0x4000) for _ in range(4)]
    for port in (2762, 443):
        for handshake in (True, False):
            f, _ = flows(core_impl, conversation([hello] + app, [hello] + app, port=port, handshake=handshake))
            assert f == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.booleans(), st.integers(1, 40))
def test_random_data_is_not_dicom(seed, handshake, n):
    from fastdicom import _core, _pycore
    rnd = random.Random(seed)
    c2s = [rnd.randbytes(rnd.randint(1, 3000)) for _ in range(n)]
    s2c = [rnd.randbytes(rnd.randint(0, 3000)) for _ in range(n)]
    data = conversation(c2s, s2c, port=rnd.choice([80, 8080, 4242, 50000]), handshake=handshake)
    for impl in (_core, _pycore):
        f, _ = flows(impl, data)
        assert f == []


def _assoc_bytes():
    rq = G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))])
    ac = G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT)])
    store = G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3.4"))) + G.p_data((1, 2, G.ct_dataset("1.2.3.4")))
    rsp = G.p_data((1, 3, G.c_store_rsp(1, G.CT_STORAGE, "1.2.3.4")))
    return rq, ac, store, rsp


def test_heuristic_finds_an_associate_rq_sharing_a_segment(core_impl):
    rq, ac, store, rsp = _assoc_bytes()
    # the RQ and the following P-DATA in one segment (Wireshark's heuristic rejects this, B10)
    data = conversation([rq + store, G.release_rq()], [ac, G.release_rp()], port=4242, segment=60000)
    f, evs = flows(core_impl, data)
    assert len(f) == 1 and f[0][7] == 4242
    assert [ev[3] for ev in evs if ev[0] == E.EV_PDU] == [1, 2, 5, 6]
    f, _ = flows(core_impl, data, heuristic=False)
    assert f == []  # --no-heuristic: port 4242 is not decoded
    f, _ = flows(core_impl, data, ports=(4242,), heuristic=False)
    assert len(f) == 1


def test_heuristic_finds_a_capture_that_starts_mid_association(core_impl):
    rq, ac, store, rsp = _assoc_bytes()
    c = G.Conversation(server=("10.0.0.2", 50123), handshake=False)
    c.send(0, store[40:])  # joined inside a P-DATA
    for _ in range(3):
        c.send(0, store)
        c.send(1, rsp)
    c.send(0, G.release_rq())
    c.send(1, G.release_rp())
    f, evs = flows(core_impl, G.pcap(c.close()))
    assert len(f) == 1
    assert any(ev[0] == E.EV_EXPERT and ev[3] == E.X_MIDSTREAM for ev in evs)
    assert sum(1 for ev in evs if ev[0] == E.EV_PDU and ev[3] in (5, 6)) == 2


def test_a_port_flow_that_is_not_dicom_reports_nothing(core_impl):
    f, evs = flows(core_impl, conversation([HTTP[0]] * 2, [HTTP[1]] * 2, port=104))
    assert f == [] and not [ev for ev in evs if ev[0] in (E.EV_PDU, E.EV_PDATA)]


def test_parse_ports():
    assert parse_ports("104, 11112 2761-2762") == (104, 2761, 2762, 11112)
    assert parse_ports("50000-50002") == (50000, 50001, 50002)
    for bad in ("", "0", "70000", "5-3", "abc"):
        with pytest.raises(ValueError):
            parse_ports(bad)
