"""Pure-Python twin of ``_filewriter.pyx``: the same jobs and the same
results, run at once on the calling thread (``FASTDICOM_PURE_PYTHON=1``).

As in the compiled writer, a job's error is recorded and raised by the next
call, opens and writes after an error are skipped, and closes still run.
"""

from __future__ import annotations

import errno as _errno
import hashlib
import os
import struct

IMPLEMENTATION = "python"

O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_BINARY = getattr(os, "O_BINARY", 0)
IOV_BATCH = 1024
PLACE_TRIES = 10000


def native_sha256() -> bool:
    return True


class Sha256:
    """hashlib's SHA-256 under the compiled writer's name."""

    __slots__ = ("_h",)

    def __init__(self):
        self._h = hashlib.sha256()

    def update(self, data) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()

    def hexdigest(self) -> str:
        return self._h.hexdigest()


class FileWriter:
    """Ordered open/write/close jobs, done synchronously."""

    def __init__(self, max_open: int = 64, max_pending: int = 64 << 20, direct: bool = False):
        # ``direct`` is accepted for the compiled writer's signature; this twin
        # always writes through the page cache (the bytes on disk are the same)
        self.max_open = max(1, max_open)
        self.direct_bytes = 0
        self.fds = [-1] * self.max_open
        self.paths: dict[int, str] = {}
        self.seq = 0
        self.stopped = False
        self.err: tuple[int, str, int] | None = None

    def _usable(self, slot: int) -> None:
        if self.stopped:
            raise ValueError("the export writer is stopped")
        if not 0 <= slot < self.max_open:
            raise ValueError(f"slot {slot} out of range (max_open {self.max_open})")
        self._check()

    def _check(self) -> None:
        if self.err is not None:
            e, what, slot = self.err
            path = self.paths.get(slot)
            raise OSError(e, f"{os.strerror(e)} ({what} {path})" if path else os.strerror(e))

    def _fail(self, exc: OSError, what: str, slot: int) -> None:
        if self.err is None:
            self.err = (exc.errno or _errno.EIO, what, slot)

    def _job(self) -> int:
        self.seq += 1
        return self.seq

    def open(self, slot: int, path, create: bool) -> int:
        self._usable(slot)
        bpath = os.fsencode(path)
        if b"\0" in bpath:
            raise ValueError("embedded null byte in path")
        self.paths[slot] = os.fsdecode(bpath)
        flags = os.O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_BINARY | ((os.O_CREAT | os.O_EXCL) if create else 0)
        try:
            self.fds[slot] = os.open(bpath, flags, 0o644)
        except OSError as exc:
            self._fail(exc, "opening", slot)
        return self._job()

    def write(self, slot: int, pos: int, pieces: tuple, hasher=None) -> int:
        self._usable(slot)
        if pos < 0:
            raise ValueError("negative position")
        for p in pieces:
            if type(p) is not bytes:
                raise TypeError(f"pieces must be bytes, not {type(p).__name__}")
        if hasher is not None:
            for p in pieces:
                hasher.update(p)
        fd = self.fds[slot]
        try:
            if fd < 0:
                raise OSError(_errno.EIO, "not open")
            for p in pieces:
                view = memoryview(p)
                while view:
                    n = os.pwrite(fd, view, pos)
                    if n <= 0:
                        raise OSError(_errno.EIO, "write returned 0")
                    view = view[n:]
                    pos += n
        except OSError as exc:
            self._fail(exc, "writing", slot)
        return self._job()

    def close(self, slot: int) -> int:
        if self.stopped:
            raise ValueError("the export writer is stopped")
        if not 0 <= slot < self.max_open:
            raise ValueError(f"slot {slot} out of range (max_open {self.max_open})")
        fd, self.fds[slot] = self.fds[slot], -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError as exc:
                self._fail(exc, "closing", slot)
        return self._job()

    def place(self, tmp, stem, suffix, result: bytearray) -> int:
        """Link ``tmp`` to ``stem + suffix`` (or ``stem-K + suffix``, the first
        K free) and unlink it; ``result`` gets [errno, K] as native int32s."""
        if self.stopped:
            raise ValueError("the export writer is stopped")
        if len(result) != 8:
            raise ValueError("result must be a bytearray of 8 bytes")
        names = [os.fsencode(x) for x in (tmp, stem, suffix)]
        if any(b"\0" in b for b in names):
            raise ValueError("embedded null byte in path")
        self._check()
        tmp, stem, suffix = names
        err, k = _errno.EEXIST, 0
        for k in range(PLACE_TRIES):
            cand = stem + (b"-%d" % k if k else b"") + suffix
            try:
                os.link(tmp, cand, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                err = exc.errno or _errno.EIO
                break
            os.unlink(tmp)
            err = 0
            break
        struct.pack_into("=ii", result, 0, err, k)
        return self._job()

    def done(self) -> int:
        self._check()
        return self.seq

    def wait(self, seq: int = -1) -> None:
        self._check()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            for k, fd in enumerate(self.fds):
                if fd >= 0:
                    os.close(fd)
                    self.fds[k] = -1
        self._check()
