"""The core walked on the reading thread (``ReadAhead(..., engine=...)``,
``_core.engine_walk`` without the GIL) against the same engine fed by
``feed()``: the same events, the same stats, whatever the chunk size; the
errors of the walk raised where the events would have been; the engine
handed back at the end."""

import os
import random
import time

import pytest

from fastdicom import _pyfilereader, capture, core
from fastdicom.decoder import Decoder
from fastdicom.errors import CaptureFormatError
from mutations import mutate
from test_core_differential import CAPTURES, DATA, load, random_chunks, settings_for

_core = pytest.importorskip("fastdicom._core")
_filereader = pytest.importorskip("fastdicom._filereader")

OPTIONS = ["default", "no-data", "small-pieces", "tiny-ooo"]


def fed(data: bytes, chunks=None, **options):
    """Events and stats of a compiled engine fed by feed() on this thread."""
    eng = _core.Engine(**options)
    events, pos = [], 0
    for size in chunks or [len(data)]:
        eng.feed(data[pos:pos + size])
        events += eng.pop_events()
        pos += size
    eng.finish()
    return events + eng.pop_events(), eng.stats()


def walked(path, size: int, impl=None, depth: int = 3, **options):
    """Events and stats of an engine walked by a reader of ``path`` in chunks of ``size``."""
    impl = impl or _filereader
    eng = _core.Engine(**options)
    events, nbytes = [], 0
    fd = os.open(path, os.O_RDONLY)
    try:
        with impl.ReadAhead(fd, size, depth, engine=eng) as r:
            while (got := r.next_events()) is not None:
                n, evs = got
                assert 0 < n <= size
                nbytes += n
                events += evs
    finally:
        os.close(fd)
    assert nbytes == os.path.getsize(path)
    eng.finish()  # the engine is the caller's again
    return events + eng.pop_events(), eng.stats()


def on_disk(tmp_path, path):
    if path.name.endswith(".gz"):  # the reader takes the capture itself
        p = tmp_path / path.name[:-3]
        p.write_bytes(load(path))
        return p
    return path


@pytest.mark.parametrize("name", OPTIONS)
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fixture_walked_on_the_thread(tmp_path, path, name):
    options = settings_for(path)[name]
    data = load(path)
    expect = fed(data, random_chunks(len(data), 7), **options)
    src = on_disk(tmp_path, path)
    size = random.Random(len(data)).choice([997, 4096, 65536, 1 << 20])
    assert walked(src, size, **options) == expect


@pytest.mark.parametrize("mode", ["reorder", "drop", "overlap", "midstream", "pcapng"])
@pytest.mark.parametrize("name", ["store_dcmtk", "multi_pdv", "concurrent"])
def test_tap_distortions_walked(tmp_path, name, mode):
    """Gaps and out-of-order segments: pieces cut short, held segments,
    resynchronised framing, all with the walk's own piece memory."""
    data = mutate((DATA / "real" / f"{name}.pcap").read_bytes(), mode, seed=5, rate=0.08)
    p = tmp_path / "m.pcap"
    p.write_bytes(data)
    for options in ({}, {"data_limit": 100, "chunk_size": 700, "ooo_budget": 4000}):
        assert walked(p, 3001, **options) == fed(data, **options)


def test_the_twin_reader_feeds_the_engine_in_turn(tmp_path):
    path = DATA / "real" / "concurrent.pcap"
    assert walked(path, 5000, impl=_pyfilereader) == walked(path, 5000) == fed(path.read_bytes())


@pytest.mark.parametrize("impl", [_filereader, _pyfilereader], ids=["cython", "python"])
def test_what_the_walk_raises_is_raised_by_next_events(tmp_path, impl):
    for content, words in ((b"\x1f\x8b\x08\x00" + bytes(60), "gzip"), (bytes(range(64)), "not a pcap")):
        p = tmp_path / "bad"
        p.write_bytes(content)
        eng = _core.Engine()
        fd = os.open(p, os.O_RDONLY)
        try:
            r = impl.ReadAhead(fd, 16, 2, engine=eng)
            with pytest.raises(CaptureFormatError, match=words):
                r.next_events()
            r.close()
        finally:
            os.close(fd)
        assert eng.pop_events() == []  # handed back: usable again, nothing half-made left


def test_the_engine_is_the_readers_while_it_walks(tmp_path):
    path = DATA / "real" / "store_dcmtk.pcap"
    eng = _core.Engine()
    fd = os.open(path, os.O_RDONLY)
    try:
        r = _filereader.ReadAhead(fd, 4096, 2, engine=eng)
        for call in (lambda: eng.feed(b""), eng.pop_events, eng.finish):
            with pytest.raises(RuntimeError, match="reading thread"):
                call()
        with pytest.raises(RuntimeError, match="already"):
            _filereader.ReadAhead(fd, 4096, 2, engine=eng)
        with pytest.raises(ValueError, match="next_events"):
            r.next_chunk()
        assert r.next_events()[0] == 4096
        r.close()  # left half-way: the thread stops, the engine is given back
        eng.finish()
        assert eng.stats()["bytes"] >= 4096
    finally:
        os.close(fd)
    fresh = _core.Engine()
    fresh.feed(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="fed by feed"):
        _filereader.ReadAhead(0, 4096, 2, engine=fresh)
    with pytest.raises(ValueError, match="next_chunk"):
        _filereader.ReadAhead(0, 4096, 2).next_events()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc (Linux)")
