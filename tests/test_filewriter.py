"""The export writer (``_filewriter.pyx``) and its pure-Python twin: same
files, same hashes, same errors."""

import errno
import hashlib
import os

import pytest

from fastdicom import _filewriter, _pyfilewriter

IMPLS = [pytest.param(_filewriter, id="cython"), pytest.param(_pyfilewriter, id="python")]


def _hasher(impl):
    return impl.Sha256() if impl.native_sha256() else None


def test_native_sha256_found_here():
    # this machine's Python is linked with libcrypto: the fast path must be taken
    assert _filewriter.native_sha256()
    h = _filewriter.Sha256()
    h.update(b"abc")
    assert h.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    h.update(memoryview(b"def"))
    assert h.digest() == hashlib.sha256(b"abcdef").digest()
    assert h.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()  # digest() leaves the state alone


@pytest.mark.parametrize("impl", IMPLS)
def test_pieces_land_at_their_positions_and_are_hashed_in_order(impl, tmp_path):
    rnd = __import__("random").Random(7)
    pieces = [rnd.randbytes(rnd.choice((0, 1, 100, 4096, 70000))) for _ in range(300)]
    w = impl.FileWriter(max_open=2, max_pending=200_000)  # writes wait for the disk
    h = impl.Sha256()
    w.open(0, tmp_path / "a", True)
    pos = 128
    for k in range(0, len(pieces), 13):
        batch = tuple(pieces[k:k + 13])
        w.write(0, pos, batch, h)
        pos += sum(map(len, batch))
    w.open(1, str(tmp_path / "b"), True)
    w.write(1, 10, (b"tail",))
    w.write(1, 0, (b"head",))
    seq = w.close(0)
    w.close(1)
    w.wait(seq)
    assert w.done() >= seq
    w.stop()
    data = b"".join(pieces)
    assert (tmp_path / "a").read_bytes() == bytes(128) + data
    assert h.hexdigest() == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "b").read_bytes() == b"head" + bytes(6) + b"tail"  # the hole stays zeros


@pytest.mark.parametrize("impl", IMPLS)
def test_more_jobs_than_the_ring_holds_and_slot_reuse(impl, tmp_path):
    w = impl.FileWriter(max_open=1)
    want = {}
    for f in range(3):
        p = tmp_path / f"f{f}"
        w.open(0, p, True)
        for k in range(5000):
            w.write(0, k * 2, (b"%02d" % (k % 100),))
        w.close(0)
        want[p] = b"".join(b"%02d" % (k % 100) for k in range(5000))
    w.stop()
    for p, data in want.items():
        assert p.read_bytes() == data


@pytest.mark.parametrize("impl", IMPLS)
def test_reopen_without_create_keeps_what_was_written(impl, tmp_path):
    w = impl.FileWriter(max_open=1)
    w.open(0, tmp_path / "a", True)
    w.write(0, 0, (b"abc",))
    w.close(0)
    w.open(0, tmp_path / "a", False)
    w.write(0, 3, (b"def",))
    w.stop()
    assert (tmp_path / "a").read_bytes() == b"abcdef"


@pytest.mark.parametrize("impl", IMPLS)
def test_first_error_is_raised_by_the_next_call_and_stops_later_writes(impl, tmp_path):
    (tmp_path / "exists").write_bytes(b"old")
    w = impl.FileWriter(max_open=2)
    w.open(0, tmp_path / "exists", True)  # O_EXCL: never an existing file
    with pytest.raises(FileExistsError, match="exists"):
        w.wait()
        w.write(0, 0, (b"new",))
    with pytest.raises(OSError):
        w.open(1, tmp_path / "other", True)
    with pytest.raises(OSError):
        w.stop()
    assert (tmp_path / "exists").read_bytes() == b"old"
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("impl", IMPLS)
def test_a_full_disk_is_an_os_error(impl):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    w = impl.FileWriter()
    w.open(0, "/dev/full", False)
    w.write(0, 0, (b"x" * 5000,))
    with pytest.raises(OSError) as info:
        w.wait()
    assert info.value.errno == errno.ENOSPC and "/dev/full" in str(info.value)
    with pytest.raises(OSError):
        w.stop()


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_calls(impl, tmp_path):
    w = impl.FileWriter(max_open=2)
    with pytest.raises(ValueError, match="slot"):
        w.open(2, tmp_path / "a", True)
    with pytest.raises(ValueError, match="slot"):
        w.close(-1)
    with pytest.raises(TypeError, match="bytes"):
        w.write(0, 0, (bytearray(b"x"),))
    with pytest.raises(ValueError, match="null"):
        w.open(0, "a\0b", True)
    with pytest.raises(ValueError, match="negative"):
        w.write(0, -1, (b"x",))
    w.stop()
    with pytest.raises(ValueError, match="stopped"):
        w.open(0, tmp_path / "a", True)
    w.stop()  # twice is fine


