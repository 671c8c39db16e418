"""The decoder's short path for the commonest P-DATA-TF PDU (one whole middle
fragment of a data set, its bytes not handed out) against its general path:
the same summary, the same association and object state, on real captures
and on what a tap does to them."""

import pytest

from fastdicom import capture, summary
from fastdicom.decoder import Decoder
from mutations import mutated_file
from test_core_differential import DATA

REAL = ["store_dcmtk", "multi_pdv", "concurrent", "big_store", "store_syntaxes", "query_retrieve",
        "reject_abort", "ipv6_oddport"]


def decoded(path, fast: bool, data_limit: int, runs: bool = False):
    sink = summary.SummarySink()
    dec = Decoder([sink], hash_data=True)
    dec._fast_pdata = fast
    infos = capture.run([str(path)], dec, capture.EngineOptions(data_limit=data_limit, pdata_runs=runs),
                        read_ahead=False)
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
    path = mutated_file(DATA / "real" / f"{name}.pcap", mode, tmp_path, seed=2, rate=0.05)
    fast = decoded(path, True, data_limit)
    assert fast == decoded(path, False, data_limit)
    # the engine's runs of plain PDUs (EV_PDATA_RUN), by the short path or made
    # again into each PDU's EV_PDATA for the general one
    assert decoded(path, True, data_limit, runs=True) == fast
    assert decoded(path, False, data_limit, runs=True) == fast


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


def test_runs_take_the_short_path_at_once():
    """A run is decoded in one step: far fewer steps than PDUs."""
    path = DATA / "real" / "big_store.pcap"
    dec = Decoder([summary.SummarySink()], hash_data=False)
    steps = []
    one_run = dec._ev_pdata_run

    def run(ev):
        steps.append(ev[4])
        one_run(ev)
    dec._dispatch[8] = run
    calls = []
    general = dec._tick
    dec._tick = lambda t: (calls.append(t), general(t))
    capture.run([str(path)], dec, capture.EngineOptions(data_limit=0, pdata_runs=True), read_ahead=False)
    assert sum(steps) > 10 * len(steps) and sum(steps) > dec.pdu_count / 2
    assert len(calls) < dec.pdu_count / 4


@pytest.mark.parametrize("n", [1, 2, 5, 999, 1000, 1001, 1999, 2000, 2001, 2500, 4321])
@pytest.mark.parametrize("before", [0, 1, 998, 1500, 2000])
def test_transitions_are_transition_n_times(n, before):
    """Association.transitions(pdu, sender, n) leaves the state and the history
    (cut as it grows) that n calls of transition leave."""
    from fastdicom.association import Association
    from fastdicom.decoder import Flow

    def made():
        a = Association(0, Flow(1, "10.0.0.1:1", 1, "10.0.0.2:104", 104, 0, 1, -1, -1, -1), 0, 1)
        a.transition(1, 0)  # A-ASSOCIATE-RQ, A-ASSOCIATE-AC: established
        a.transition(2, 1)
        for _ in range(before):
            a.transition(4, 0)
        return a
    one, many = made(), made()
    for _ in range(n):
        want = one.transition(4, 1)
    assert many.transitions(4, 1, n) == want
    assert (many.state, many.history) == (one.state, one.history)
    # a step that changes the state first: the same
    one, many = made(), made()
    for _ in range(n):
        want = one.transition(5, 0)  # A-RELEASE-RQ, then what follows it
    assert many.transitions(5, 0, n) == want
    assert (many.state, many.history) == (one.state, one.history)