def test_a_walking_thread_left_half_way_ends(tmp_path):
    path = DATA / "real" / "big_store.pcap"
    before = len(os.listdir("/proc/self/task"))
    eng = _core.Engine()
    fd = os.open(path, os.O_RDONLY)
    try:
        r = _filereader.ReadAhead(fd, 2048, 2, engine=eng)
        r.next_events()
        del r  # dropped without close(), the thread waiting for its batches to be taken
        assert len(os.listdir("/proc/self/task")) == before
    finally:
        os.close(fd)


@pytest.fixture
def readers(monkeypatch):
    """The ReadAhead objects the commands make, as a list of "walks an engine"."""
    used = []
    real = capture._reader.ReadAhead
    monkeypatch.setattr(capture._reader, "ReadAhead",
                        lambda *a, **k: used.append(k.get("engine") is not None) or real(*a, **k))
    return used


@pytest.mark.parametrize("read_ahead", [True, False])
def test_capture_run_walks_on_the_thread_or_feeds(readers, read_ahead):
    """``capture.run`` gives the same decoded result either way."""
    path = str(DATA / "real" / "concurrent.pcap")
    used = readers
    dec = Decoder([], hash_data=True)
    infos = capture.run([path], dec, read_ahead=read_ahead)
    if core.PURE_PYTHON:  # the twin reader, on this thread (it is the module patched then)
        assert used == [False]
    else:
        assert used == ([True] if read_ahead else [])
    assert infos[0].read_bytes == os.path.getsize(path)
    ref = Decoder([], hash_data=True)
    capture.run([path], ref, read_ahead=False)
    assert [(t.sop_instance_uid, t.length, t.hasher.hexdigest() if t.hasher else None)
            for t in dec.objects] == \
        [(t.sop_instance_uid, t.length, t.hasher.hexdigest() if t.hasher else None)
         for t in ref.objects]
    assert len(dec.associations) == len(ref.associations) > 0


def test_every_byte_handed_out_is_read_ahead_but_walked_here(readers):
    """An engine that hands out every data set byte (export, --hash) walks
    on this thread, from chunks read ahead: its bytes are copied once."""
    path = str(DATA / "real" / "concurrent.pcap")
    used = readers
    dec = Decoder([], hash_data=True)
    capture.run([path], dec, capture.EngineOptions(data_limit=-1), read_ahead=True)
    assert used == [False]  # (the twin's reader with FASTDICOM_PURE_PYTHON=1)
    assert sum(t.hasher is not None for t in dec.objects) > 0  # whole data sets, hashed


@pytest.mark.parametrize("share", ["exact", "one-chunk", "slow-consumer", "from-offset"])
def test_reading_shared_by_both_threads(tmp_path, share):
    """Whichever thread reads a chunk (pread at its offset), the walk sees
    the file's bytes in order: a file of exactly one chunk (the end is a
    read of nothing), a file within one chunk, a consumer so slow that
    the walking thread reads everything, a descriptor not at the file's start."""
    data = (DATA / "real" / "multi_pdv.pcap").read_bytes()
    expect = fed(data)
    size = {"exact": len(data), "one-chunk": len(data) + 5}.get(share, 3000)
    p = tmp_path / "c.pcap"
    prefix = b"x" * 777 if share == "from-offset" else b""
    p.write_bytes(prefix + data)
    eng = _core.Engine()
    events = []
    fd = os.open(p, os.O_RDONLY)
    try:
        os.lseek(fd, len(prefix), os.SEEK_SET)
        with _filereader.ReadAhead(fd, size, 2, engine=eng) as r:
            while (got := r.next_events()) is not None:
                if share == "slow-consumer":
                    time.sleep(0.002)
                events += got[1]
    finally:
        os.close(fd)
    eng.finish()
    assert (events + eng.pop_events(), eng.stats()) == expect


def test_a_capture_walked_ahead_is_taken_over_by_run(tmp_path):
    """``walk_ahead`` starts the walk before the decoder exists (the CLI's
    summary does, while it imports); ``run(started=...)`` goes on from there
    with the same result; what cannot be walked ahead gives None; errors are
    those of a plain run."""
    path = str(DATA / "real" / "concurrent.pcap")
    opts = capture.EngineOptions(data_limit=65536)

    def result(started=None):
        dec = Decoder([], hash_data=False)
        infos = capture.run([path, path], dec, opts, read_ahead=True, started=started)
        return ([(t.sop_instance_uid, t.length, t.frame_last) for t in dec.objects],
                [(i.name, i.read_bytes, i.stats) for i in infos], dec.pdu_count)

    started = capture.walk_ahead(path, opts, read_ahead=True)
    if core.PURE_PYTHON:
        assert started is None
        return
    assert started.name == path and started.options == opts
    assert result(started) == result() and result()[2] > 0
    assert capture.walk_ahead(path, opts, read_ahead=False) is None
    gz = tmp_path / "c.pcap.gz"
    gz.write_bytes(__import__("gzip").compress((DATA / "real" / "concurrent.pcap").read_bytes()))
    assert capture.walk_ahead(str(gz), opts, read_ahead=True) is None
    with pytest.raises(capture.CaptureReadError):
        capture.walk_ahead(str(tmp_path / "missing.pcap"), opts, read_ahead=True)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(range(64)))
    started = capture.walk_ahead(str(bad), opts, read_ahead=True)
    with pytest.raises(CaptureFormatError, match="bad.pcap: not a pcap"):
        capture.run([str(bad)], Decoder([]), opts, read_ahead=True, started=started)
    # started and never run: closing ends its thread
    before = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    started = capture.walk_ahead(path, opts, read_ahead=True)
    started.close()
    if before is not None:
        assert len(os.listdir("/proc/self/task")) == before