def test_twin_finishes_short_writes(monkeypatch, tmp_path):
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, pos: real(fd, bytes(data)[:3], pos))
    w = _pyfilewriter.FileWriter()
    w.open(0, tmp_path / "f", True)
    w.write(0, 4, (b"0123456789", b"ab"))
    w.stop()
    assert (tmp_path / "f").read_bytes() == b"\0" * 4 + b"0123456789ab"
    monkeypatch.setattr(os, "pwrite", lambda fd, data, pos: 0)
    w = _pyfilewriter.FileWriter()
    w.open(0, tmp_path / "g", True)
    w.write(0, 0, (b"x",))
    with pytest.raises(OSError, match="Input/output error"):
        w.stop()


def test_dropping_a_busy_writer_neither_hangs_nor_leaks(tmp_path):
    before = set(os.listdir("/proc/self/fd"))
    w = _filewriter.FileWriter(max_open=4)
    for k in range(4):
        w.open(k, tmp_path / f"f{k}", True)
        w.write(k, 0, (b"x" * 100_000,) * 20)
    del w  # finishes the queued jobs, joins the thread, closes the files
    assert set(os.listdir("/proc/self/fd")) <= before
    assert all((tmp_path / f"f{k}").stat().st_size == 2_000_000 for k in range(4))


@pytest.mark.parametrize("impl", IMPLS)
def test_place_takes_the_first_free_name_and_never_replaces(impl, tmp_path):
    import struct
    (tmp_path / "obj.dcm").write_bytes(b"first")
    (tmp_path / "obj-1.dcm").symlink_to(tmp_path / "elsewhere")  # taken, and never followed
    w = impl.FileWriter()
    results = []
    for k in range(2):
        w.open(0, tmp_path / f"t{k}", True)
        w.write(0, 0, (b"new%d" % k,))
        w.close(0)
        results.append(bytearray(8))
        w.place(tmp_path / f"t{k}", tmp_path / "obj", ".dcm", results[-1])
    missing = bytearray(8)
    w.place(tmp_path / "gone", tmp_path / "x", ".dcm", missing)
    w.stop()
    assert [struct.unpack("=ii", r) for r in results] == [(0, 2), (0, 3)]
    assert (tmp_path / "obj.dcm").read_bytes() == b"first"
    assert (tmp_path / "obj-2.dcm").read_bytes() == b"new0"
    assert (tmp_path / "obj-3.dcm").read_bytes() == b"new1"
    assert not (tmp_path / "elsewhere").exists()
    assert not (tmp_path / "t0").exists() and not (tmp_path / "t1").exists()
    assert struct.unpack("=ii", missing)[0] == errno.ENOENT
    assert not (tmp_path / "x.dcm").exists()


