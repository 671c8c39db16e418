"""A progress bar on standard error for large captures (bytes, MB/s, ETA).

Shown only when standard error is a terminal and the input is over 50 MB, so
it never mixes into machine-readable output.  It is updated once per 4 MiB
chunk, which keeps its cost negligible.
"""

from __future__ import annotations

import os
import sys

THRESHOLD = 50 * 1000 * 1000


class Progress:
    def __init__(self, total: int):
        from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress,
                                   TimeRemainingColumn, TransferSpeedColumn)
        from rich.console import Console

        self._p = RichProgress(BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                               TimeRemainingColumn(), console=Console(file=sys.stderr),
                               transient=True, refresh_per_second=4)
        self._task = self._p.add_task("reading", total=total)
        self._seen = {}
        self._p.start()

    @classmethod
    def maybe(cls, names, threshold: int = THRESHOLD):
        total = 0
        for n in names:
            if n == "-":
                return None
            try:
                total += os.path.getsize(n)
            except OSError:
                return None
        return cls(total) if total > threshold else None

    def __call__(self, info):
        prev = self._seen.get(info.name, 0)
        # compressed input advances by bytes read from disk would be better; the
        # decompressed count overshoots, so clamp to the total
        self._seen[info.name] = info.read_bytes
        self._p.advance(self._task, info.read_bytes - prev)

    def set_read(self, n: int):
        """Bytes read so far over all captures (several workers: the slowest one)."""
        self._p.update(self._task, completed=n)

    def close(self):
        self._p.stop()
