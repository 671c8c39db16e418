"""``fastdicom batch`` over many captures: local processes at 1 and 2 workers.

Run with ``pytest benchmarks/test_bench_batch.py --benchmark-only -s``.  The
captures (default: 20 files of about 100 MiB, 2 GiB in all) are made by
``make_capture.generate`` with seeds 1..N and cached under
``benchmarks/.cache/batch_<size>_<files>_<generator hash>/``.  Each round writes
a fresh output folder (no resume).  Every benchmark reports ``extra_info``:
``capture_bytes``, ``files``, ``workers``, ``MB/s`` (capture bytes / 10^6 per
second of the mean round) and ``speedup`` (2 workers against 1, once both ran),
and prints them.  The output is checked against the truth files with DuckDB.

Figures on the 2-core development machine (2026-11-27), 20 captures of 2.15 GB
in all, read from the page cache, 2 rounds, fresh output each round:

    core        workers  seconds  MB/s   speedup
    compiled    1         4.24    507.5
    compiled    2         2.28    941.3  1.86
    pure Python 1        44.42     48.4
    pure Python 2        23.31     92.3  1.91

Environment:
    FASTDICOM_BENCH_BATCH_SIZE   total size (default ``2G``)
    FASTDICOM_BENCH_BATCH_FILES  number of captures (default 20)
    FASTDICOM_BENCH_CACHE, FASTDICOM_BENCH_ROUNDS  as for the other benchmarks
"""

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

import make_capture
from fastdicom.batch import BatchOptions, run_batch

HERE = Path(__file__).resolve().parent
SIZE = make_capture.parse_size(os.environ.get("FASTDICOM_BENCH_BATCH_SIZE", "2G"))
FILES = int(os.environ.get("FASTDICOM_BENCH_BATCH_FILES", "20"))
_results = {}


@pytest.fixture(scope="module")
def captures():
    """The folder of generated captures and their truth dicts (made once, then cached)."""
    cache = Path(os.environ.get("FASTDICOM_BENCH_CACHE", HERE / ".cache"))
    source = hashlib.sha256(Path(make_capture.__file__).read_bytes()).hexdigest()[:10]
    folder = cache / f"batch_{SIZE}_{FILES}_{source}"
    folder.mkdir(parents=True, exist_ok=True)
    ignore = cache / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    truths = {}
    t0 = time.perf_counter()
    for k in range(1, FILES + 1):
        pcap, truth = folder / f"capture_{k:03d}.pcap", folder / f"capture_{k:03d}.truth.json"
        if not (pcap.exists() and truth.exists()):
            tmp = folder / f".capture_{k:03d}.{os.getpid()}.tmp"
            t = make_capture.generate(tmp, SIZE // FILES, seed=k)
            t["capture"] = pcap.name
            truth.write_text(json.dumps(t) + "\n")
            os.replace(tmp, pcap)
        truths[pcap.name] = json.loads(truth.read_text())
    made = time.perf_counter() - t0
    if made > 1:
        print(f"\ngenerated {FILES} captures in {made:.1f} s", file=sys.stderr)
    return folder, truths


def _check(out, truths):
    import duckdb

    rows = duckdb.sql(f"select capture, status, objects, operations from '{out}/captures/**/*.parquet'").fetchall()
    assert len(rows) == len(truths)
    for name, status, objects, operations in rows:
        t = truths[name]
        assert status == "ok", name
        assert objects == len(t["received"]) and operations == len(t["operations"]), name
    n = duckdb.sql(f"select count(*) from '{out}/operations/**/*.parquet' where status = 0").fetchall()[0][0]
    assert n == sum(len(t["operations"]) for t in truths.values())


def _fresh_outputs(tmp_path, stem):
    """A pytest-benchmark ``setup`` giving each round a fresh output folder,
    and the list of those folders."""
    outs = []

    def setup():
        out = tmp_path / f"{stem}{len(outs)}"
        shutil.rmtree(out, ignore_errors=True)
        outs.append(out)
        return (out,), {}

    return outs, setup


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_local(benchmark, captures, rounds, tmp_path, workers):
    folder, truths = captures
    size = sum(p.stat().st_size for p in folder.glob("*.pcap"))
    outs, setup = _fresh_outputs(tmp_path, "out")

    def run(out):
        return run_batch([folder], out, workers=workers, options=BatchOptions(ports=(11112,)),
                         progress=False)

    result = benchmark.pedantic(run, setup=setup, rounds=rounds, warmup_rounds=0)
    assert (result.analysed, result.failed) == (FILES, 0)
    _check(outs[-1], truths)
    info = {"capture_bytes": size, "files": FILES, "workers": workers}
    if benchmark.stats:  # None under --benchmark-disable
        mean = benchmark.stats["mean"]
        info["MB/s"] = round(size / mean / 1e6, 1)
        info["seconds"] = round(mean, 2)
        _results[workers] = mean
        if 1 in _results and 2 in _results:
            info["speedup"] = round(_results[1] / _results[2], 2)
    benchmark.extra_info.update(info)
    print(f"\nbatch, {workers} worker(s): {FILES} captures, {size / 1e9:.2f} GB: "
          + ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("workers", "files")))


@pytest.mark.parametrize("split", [False, True], ids=["one-task", "partitions"])
def test_batch_one_big_capture(benchmark, capture, rounds, tmp_path, split):
    """One capture (``FASTDICOM_BENCH_SIZE``), 2 workers: one task, or one task
    per connection partition (2) and the merge; the tables must not differ."""
    import duckdb

    outs, setup = _fresh_outputs(tmp_path, "big")

    def run(out):
        return run_batch([capture.path], out, workers=2, options=BatchOptions(ports=(11112,)),
                         progress=False, partition_bytes=1 if split else 0)

    result = benchmark.pedantic(run, setup=setup, rounds=rounds, warmup_rounds=0)
    assert result.analysed == 1 and result.rows[0]["partitions"] == (2 if split else 1)
    _check(outs[-1], {capture.path.name: capture.truth})
    rows = duckdb.sql(f"select * exclude (capture_id) from '{outs[-1]}/objects/**/*.parquet' "
                      "order by index").fetchall()
    key = f"big-{split}"
    _results[key] = rows
    if "big-True" in _results and "big-False" in _results:
        assert _results["big-True"] == _results["big-False"]
    info = {"capture_bytes": capture.size, "partitions": 2 if split else 1}
    if benchmark.stats:
        mean = benchmark.stats["mean"]
        info["MB/s"] = round(capture.size / mean / 1e6, 1)
        info["seconds"] = round(mean, 2)
    benchmark.extra_info.update(info)
    print(f"\nbatch of one capture, {'2 partitions' if split else 'one task'}: {capture.size / 1e9:.2f} GB: "
          + ", ".join(f"{k} {v}" for k, v in info.items()))