def _direct_supported(folder) -> bool:
    """Whether this file system takes O_DIRECT (the compiled writer uses it there)."""
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        fd = os.open(folder / ".probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    os.close(fd)
    os.unlink(folder / ".probe")
    return True


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
def test_direct_io_writes_the_same_bytes(direct, tmp_path):
    """O_DIRECT appends go through the staging buffer in whole blocks; the
    last partial block is written at close and the file cut to its length.
    Pieces of every size, some larger than the staging buffer (4 MiB)."""
    rnd = __import__("random").Random(11)
    sizes = [0, 1, 4095, 4096, 4097, 100, 65536, 5 << 20, 3, 8191, (4 << 20) - 5, 12345]
    w = _filewriter.FileWriter(max_open=3, max_pending=1 << 20, direct=direct)
    files = {}
    for f in range(3):
        pieces = [rnd.randbytes(rnd.choice(sizes)) for _ in range(14)]
        h = _filewriter.Sha256()
        p = tmp_path / f"f{f}"
        w.open(f, p, True)
        w.write(f, 0, (b"meta" * 33,))  # 132 bytes first, as the exporter's meta header
        pos = 132
        for k in range(0, len(pieces), 3):
            batch = tuple(pieces[k:k + 3])
            w.write(f, pos, batch, h)
            pos += sum(map(len, batch))
        files[p] = (b"meta" * 33 + b"".join(pieces), h)
    for f in range(3):
        w.close(f)
    w.wait()
    for p, (data, h) in files.items():
        assert p.stat().st_size == len(data)
        assert p.read_bytes() == data
        assert h.hexdigest() == hashlib.sha256(data[132:]).hexdigest()
    total = sum(len(d) for d, _ in files.values())
    if direct and _direct_supported(tmp_path):
        assert w.direct_bytes == total  # every byte, the tails included, went to disk directly
    elif not direct:
        assert w.direct_bytes == 0
    w.stop()


def test_direct_io_leaves_for_ordinary_writes_when_not_appending(tmp_path):
    """A hole, a write behind the end, a reopened file and a writer stopped
    with files open: the direct writer keeps the same bytes as an ordinary one."""
    w = _filewriter.FileWriter(max_open=4, direct=True)
    a, b, c, d = (tmp_path / n for n in "abcd")
    w.open(0, a, True)
    w.write(0, 0, (b"x" * 5000,))
    w.write(0, 9000, (b"y" * 10,))  # a hole after a direct write: the tail is flushed first
    w.write(0, 20000, (b"z",))
    w.open(1, b, True)
    w.write(1, 0, (b"q" * 10000,))
    w.write(1, 0, (b"head",))  # behind the end (as a meta header put in front)
    w.open(2, c, True)
    w.write(2, 0, (b"1" * 6000,))
    w.close(2)
    w.open(2, c, False)  # reopened: ordinary appends
    w.write(2, 6000, (b"2" * 3000,))
    w.open(3, d, True)
    w.write(3, 0, (b"open at stop" * 1000,))  # 12000 bytes: a partial last block in the tail
    w.close(0)
    w.close(1)
    w.close(2)
    w.stop()  # d is still open: its tail must reach the disk
    assert a.read_bytes() == b"x" * 5000 + bytes(4000) + b"y" * 10 + bytes(10990) + b"z"
    assert b.read_bytes() == b"head" + b"q" * 9996
    assert c.read_bytes() == b"1" * 6000 + b"2" * 3000
    assert d.read_bytes() == b"open at stop" * 1000


@pytest.mark.parametrize("lanes", [1, 2, 3, 8])
@pytest.mark.parametrize("direct", [False, True])
def test_lanes_write_many_files_at_once(lanes, direct, tmp_path):
    """Files in slots of different I/O lanes are written at once; a file
    closed in one slot and reopened in a slot of another lane goes on where it
    stopped, and a file is renamed only once every lane has written it: what
    a rename gives (checked by another thread while the writer works) is
    always the whole file."""
    import random
    import struct
    import threading
    rnd = random.Random(lanes * 2 + direct)
    w = _filewriter.FileWriter(max_open=8, max_pending=1 << 20, direct=direct, lanes=lanes)
    want, results = {}, []
    seen_partial = []
    stop = threading.Event()

    def watch():  # a reader of the folder must never see a final name with part of a file
        while not stop.is_set():
            for p in list(tmp_path.glob("f*.dcm")):
                k = int(p.name[1:-4])
                try:
                    data = p.read_bytes()
                except FileNotFoundError:
                    continue
                if data != want[k]:
                    seen_partial.append(p.name)
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for k in range(120):
            slot = k % 8
            tmp = tmp_path / f"t{k}"
            body = [rnd.randbytes(rnd.choice((1, 100, 4096, 5000, 70000))) for _ in range(rnd.randint(1, 6))]
            want[k] = b"".join(body)
            w.open(slot, tmp, True)
            pos = 0
            half = len(body) // 2
            for piece in body[:half]:
                w.write(slot, pos, (piece,))
                pos += len(piece)
            if k % 5 == 0:  # closed, then reopened in the slot of the next lane
                w.close(slot)
                slot = (slot + 1) % 8
                w.close(slot)
                w.open(slot, tmp, False)
            for piece in body[half:]:
                w.write(slot, pos, (piece,))
                pos += len(piece)
            w.close(slot)
            results.append(bytearray(8))
            w.place(tmp, tmp_path / f"f{k}", ".dcm", results[-1])
        w.stop()
    finally:
        stop.set()
        watcher.join()
    assert all(struct.unpack("=ii", r) == (0, 0) for r in results)
    for k, data in want.items():
        assert (tmp_path / f"f{k}.dcm").read_bytes() == data
    assert not seen_partial
    assert (w.direct_bytes > 0) == direct
