"""The capture reader (``_filereader``, its read-ahead thread) against its
pure-Python twin: the same chunks, the same ends, the same errors."""

import errno
import os
import time

import pytest

from fastdicom import _filereader, _pyfilereader, capture

IMPLS = [pytest.param(_filereader, id="cython"), pytest.param(_pyfilereader, id="python")]
SIZE = 4096


def _chunks(impl, path, size=SIZE, depth=4, skip=0, check=None):
    """Every chunk of ``path`` from ``skip`` on, as bytes (``check(k, view)`` sees each view)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, skip, os.SEEK_SET)
        out = []
        with impl.ReadAhead(fd, size, depth) as r:
            while (v := r.next_chunk()) is not None:
                if check is not None:
                    check(len(out), v)
                out.append(bytes(v))
                v.release()
            assert r.next_chunk() is None  # and again at the end
        return out
    finally:
        os.close(fd)


@pytest.mark.parametrize("length", [0, 1, SIZE - 1, SIZE, SIZE + 1, 7 * SIZE + 13])
@pytest.mark.parametrize("depth", [2, 3, 8])
def test_chunks_are_the_file(tmp_path, length, depth):
    data = os.urandom(length)
    p = tmp_path / "f"
    p.write_bytes(data)
    got = {impl.IMPLEMENTATION: _chunks(impl, p, depth=depth) for impl in (_filereader, _pyfilereader)}
    assert got["cython"] == got["python"]
    assert b"".join(got["cython"]) == data
    assert all(len(c) == SIZE for c in got["cython"][:-1])
    # from the descriptor's position, not the file's start
    assert b"".join(_chunks(_filereader, p, depth=depth, skip=min(5, length))) == data[5:]


@pytest.mark.parametrize("impl", IMPLS)
def test_a_chunk_held_is_not_read_into(impl, tmp_path):
    """The thread reads ahead into the other buffers only: while the caller
    holds a chunk (here while the thread has time to fill everything else),
    its bytes stay those of its place in the file."""
    data = os.urandom(40 * SIZE + 5)
    p = tmp_path / "f"
    p.write_bytes(data)

    def check(k, view):
        first = bytes(view)
        time.sleep(0.002)
        assert bytes(view) == first == data[k * SIZE:(k + 1) * SIZE]

    assert b"".join(_chunks(impl, p, depth=2, check=check)) == data


@pytest.mark.parametrize("impl", IMPLS)
def test_read_errors_closing_and_bad_arguments(impl, tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY)  # a folder: read(2) fails with EISDIR
    try:
        r = impl.ReadAhead(fd, SIZE, 2)
        for _ in range(2):  # raised by every call, never a chunk of garbage
            with pytest.raises(OSError) as exc:
                r.next_chunk()
            assert exc.value.errno == errno.EISDIR
        r.close()
        r.close()
        with pytest.raises(ValueError):
            r.next_chunk()
    finally:
        os.close(fd)
    for size, depth in ((0, 4), (SIZE, 1), (SIZE, 65)):
        with pytest.raises(ValueError):
            impl.ReadAhead(0, size, depth)


def _threads():
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc (Linux)")
def test_reading_threads_end(tmp_path):
    """Closed, or dropped after one chunk without close(): the native thread
    ends (it was waiting for a buffer to be handed back) and nothing hangs."""
    p = tmp_path / "f"
    p.write_bytes(os.urandom(64 * SIZE))
    before = _threads()
    fd = os.open(p, os.O_RDONLY)
    try:
        r = _filereader.ReadAhead(fd, SIZE, 2)
        assert _threads() == before + 1
        v = r.next_chunk()
        v.release()
        del r, v
        assert _threads() == before
        r = _filereader.ReadAhead(fd, SIZE, 2)
        r.close()
        assert _threads() == before
        # a generator over a capture left half-way (the thread waits: the
        # file is bigger than its buffers)
        big = tmp_path / "big"
        big.write_bytes(bytes((capture.READ_AHEAD_DEPTH + 2) * capture.READ_CHUNK))
        gen = capture._chunks(str(big), capture.CaptureInfo(str(big)), read_ahead=True)
        next(gen)
        # (the pure-Python build, FASTDICOM_PURE_PYTHON=1, reads on the calling thread)
        assert _threads() == before + (0 if capture.core.PURE_PYTHON else 1)
        gen.close()
        assert _threads() == before
    finally:
        os.close(fd)


@pytest.mark.parametrize("read_ahead", [True, False])
def test_capture_chunks_read_ahead_or_not(tmp_path, read_ahead):
    data = os.urandom(3 * capture.READ_CHUNK + 17)
    p = tmp_path / "c.pcap"
    p.write_bytes(data)
    info = capture.CaptureInfo(str(p))
    parts = []
    for part in capture._chunks(str(p), info, read_ahead=read_ahead):
        parts.append(bytes(part))
    assert b"".join(parts) == data and info.read_bytes == len(data) and info.size == len(data)


def test_read_ahead_needs_a_second_cpu(monkeypatch):
    monkeypatch.setattr(capture, "usable_cpus", lambda: 1)
    assert capture.read_ahead_default() is False
    monkeypatch.setattr(capture, "usable_cpus", lambda: 2)
    assert capture.read_ahead_default() is (not capture.core.PURE_PYTHON)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_an_error_not_a_hang(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(os.urandom(64 * SIZE))
    fd = os.open(p, os.O_RDONLY)
    r = _filereader.ReadAhead(fd, SIZE, 2)
    first = bytes(r.next_chunk())
    time.sleep(0.05)  # the thread has filled the other buffer and waits for one: forked so
    pid = os.fork()
    if pid == 0:  # the child: the reading thread stayed in the parent
        code = 3
        try:
            r.next_chunk()
        except RuntimeError as exc:
            code = 0 if "forked child" in str(exc) else 4
        except BaseException:
            code = 5
        try:
            r.close()
            del r
        except BaseException:
            code = 6
        os._exit(code)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:  # a hang is the failure this test is about: never let it hang the suite
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the reader")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    # the parent reads on
    rest = b""
    while (v := r.next_chunk()) is not None:
        rest += bytes(v)
    r.close()
    os.close(fd)
    assert first + rest == p.read_bytes()
