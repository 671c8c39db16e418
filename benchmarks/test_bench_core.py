"""Capture-to-events throughput of the core, with file-reading baselines.

Run with ``pytest benchmarks --benchmark-only``; see benchmarks/README.md.
Every benchmark reports ``extra_info['MB/s']``: capture bytes (10**6) per
second of the mean round.
"""

import mmap

import pytest

from fastdicom.events import EV_FLOW, EV_GAP, EV_PDATA, PF_FINAL

CHUNK = 4 << 20  # bytes handed to Engine.feed() at a time


def _report(benchmark, capture, **info):
    benchmark.extra_info.update(info)
    benchmark.extra_info["capture_bytes"] = capture.size
    if benchmark.stats:  # None under --benchmark-disable
        benchmark.extra_info["MB/s"] = round(capture.size / benchmark.stats["mean"] / 1e6, 1)


@pytest.fixture(scope="module")
def core():
    """fastdicom.core: the compiled core, or the pure-Python one with FASTDICOM_PURE_PYTHON=1."""
    from fastdicom import core

    return core


def test_read_file(benchmark, capture, rounds):
    """Baseline: read the capture with readinto() in 4 MiB pieces (what `cat` does)."""
    buf = bytearray(CHUNK)

    def run():
        n = 0
        with open(capture.path, "rb", buffering=0) as f:
            while k := f.readinto(buf):
                n += k
        return n

    assert benchmark.pedantic(run, rounds=rounds, warmup_rounds=1) == capture.size
    _report(benchmark, capture)


def test_read_mmap(benchmark, capture, rounds):
    """Baseline: copy out every 4 MiB slice of an mmap of the capture."""

    def run():
        n = 0
        with open(capture.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            for i in range(0, len(mm), CHUNK):
                n += len(mm[i:i + CHUNK])
        return n

    assert benchmark.pedantic(run, rounds=rounds, warmup_rounds=1) == capture.size
    _report(benchmark, capture)


@pytest.mark.parametrize("read_ahead", [False, True], ids=["one-thread", "read-ahead"])
def test_read_capture_chunks(benchmark, capture, rounds, read_ahead):
    """The commands' reader (``capture._chunks``): 1 MiB pieces read on the
    calling thread, or ahead on a native thread (the consumer here does
    nothing, so the figure is the reading itself)."""
    from fastdicom import capture as cap

    def run():
        n = 0
        for part in cap._chunks(capture.path, cap.CaptureInfo(capture.path), read_ahead=read_ahead):
            n += len(part)
        return n

    assert benchmark.pedantic(run, rounds=rounds, warmup_rounds=1) == capture.size
    _report(benchmark, capture, read_ahead=read_ahead)


@pytest.mark.parametrize("read_ahead", [False, True], ids=["fed-here", "walked-ahead"])
def test_capture_events(benchmark, capture, rounds, read_ahead):
    """The commands' source of events (``capture._events``, summary's
    64 KiB of data set heads): fed to the engine on the calling thread, or
    read and walked on the reading thread, the calling thread only making
    the event tuples (its figure is what is left for the decoder to wait
    for; on one CPU the two threads take turns)."""
    from fastdicom import capture as cap

    def run():
        info = cap.CaptureInfo(capture.path)
        engine = cap.EngineOptions(ports=(11112,), data_limit=65536).engine()
        n = sum(len(evs) for evs in cap._events(capture.path, info, engine, read_ahead=read_ahead))
        engine.finish()
        return info.read_bytes, n + len(engine.pop_events()) > 0

    assert benchmark.pedantic(run, rounds=rounds, warmup_rounds=1) == (capture.size, True)
    _report(benchmark, capture, read_ahead=read_ahead)


def _engine_run(core, path, data_limit):
    """Feed 4 MiB memoryview slices of an mmap, popping events after each feed;
    returns (flows, gaps, data bytes handed out, whole P-DATA-TF PDUs)."""
    e = core.Engine(ports=[11112], data_limit=data_limit)
    flows = gaps = data = pdus = 0
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mv = memoryview(mm)
        try:
            for i in range(0, len(mv), CHUNK):
                e.feed(mv[i:i + CHUNK])
                for ev in e.pop_events():
                    kind = ev[0]
                    if kind == EV_PDATA:
                        for piece in ev[10]:
                            data += len(piece[5])
                        pdus += ev[11] & PF_FINAL
                    elif kind == EV_FLOW:
                        flows += 1
                    elif kind == EV_GAP:
                        gaps += 1
            e.finish()
            for ev in e.pop_events():
                if ev[0] == EV_PDATA:
                    pdus += ev[11] & PF_FINAL
        finally:
            mv.release()
    return flows, gaps, data, pdus


def _check(result, capture, data_limit):
    flows, gaps, data, pdus = result
    truth = capture.truth
    assert flows == len(truth["associations"]) and gaps == 0
    # every data set at most data_limit bytes (plus command sets, a few hundred bytes each)
    total = sum(r["dataset_len"] if data_limit < 0 else min(r["dataset_len"], data_limit)
                for r in truth["received"])
    assert total <= data <= total + 1024 * len(truth["received"])
    assert pdus >= 2 * len(truth["received"])


@pytest.mark.parametrize("data_limit", [65536, -1], ids=["limit64k", "unlimited"])
def test_engine_capture_to_events(benchmark, capture, core, rounds, data_limit):
    """Engine: capture bytes (4 MiB mmap slices) to events, pop_events() after each feed."""
    result = benchmark.pedantic(_engine_run, args=(core, capture.path, data_limit),
                                rounds=rounds, warmup_rounds=0)
    _check(result, capture, data_limit)
    _report(benchmark, capture, core=core.IMPLEMENTATION, data_limit=data_limit,
            chunk=CHUNK)
