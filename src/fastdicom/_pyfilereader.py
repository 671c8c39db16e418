"""Pure-Python twin of ``_filereader``: the same calls, the bytes read in
turn on the calling thread (no thread, no read-ahead)."""

from __future__ import annotations

import os

IMPLEMENTATION = "python"
MAX_DEPTH = 64


class ReadAhead:
    """``ReadAhead(fd, size, depth, engine=None)``: the bytes of ``fd`` from
    its current position to its end, in chunks of at most ``size`` bytes;
    or, given a core engine, fed to it chunk by chunk (``next_events()``)."""

    def __init__(self, fd: int, size: int = 1 << 20, depth: int = 4, engine=None,
                 queue_bytes: int = 32 << 20) -> None:
        if size < 1 or not 2 <= depth <= MAX_DEPTH:
            raise ValueError(f"need size >= 1 and 2 <= depth <= {MAX_DEPTH}")
        self.fd = fd
        self.buffer = bytearray(size)
        self.closed = False
        self.done = False
        self.engine = engine

    def next_chunk(self) -> memoryview | None:
        """A memoryview of the next bytes read, or None at the end of the
        file.  The chunk returned before must no longer be used."""
        if self.engine is not None:
            raise ValueError("this reader walks an engine: use next_events()")
        return self._read()

    def next_events(self) -> tuple[int, list] | None:
        """``(nbytes, events)`` for the next chunk fed to the engine, or None
        at the end of the file."""
        if self.engine is None:
            raise ValueError("this reader walks no engine: use next_chunk()")
        part = self._read()
        if part is None:
            return None
        with part:
            self.engine.feed(part)
            return len(part), self.engine.pop_events()

    def _read(self) -> memoryview | None:
        if self.closed:
            raise ValueError("the reader is closed")
        if self.done:
            return None
        n = os.readv(self.fd, [self.buffer])  # retried after signals (PEP 475)
        if n == 0:
            self.done = True
            return None
        return memoryview(self.buffer)[:n]

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
