"""The decoder's short path for the commonest P-DATA-TF PDU (one whole middle
fragment of a data set, its bytes not handed out) against its general path:
the same summary, the same association and object state, on real captures
and on what a tap does to them."""

import pytest

from fastdicom import capture, summary
from fastdicom.decoder import Decoder
from mutations import mutate
from test_core_differential import DATA

REAL = ["store_dcmtk", "multi_pdv", "concurrent", "big_store", "store_syntaxes", "query_retrieve",
        "reject_abort", "ipv6_oddport"]


def decoded(path, fast: bool, data_limit: int):
    sink = summary.SummarySink()
    dec = Decoder([sink], hash_data=True)
    dec._fast_pdata = fast
    infos = capture.run([str(path)], dec, capture.EngineOptions(data_limit=data_limit), read_ahead=False)
    doc = summary.build(dec, infos, sink)
    state = [(a.id, a.state, list(a.history), dict(a.ctx_pdvs), list(a.bytes), list(a.pdus))
             for a in dec.associations]
    objects = [(t.index, t.length, t.frame_last, t.time_last, t.hasher is None, t.complete,
                list(t.missing), list(t.incomplete_reasons), t.sop_instance_uid) for t in dec.objects]
    return doc, state, objects, (dec.pdu_count, dec.first_time, dec.last_time)


@pytest.mark.parametrize("data_limit", [0, 100, 65536])
@pytest.mark.parametrize("mode", [None, "drop", "reorder", "midstream"])
@pytest.mark.parametrize("name", REAL)
def test_short_path_gives_the_general_paths_result(tmp_path, name, mode, data_limit):
    path = DATA / "real" / f"{name}.pcap"
    if mode is not None:
        path = tmp_path / "m.pcap"
        path.write_bytes(mutate((DATA / "real" / f"{name}.pcap").read_bytes(), mode, seed=2, rate=0.05))
    fast = decoded(path, True, data_limit)
    assert fast == decoded(path, False, data_limit)


def test_the_short_path_is_taken():
    """On a store of multi-PDU data sets most PDUs take it (else the
    comparison above would prove nothing)."""
    path = DATA / "real" / "big_store.pcap"
    dec = Decoder([summary.SummarySink()], hash_data=False)
    calls = []
    general = dec._tick

    def tick(t):  # only the general path calls _tick
        calls.append(t)
        general(t)
    dec._tick = tick
    capture.run([str(path)], dec, capture.EngineOptions(data_limit=0), read_ahead=False)
    assert dec.pdu_count > 100
    assert len(calls) < dec.pdu_count / 4
