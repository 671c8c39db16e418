"""The fuzz targets (fuzz/targets.py) in the test suite.

- every input under tests/data/fuzz/TARGET/ (crashes the fuzzer found, and a
  few seeds) replayed through its target: fixed bugs stay fixed;
- Hypothesis drives each target with structured random inputs: association
  PDU bodies (random, and real ones mutated), command sets, tag walks, capture
  files, and conversations of random and mutated PDUs inside a valid TCP
  connection, through both core twins and the decoder with its sinks, and
  through the CLI commands.

A target fails on any exception but fastdicom's own, on twins that disagree,
and on a CLI exit status other than 0, 1 or 2 (see fuzz/targets.py).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pcapgen as G

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))
import targets  # noqa: E402

FUZZ_DATA = Path(__file__).parent / "data" / "fuzz"
REGRESSIONS = sorted(p for p in FUZZ_DATA.rglob("*") if p.is_file() and p.parent.name in targets.TARGETS)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fuzz_regression(path):
    targets.TARGETS[path.parent.name](path.read_bytes())


def test_every_target_has_regression_inputs():
    have = {p.parent.name for p in REGRESSIONS}
    assert have == set(targets.TARGETS), set(targets.TARGETS) - have


# ------------------------------------------------------------ building blocks
RQ = G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT, G.IMPLICIT)), (3, G.VERIFICATION, (G.IMPLICIT,))],
                extra_user=G._item(0x54, struct.pack(">H", 25) + G.CT_STORAGE.encode() + b"\x01\x01")
                + G._item(0x58, b"\x02\x01\x00\x04user\x00\x04pass"))[6:]
AC = G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT), (3, 3, None)])[6:]
COMMAND = G.c_store_rq(7, G.CT_STORAGE, "1.2.3.4.5")


def mutated(base: bytes):
    """Random edits of ``base``: byte flips, cuts, insertions, length fields
    set to extremes."""
    edit = st.one_of(
        st.tuples(st.just("flip"), st.integers(0, max(len(base) - 1, 0)), st.integers(1, 255)),
        st.tuples(st.just("cut"), st.integers(0, len(base)), st.just(0)),
        st.tuples(st.just("insert"), st.integers(0, len(base)), st.integers(0, 255)),
        st.tuples(st.just("u16"), st.integers(0, max(len(base) - 2, 0)),
                  st.sampled_from((0, 1, 2, 3, 0x7FFF, 0xFFFF))),
        st.tuples(st.just("u32"), st.integers(0, max(len(base) - 4, 0)),
                  st.sampled_from((0, 1, 2, 0xFFFFFFFF, 0x7FFFFFFF))),
    )

    def apply(edits):
        b = bytearray(base)
        for kind, at, v in edits:
            at = min(at, len(b))
            if kind == "flip" and at < len(b):
                b[at] ^= v
            elif kind == "cut":
                del b[at:]
            elif kind == "insert":
                b[at:at] = bytes([v])
            elif kind == "u16" and at + 2 <= len(b):
                b[at:at + 2] = struct.pack(">H", v)
            elif kind == "u32" and at + 4 <= len(b):
                b[at:at + 4] = struct.pack(">I", v)
        return bytes(b)

    return st.lists(edit, min_size=1, max_size=6).map(apply)


# ------------------------------------------------------ association PDUs
@SETTINGS
@given(st.integers(0, 31), st.binary(max_size=600))
def test_associate_random(head, body):
    targets.associate(bytes([head]) + body)


@SETTINGS
@given(st.sampled_from([(0, RQ), (1, AC)]), st.booleans(), st.data())
def test_associate_mutated(kind_base, truncated, data):
    kind, base = kind_base
    body = data.draw(mutated(base))
    targets.associate(bytes([kind | (8 if truncated else 0)]) + body)


# --------------------------------------------------------- command sets
@SETTINGS
@given(st.binary(max_size=400))
def test_parse_command_random(buf):
    targets.dimse(buf)


@SETTINGS
@given(st.data())
def test_parse_command_mutated(data):
    targets.dimse(data.draw(mutated(COMMAND)))


# ------------------------------------------------------------ tag walker
@SETTINGS
@given(st.binary(min_size=3, max_size=800))
def test_tagwalk_random(buf):
    targets.tagwalk(buf)


@SETTINGS
@given(st.integers(0, 255), st.data())
def test_tagwalk_mutated(params, data):
    ds = G.ct_dataset("1.2.3", pixels=256)
    targets.tagwalk(bytes([params | 1, 4, 2]) + data.draw(mutated(ds)))


# ----------------------------------------------- captures and conversations
def _conversation(sends):
    return targets.encode_conversation(b"\0\0\0\x04", sends)


VALID = [
    (0, G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))])),
    (1, G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT)])),
    (0, G.p_data((1, 3, COMMAND))),
    (0, G.p_data((1, 0, G.ct_dataset("1.2.3.4.5", pixels=512)[:300]),
                 (1, 2, G.ct_dataset("1.2.3.4.5", pixels=512)[300:]))),
    (1, G.p_data((1, 3, G.c_store_rsp(7, G.CT_STORAGE, "1.2.3.4.5", status=0xA700)))),
    (0, G.release_rq()),
    (1, G.release_rp()),
]

random_pdu = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda t, body: G.pdu(t, body), st.integers(0, 9), st.binary(max_size=200)),
    st.builds(lambda pdvs: G.p_data(*pdvs),
              st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=120)),
                       max_size=4)),
)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 1), random_pdu), max_size=8), st.binary(min_size=4, max_size=4))
def test_decoder_random_pdus_in_a_valid_connection(extra, params):
    """Random PDUs spliced into a valid association, on a connection segmented,
    reordered and damaged as the parameters say: both twins agree, the decoder
    and its sinks never raise."""
    sends = list(VALID[:3]) + extra + list(VALID[3:])
    targets.stream(targets.encode_conversation(params, sends))


@SETTINGS
@given(st.integers(0, len(VALID) - 1), st.binary(min_size=4, max_size=4), st.data())
def test_decoder_mutated_pdu(k, params, data):
    sends = list(VALID)
    sends[k] = (sends[k][0], data.draw(mutated(sends[k][1])))
    targets.stream(targets.encode_conversation(params, sends))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, len(targets.COMMANDS) - 1), st.integers(0, len(VALID) - 1), st.data())
def test_cli_commands_on_mutated_conversations(cmd, k, data):
    sends = list(VALID)
    sends[k] = (sends[k][0], data.draw(mutated(sends[k][1])))
    targets.pipeline(bytes([cmd]) + _conversation(sends))


CLEAN_PCAP = G.pcap(G.store_conversation(["1.2.3.4"], client_ae="CT01", server_ae="PACS"))


def _pcapng():
    from mutations import read, to_pcapng
    return to_pcapng(read(CLEAN_PCAP)[1])


@SETTINGS
@given(st.integers(0, 255), st.integers(0, 255), st.sampled_from(["pcap", "pcapng"]), st.data())
def test_capture_mutated(opts, seed, fmt, data):
    """The pcap and pcapng readers (records, blocks, interfaces, resynchronisation)
    and everything under them, on mutated captures, in both twins."""
    cap = CLEAN_PCAP if fmt == "pcap" else _pcapng()
    targets.capture(bytes([opts, seed]) + data.draw(mutated(cap)))


# ------------------------------------------------- random event streams
def _pieces():
    """PDVs of one P-DATA-TF event as the core hands them out: each PDV's value
    in one or more pieces, offsets increasing, data cut short at times."""
    pdv = st.tuples(st.integers(0, 7), st.integers(0, 5), st.binary(max_size=64), st.integers(1, 3),
                    st.booleans())

    def build(pdvs):
        out = []
        for ctx, mch, value, parts, cut in pdvs:
            n = len(value)
            step = max(1, n // parts)
            off = 0
            while True:
                chunk = value[off:off + step]
                out.append((ctx, mch, n + 2, off, len(chunk), chunk[:len(chunk) // 2] if cut else chunk))
                off += len(chunk)
                if off >= n:
                    break
        return tuple(out)

    return st.lists(pdv, max_size=4).map(build)


def _events():
    from fastdicom import events as E
    pdu = st.builds(lambda d, t, body, trunc: (E.EV_PDU, 0, d, t, len(body), 0, 5, 6, 10, 11, body,
                                               E.PF_FINAL | (E.PF_TRUNCATED if trunc else 0)),
                    st.integers(0, 1), st.integers(1, 7),
                    st.one_of(st.binary(max_size=200), st.just(RQ), st.just(AC), mutated(RQ), mutated(AC)),
                    st.booleans())
    pdata = st.builds(lambda d, pieces, final, trunc: (E.EV_PDATA, 0, d, 4, 100, 0, 5, 6, 10, 11, pieces,
                                                      (E.PF_FINAL if final else 0) | (E.PF_TRUNCATED if trunc else 0), 6, 6),
                      st.integers(0, 1), _pieces(), st.booleans(), st.booleans())
    command = st.builds(lambda d, cmd, ctx: (E.EV_PDATA, 0, d, 4, 100, 0, 5, 6, 10, 11,
                                             ((ctx, 3, len(cmd) + 2, 0, len(cmd), cmd),), E.PF_FINAL, 6, 6),
                        st.integers(0, 1), st.one_of(st.just(COMMAND), mutated(COMMAND),
                                                     st.just(G.c_store_rsp(7, G.CT_STORAGE, "1.2.3.4.5", 0xA700))),
                        st.sampled_from((1, 3, 2)))
    gap = st.builds(lambda d, size, resumed: (E.EV_GAP, 0, d, 0, size, 7, 12, int(resumed)),
                    st.integers(0, 1), st.integers(-1, 5000), st.booleans())
    expert = st.builds(lambda code, a1, a2: (E.EV_EXPERT, 0, 0, code, 8, 13, 0, a1, a2),
                       st.sampled_from(E.CORE_EXPERT_CODES), st.integers(0, 2**32), st.integers(0, 2**32))
    return st.lists(st.one_of(pdu, pdata, command, gap, expert), max_size=25)


@SETTINGS
@given(_events(), st.booleans())
def test_decoder_random_event_streams(events, end):
    """The decoder and its sinks on random streams of core events that keep the
    core's contract (a flow first; pieces as the framer cuts them), in any order
    the core could never produce: no exception."""
    from fastdicom import events as E
    flow = (E.EV_FLOW, 0, 1, 1, "10.0.0.1", 40001, "10.0.0.2", 104, -1, -1, -1)
    tail = [(E.EV_FLOW_END, 0, 9, 14, E.END_FIN, (0,) * 8)] if end else []
    targets._decode_events([flow] + list(events) + tail)
