"""Benchmark fixtures: one generated capture per session, cached on disk.

Environment:
    FASTDICOM_BENCH_SIZE   capture size for make_capture (default ``200M``)
    FASTDICOM_BENCH_SEED   generator seed (default 0)
    FASTDICOM_BENCH_CACHE  folder for generated captures (default benchmarks/.cache,
                           which ignores itself in git)
    FASTDICOM_BENCH_ROUNDS rounds per benchmark (default 3)

A capture is regenerated only when its size, seed or the generator's source
change (the file name carries all three).
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_capture  # noqa: E402

ROUNDS = int(os.environ.get("FASTDICOM_BENCH_ROUNDS", "3"))


class Capture:
    """A generated capture: ``path``, ``size`` (bytes) and ``truth`` (dict)."""

    def __init__(self, path: Path, truth: dict):
        self.path = path
        self.size = path.stat().st_size
        self.truth = truth

    def __repr__(self):
        return f"Capture({self.path}, {self.size} bytes)"


def _build(size_text: str, seed: int, cache: Path) -> Capture:
    size = make_capture.parse_size(size_text)
    source = hashlib.sha256(Path(make_capture.__file__).read_bytes()).hexdigest()[:10]
    stem = f"bench_{size}_{seed}_{source}"
    pcap, truth = cache / f"{stem}.pcap", cache / f"{stem}.truth.json"
    if not (pcap.exists() and truth.exists()):
        make_capture.cache_folder(cache)
        tmp = cache / f"{stem}.{os.getpid()}.tmp"
        t = make_capture.generate(tmp, size, seed=seed)
        t["capture"] = pcap.name
        truth.write_text(json.dumps(t, indent=1) + "\n")
        os.replace(tmp, pcap)
    return Capture(pcap, json.loads(truth.read_text()))


@pytest.fixture(scope="session")
def capture() -> Capture:
    """The session's generated capture (built once, then reused from the cache)."""
    cache = Path(os.environ.get("FASTDICOM_BENCH_CACHE", HERE / ".cache"))
    return _build(os.environ.get("FASTDICOM_BENCH_SIZE", "200M"),
                  int(os.environ.get("FASTDICOM_BENCH_SEED", "0")), cache)


@pytest.fixture(scope="session")
def rounds() -> int:
    return ROUNDS
