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
