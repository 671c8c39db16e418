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
