"""The summary's JSON writer in C (_jsontext) against its pure-Python twin
(_pyjsontext): the same characters for every document."""

import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdicom import _pyjsontext as P
from fastdicom.analysis import output as AO
from fastdicom.core import PURE_PYTHON
from helpers import REAL, REAL_CAPTURES, summarize

if PURE_PYTHON:
    pytest.skip("the compiled JSON writer is not used with FASTDICOM_PURE_PYTHON=1",
                allow_module_level=True)
from fastdicom import _jsontext as C  # noqa: E402


class Pieces:
    """A text file that keeps each write apart."""

    def __init__(self):
        self.writes = []

    def write(self, s):
        assert isinstance(s, str)
        self.writes.append(s)


def texts(doc):
    a, b = Pieces(), Pieces()
    C.write_json(doc, a)
    P.write_json(doc, b)
    return "".join(a.writes), "".join(b.writes), a


def test_implementations():
    assert C.IMPLEMENTATION == "cython" and P.IMPLEMENTATION == "python"


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_summaries_of_the_real_captures(name):
    doc = summarize(REAL / f"{name}.pcap")
    ours, twin, _ = texts(doc)
    assert ours == twin
    assert json.loads(ours) == json.loads(json.dumps(doc, default=str))


def test_an_analysis_document():
    from fastdicom import capture
    from fastdicom.decoder import Decoder
    summary_sink, collector = AO.sinks()
    dec = Decoder([summary_sink, collector], **AO.DECODER_OPTIONS)
    for s in (summary_sink, collector):
        if hasattr(s, "bind"):
            s.bind(dec)
    infos = capture.run([str(REAL / "query_retrieve.pcap")], dec,
                        capture.EngineOptions(ports=(11112, 11113, 11114)))
    doc = AO.document(dec, infos, AO.run_analyses(dec, collector))
    ours, twin, _ = texts(doc)
    assert ours == twin and doc


class Text(str):
    pass


class Number(int):
    pass


class Mapping(dict):
    pass


class Sequence(list):
    pass


class Thing:
    def __str__(self):
        return "thing \u00e9\n"


ODD = [
    {}, [], "", 0, -1, 9, 10, -10, 2 ** 63, 2 ** 63 - 1, -(2 ** 63), -(2 ** 63) - 1, 2 ** 200,
    1.5, -0.0, 1e300, 5e-324, 1e16, 123456789.0, 0.1,
    float("nan"), float("inf"), float("-inf"), True, False, None,
    {"a": []}, {"a": {}}, [[]], [{}], {"x": [{}]}, {"x": [[{}]]},
    {"q": "quote \" backslash \\ tab \t nl \n del \x7f nul \x00 \u00e9 \u20ac \U0001f600"},
    {1: "int key", None: 2, True: 3, 1.5: [{"a": 1}], "s": Text("sub")},
    {"compact": {1: 2, "a": 3}, "t": (1, 2, {"a": 3}), "o": Thing(), "n": Number(7)},
    Mapping(z=1, a=[{"b": 2}]), Sequence([1, [2, [3]]]), {"m": Mapping(a=1)},
    {"deep": {"a": {"b": {"c": [{"d": {"e": [1, {"f": None}]}}]}}}},
    [1, [2, [3, [4, [{"x": "y"}]]]]],
]


@pytest.mark.parametrize("doc", ODD, ids=range(len(ODD)))
def test_odd_documents(doc):
    ours, twin, _ = texts(doc)
    assert ours == twin
    if not (isinstance(doc, float) and math.isnan(doc)):
        assert json.loads(ours) == json.loads(json.dumps(doc, default=str))


def test_errors_are_the_twins():
    for doc in ({(1, 2): 3}, {"a": {(1, 2): [{"b": 1}]}}, [{"k": {(1,): 1}}]):
        with pytest.raises(TypeError):
            C.write_json(doc, io.StringIO())
        with pytest.raises(TypeError):
            P.write_json(doc, io.StringIO())


def test_big_documents_are_written_in_pieces():
    rows = [{"id": i, "text": "x" * 50, "t": i / 7, "items": [{"k": i}]} for i in range(40000)]
    ours, twin, sink = texts({"rows": rows})
    assert ours == twin and len(ours) > 4 << 20
    assert len(sink.writes) > 3 and max(map(len, sink.writes)) <= (1 << 20) + 4096
    # a single record of several MiB is passed on whole, in order
    huge = {"a": [{"blob": "y" * (3 << 20), "n": 1}, {"blob": "z\n" * 10, "n": 2}]}
    ours, twin, _ = texts(huge)
    assert ours == twin


keys = st.one_of(st.text(max_size=8), st.integers(-5, 5), st.none(), st.booleans(),
                 st.floats(allow_nan=False, width=32))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.builds(Text, st.text(max_size=5)), st.builds(Number, st.integers(0, 9)),
                    st.builds(Thing))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(keys, inner, max_size=5),
                            st.dictionaries(st.text(max_size=8), inner, max_size=6),
                            st.tuples(inner, inner),
                            st.builds(Mapping, st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                            st.builds(Sequence, st.lists(inner, max_size=3))),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_random_documents(doc):
    ours, twin, _ = texts(doc)
    assert ours == twin


@pytest.mark.parametrize("doc", ODD, ids=range(len(ODD)))
def test_value_text_is_the_text_inside_a_document(doc):
    """A value written alone at nesting d is what write_json writes for it d
    levels down, in both twins (lists of records nest one level per list)."""
    for depth in (0, 1, 2, 5):
        ours, twin = C.value_text(doc, depth), P.value_text(doc, depth)
        assert ours == twin
        nested = doc
        for _ in range(depth):
            nested = [nested, {"a": [{"b": 1}]}]  # a container at every level
        whole, _, _ = texts(nested)
        assert ours in whole
        if depth == 0:
            assert whole == ours + "\n"


def test_value_text_after_an_error_and_in_pieces():
    """The writer value_text keeps is clean after a failed value, and a value
    longer than its buffer comes back whole."""
    with pytest.raises(TypeError):
        C.value_text({"a": {(1, 2): [{"b": 1}]}}, 2)
    assert C.value_text({"a": [{"b": 1}]}, 1) == P.value_text({"a": [{"b": 1}]}, 1)
    big = [{"blob": "y" * (3 << 20), "n": k} for k in range(2)]
    assert C.value_text(big, 3) == P.value_text(big, 3)


@settings(max_examples=200, deadline=None)
@given(documents, st.integers(0, 6))
def test_random_value_texts(doc, depth):
    assert C.value_text(doc, depth) == P.value_text(doc, depth)
