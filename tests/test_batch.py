"""fastdicom batch: the real captures (plus a corrupt file, a gzip copy and a
duplicate) into Parquet, locally and on a real dask.distributed LocalCluster;
DuckDB against the JSON summaries; resuming; workers that die or fail."""

import doctest
import gzip
import json
import logging
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from fastdicom import batch
from fastdicom.batch import BatchOptions, run_batch
from fastdicom.cli import main
from helpers import REAL, REAL_CAPTURES, summarize

duckdb = pytest.importorskip("duckdb", reason="duckdb comes with the 'batch' and 'test' extras")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow comes with the 'batch' and 'test' extras")

PORTS = tuple(sorted({p for n in REAL_CAPTURES
                      for p in json.loads((REAL / f"{n}.truth.json").read_text())["ports"]}))
OPTIONS = BatchOptions(ports=PORTS)
TIMING = ("seconds", "started", "finished", "worker")  # captures columns that differ run to run
HOW = TIMING + ("attempts", "partitions")  # ... and those that say how the batch ran
BIG = "big_store.pcap"
N_FOUND = len(REAL_CAPTURES) + 4  # + the gzip copy, the duplicate, the corrupt and the damaged files
N_OK = len(REAL_CAPTURES) + 2  # + the gzip copy and the damaged file (its damage is expert info)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The real captures in a folder, a gzip copy and a duplicate under a
    subfolder, a corrupt file and a file that is not a capture by its name."""
    d = tmp_path_factory.mktemp("inputs")
    for n in REAL_CAPTURES:
        shutil.copy(REAL / f"{n}.pcap", d / f"{n}.pcap")
    sub = d / "more" / "deeper"
    sub.mkdir(parents=True)
    (sub / "query_retrieve.pcap.gz").write_bytes(gzip.compress((REAL / "query_retrieve.pcap").read_bytes()))
    shutil.copy(REAL / "echo_dcmtk.pcap", sub / "echo_again.cap")  # same content: a duplicate
    (d / "corrupt.pcap").write_bytes(b"NOT A CAPTURE" + os.urandom(3000))  # fails
    (d / "damaged.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + os.urandom(3000))  # a pcap magic, then noise
    os.utime(d / "damaged.pcap", (1577923200, 1577923200))  # no DICOM in it: dated by the file, 2020-01-02
    (d / "notes.txt").write_text("not a capture")
    (d / ".hidden.pcap").write_bytes(b"")
    return d


@pytest.fixture(scope="module")
def summaries(inputs):
    """capture file name -> its JSON summary with the batch's options."""
    out = {}
    for p in batch.find_captures([inputs]):
        if not p.endswith("corrupt.pcap") and not p.endswith("echo_again.cap"):
            out[os.path.basename(p)] = summarize(p, ports=PORTS, heuristic=True)
    return out


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    result = run_batch([inputs], out, workers=2, options=OPTIONS)
    return out, result


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="dask[distributed] comes with the test extra")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as c:
        yield c


def q(sql):
    return duckdb.sql(sql).fetchall()


def table_rows(out, name, drop=()):
    """All rows of a table, in a stable order, without the ``drop`` columns."""
    cols = [r[0] for r in q(f"describe select * from '{out}/{name}/**/*.parquet'") if r[0] not in drop]
    sel = ", ".join(f'"{c}"' for c in cols)
    return cols, q(f"select {sel} from '{out}/{name}/**/*.parquet' order by all")


def assert_same_output(a, b):
    for name in batch.TABLES + ("captures",):
        drop = HOW if name == "captures" else ()
        ca, ra = table_rows(a, name, drop)
        cb, rb = table_rows(b, name, drop)
        assert ca == cb, name
        assert ra == rb, name
        assert len(ra) > 0, name


def parts(out):
    return sorted(str(p.relative_to(out)) for p in Path(out).rglob("*") if p.is_file())


# ------------------------------------------------------------------ inputs
def test_find_captures(inputs):
    found = [os.path.relpath(p, inputs) for p in batch.find_captures([inputs])]
    assert "notes.txt" not in found and ".hidden.pcap" not in found
    assert "more/deeper/query_retrieve.pcap.gz" in found and "more/deeper/echo_again.cap" in found
    assert len(found) == N_FOUND
    by_glob = batch.find_captures([str(inputs / "*_dcmtk.pcap"), str(inputs / "more" / "**" / "*.gz")])
    assert sorted(os.path.basename(p) for p in by_glob) == ["echo_dcmtk.pcap", "query_retrieve.pcap.gz",
                                                            "store_dcmtk.pcap"]
    # the same file twice, and a name that does not exist (reported as unreadable)
    one = batch.find_captures([inputs / "echo_dcmtk.pcap", str(inputs / "echo_dcmtk.pcap"),
                               inputs / "missing.pcap"])
    assert [os.path.basename(p) for p in one] == ["echo_dcmtk.pcap", "missing.pcap"]


def test_capture_id(tmp_path):
    p = tmp_path / "a.pcap"
    data = bytearray(os.urandom(5 << 20))
    p.write_bytes(data)
    ids = {batch.capture_id(str(p))}
    for where in (0, len(data) - 1, (1 << 20) + ((len(data) - (2 << 20)) // 17)):
        data[where] ^= 0xFF
        p.write_bytes(data)
        ids.add(batch.capture_id(str(p)))
        data[where] ^= 0xFF
    p.write_bytes(data + b"x")
    ids.add(batch.capture_id(str(p)))
    assert len(ids) == 5
    q_ = tmp_path / "b.pcap"
    q_.write_bytes(data)
    p.write_bytes(data)
    assert batch.capture_id(str(p)) == batch.capture_id(str(q_))


# ------------------------------------------------------------------- local
def test_local_batch(local_run, inputs, summaries):
    out, r = local_run
    assert (r.found, r.analysed, r.failed, r.duplicates, r.skipped) == (N_FOUND, N_OK, 1, 1, 0)
    rows = {row["capture"]: row for row in r.rows}
    bad = rows["corrupt.pcap"]
    assert bad["status"] == "error" and "corrupt.pcap" in bad["error"]
    assert rows["echo_dcmtk.pcap"]["duplicates"] == [str(inputs / "more" / "deeper" / "echo_again.cap")]
    assert rows["query_retrieve.pcap.gz"]["gzip"] is True
    # every table is a hive dataset partitioned by the capture's date, nothing left over
    files = parts(out)
    assert not [f for f in files if ".tmp" in f or "/." in f]
    for t in batch.TABLES:
        assert len([f for f in files if f.startswith(f"{t}/date=2026-11-27/part-")]) == N_OK - 1
        assert f"{t}/date=2020-01-02/part-{rows['damaged.pcap']['capture_id']}.parquet" in files
    assert len([f for f in files if f.startswith("captures/")]) == N_OK + 1
    assert rows["damaged.pcap"]["status"] == "ok" and rows["damaged.pcap"]["expert"] > 0


def test_duckdb_counts_equal_the_json_summaries(local_run, summaries):
    out, _ = local_run
    caps = {r[0]: r[1:] for r in q(f"select capture, status, sha256, associations, operations, objects, "
                                   f"expert, pdus from '{out}/captures/**/*.parquet'")}
    for name, doc in summaries.items():
        c = doc["counts"]
        n_expert = len(doc["expert"])
        assert caps[name][0] == "ok"
        assert caps[name][2:] == (c["associations"], c["operations"], c["objects"], n_expert, c["pdus"])
        for table, n in (("associations", c["associations"]), ("operations", c["operations"]),
                         ("objects", c["objects"]), ("expert", n_expert)):
            got = q(f"select count(*) from '{out}/{table}/**/*.parquet' where capture = '{name}'")[0][0]
            assert got == n, (name, table)
    plain = "query_retrieve.pcap"
    import hashlib
    assert caps[plain][1] == hashlib.sha256((REAL / plain).read_bytes()).hexdigest()
    # the README's query, against the summaries
    want = Counter()
    for doc in summaries.values():
        for a in doc["associations"]:
            want[a["calling_ae"]] += len(a["operations"])
    got = dict(q(f"select calling_ae, count(*) from '{out}/operations/**/*.parquet' group by 1"))
    assert got == {k: v for k, v in want.items() if v}
    # statuses per command, and the tables join on capture_id
    want = Counter((op["command"], op["status"]) for doc in summaries.values()
                   for a in doc["associations"] for op in a["operations"])
    got = q(f"select command, status, count(*) from '{out}/operations/**/*.parquet' group by all")
    assert Counter({(c, s): n for c, s, n in got}) == want
    joined = q(f"select count(*) from '{out}/operations/**/*.parquet' o join '{out}/associations/**/*.parquet' a "
               f"on o.capture_id = a.capture_id and o.association = a.id and o.calling_ae = a.calling_ae")
    assert joined[0][0] == sum(want.values())


def test_duckdb_types(local_run):
    out, _ = local_run
    types = dict((r[0], r[1]) for r in q(f"describe select * from '{out}/operations/**/*.parquet'"))
    assert types["status"] == "USMALLINT" and types["request_time"].startswith("TIMESTAMP")
    assert "TIME ZONE" in types["request_time"] or types["request_time"] == "TIMESTAMPTZ_NS"
    assert types["dataset_bytes"] == "BIGINT" and types["capture_id"] == "VARCHAR"
    assert types["date"] == "DATE"
    n = q(f"select count(*) from '{out}/operations/**/*.parquet' where status is null")[0][0]
    assert n > 0  # unanswered operations


def test_resume(local_run, inputs, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(local_run[0], out)
    before = parts(out)
    r = run_batch([inputs], out, workers=2, options=OPTIONS)
    # done captures skipped; the failed one tried again
    assert (r.analysed, r.skipped, r.failed) == (0, N_OK, 1)
    assert parts(out) == before
    # a new capture: only it is analysed
    extra = tmp_path / "extra"
    extra.mkdir()
    data = bytearray((REAL / "nservices.pcap").read_bytes())
    (extra / "new.pcap").write_bytes(data + data[24:])  # its records twice: new content
    r = run_batch([inputs, extra], out, workers=2, options=OPTIONS)
    assert (r.analysed, r.skipped, r.failed) == (1, N_OK, 1)
    assert [row["capture"] for row in r.rows if row["status"] == "ok"] == ["new.pcap"]
    # other options: everything again, each capture still once in every table
    r = run_batch([inputs, extra], out, workers=2, options=BatchOptions(ports=PORTS, heuristic=False))
    assert (r.analysed, r.skipped) == (N_OK + 1, 0)
    dupes = q(f"select capture_id, count(*) from '{out}/captures/**/*.parquet' group by 1 having count(*) > 1")
    assert dupes == []
    for t in batch.TABLES:  # one part per capture, replaced
        assert len([f for f in parts(out) if f.startswith(f"{t}/")]) == N_OK + 1


def test_cli_batch(inputs, tmp_path, capsys):
    out = tmp_path / "cli"
    ports = ", ".join(map(str, PORTS))
    code = main(["batch", str(inputs / "*_dcmtk.pcap"), "-o", str(out), "--workers", "2", "--ports", ports])
    err = capsys.readouterr().err
    assert code == 0 and "2 captures: 2 analysed" in err
    code = main(["batch", str(inputs), "-o", str(out), "--workers", "1", "--ports", ports])
    err = capsys.readouterr().err
    assert code == 1
    assert "2 already done" in err and "1 failed" in err and "corrupt.pcap: " in err
    assert main(["batch", str(tmp_path / "nothing-*.pcap"), "-o", str(out)]) == 2
    assert "no captures found" in capsys.readouterr().err
    assert main(["batch", str(inputs), "-o", str(out), "--ports", "0"]) == 2
    split = tmp_path / "cli-split"
    code = main(["batch", str(inputs / "*_dcmtk.pcap"), "-o", str(split), "--workers", "2", "--ports", ports,
                 "--partition-bytes", "1K"])
    assert code == 0 and "2 captures: 2 analysed" in capsys.readouterr().err
    assert q(f"select distinct partitions from '{split}/captures/**/*.parquet'") == [(2,)]
    assert q(f"select count(*) from '{split}/operations/**/*.parquet'") == \
        q(f"select count(*) from '{out}/operations/**/*.parquet' where capture like '%_dcmtk.pcap'")
    assert main(["batch", str(inputs), "-o", str(split), "--partition-bytes", "lots"]) == 2


def test_export(inputs, tmp_path):
    out = tmp_path / "exp"
    r = run_batch([inputs / "query_retrieve.pcap", inputs / "store_syntaxes.pcap"], out, workers=1,
                  options=BatchOptions(ports=PORTS, export=True))
    assert r.failed == 0
    for row in r.rows:
        folder = out / "files" / row["capture_id"]
        dcm = list(folder.rglob("*.dcm"))
        assert row["exported"] == len(dcm) > 0
        assert (folder / "manifest.jsonl").exists()
    assert not [p for p in (out / "files").iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------ failures
class DieOnce:
    """Task wrapper: the first time it meets ``victim``, write the parts and
    kill the worker process before the result gets back (a marker file makes
    it once across processes)."""

    def __init__(self, victim, marker):
        self.victim, self.marker = victim, str(marker)

    def __call__(self, job):
        row = batch.process(job)
        if os.path.basename(job.path) == self.victim:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return row
            os.close(fd)
            os._exit(1)
        return row


class FailOnce(DieOnce):
    """Task wrapper: raise the first time it meets ``victim``."""

    def __call__(self, job):
        if os.path.basename(job.path) == self.victim:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return batch.process(job)
            os.close(fd)
            raise OSError("injected: shared storage went away")
        return batch.process(job)


class AlwaysDie(DieOnce):
    def __call__(self, job):
        if os.path.basename(job.path) == self.victim:
            os._exit(3)
        return batch.process(job)


def test_local_worker_killed(local_run, inputs, tmp_path):
    out = tmp_path / "killed"
    marker = tmp_path / "died"
    r = run_batch([inputs], out, workers=2, options=OPTIONS, task=DieOnce(BIG, marker))
    assert marker.exists()
    assert (r.analysed, r.failed) == (N_OK, 1)
    assert {row["capture"]: row["attempts"] for row in r.rows}[BIG] == 2
    assert_same_output(local_run[0], out)


def test_local_worker_killed_in_a_partition(local_run, inputs, tmp_path):
    out = tmp_path / "killed-partition"
    marker = tmp_path / "died"
    r = run_batch([inputs], out, workers=2, options=OPTIONS, task=DieOnce(BIG, marker),
                  partition_bytes=1)
    assert marker.exists()
    rows = {row["capture"]: row for row in r.rows}
    assert (r.analysed, r.failed) == (N_OK, 1)
    assert rows[BIG]["partitions"] == 2 and rows[BIG]["attempts"] == 2
    assert_same_output(local_run[0], out)


def test_local_worker_always_dies(inputs, tmp_path):
    out = tmp_path / "dies"
    names = ["echo_dcmtk.pcap", "negotiation.pcap", "nservices.pcap", "multi_pdv.pcap"]
    r = run_batch([inputs / n for n in names], out, workers=2, options=OPTIONS,
                  task=AlwaysDie("negotiation.pcap", tmp_path / "unused"))
    rows = {row["capture"]: row for row in r.rows}
    assert rows["negotiation.pcap"]["status"] == "error"
    assert "died 3 times" in rows["negotiation.pcap"]["error"]
    # the others were in flight with it, but never charged
    assert all(rows[n]["status"] == "ok" for n in names if n != "negotiation.pcap")
    assert q(f"select count(*) from '{out}/captures/**/*.parquet'")[0][0] == 4


def test_dask_output_identical_to_local(cluster, local_run, inputs, tmp_path):
    out = tmp_path / "dask"
    r = run_batch([inputs], out, dask=cluster.scheduler_address, options=OPTIONS)
    assert (r.analysed, r.failed, r.duplicates) == (N_OK, 1, 1)
    workers = {row["worker"] for row in r.rows if row["worker"]}
    assert len(workers) == 2  # both worker processes took captures
    assert {row["partitions"] for row in r.rows} == {1}  # small captures: one task each
    assert_same_output(local_run[0], out)
    assert parts(out) == parts(local_run[0])
    # resumed on Dask: nothing to do
    r = run_batch([inputs], out, dask=cluster.scheduler_address, options=OPTIONS)
    assert (r.analysed, r.skipped) == (0, N_OK)


def test_dask_connection_partitions_identical_to_local(cluster, local_run, inputs, tmp_path):
    """Every uncompressed capture split by connection into one task per
    worker plus a merge task: the same tables as one task per capture."""
    out = tmp_path / "dask-partitions"
    r = run_batch([inputs], out, dask=cluster.scheduler_address, options=OPTIONS, partition_bytes=1)
    assert (r.analysed, r.failed, r.duplicates) == (N_OK, 1, 1)
    split = {row["capture"]: row["partitions"] for row in r.rows}
    assert split["query_retrieve.pcap.gz"] == 1  # compressed: read once, one task
    assert split[BIG] == 2 and sum(n == 2 for n in split.values()) == len(REAL_CAPTURES) + 2
    workers = {w for row in r.rows if row["worker"] for w in row["worker"].split(",")}
    assert len(workers) == 2
    assert_same_output(local_run[0], out)
    assert parts(out) == parts(local_run[0])  # no staging left behind


def test_local_connection_partitions_on_damaged_traffic(tmp_path):
    """Shares merged in the order of one decoder even where reordered, lost and
    duplicated segments decide when a data set appears, and whatever the
    number of shares."""
    from mutations import mutate

    d = tmp_path / "in"
    d.mkdir()
    for name in ("concurrent", "query_retrieve", "big_store", "multi_pdv"):
        data = (REAL / f"{name}.pcap").read_bytes()
        for mode in ("reorder", "drop", "dup", "midstream"):
            (d / f"{name}_{mode}.pcap").write_bytes(mutate(data, mode))
    one = tmp_path / "one"
    r = run_batch([d], one, workers=1, options=OPTIONS)
    assert r.analysed == 16 and {row["partitions"] for row in r.rows} == {1}
    for n in (2, 3):
        out = tmp_path / f"split{n}"
        r = run_batch([d], out, workers=n, options=OPTIONS, partition_bytes=1)
        assert r.analysed == 16 and {row["partitions"] for row in r.rows} == {n}
        assert_same_output(one, out)
        assert not (out / batch.STAGING).exists()
    # the order of appearance needs the engine's release frames: the frame
    # that ended an object's first PDU is not enough on these captures
    objs = q(f"select capture, index, frame_first from '{one}/objects/**/*.parquet'")
    by_frame = {}
    for cap, index, frame in objs:
        by_frame.setdefault(cap, []).append((frame, index))
    assert any([i for _, i in sorted(v)] != sorted(i for _, i in v) for v in by_frame.values())


def test_partition_failure_is_one_error_row(inputs, tmp_path):
    out = tmp_path / "bad"
    r = run_batch([inputs / "corrupt.pcap", inputs / "echo_dcmtk.pcap"], out, workers=2,
                  options=OPTIONS, partition_bytes=1)
    rows = {row["capture"]: row for row in r.rows}
    assert rows["corrupt.pcap"]["status"] == "error" and rows["corrupt.pcap"]["partitions"] == 2
    assert rows["corrupt.pcap"]["error"].startswith("corrupt.pcap: ")
    assert rows["echo_dcmtk.pcap"]["status"] == "ok"
    assert q(f"select count(*) from '{out}/captures/**/*.parquet'")[0][0] == 2
    assert not (out / batch.STAGING).exists()


def test_dask_worker_killed_and_task_failing(cluster, local_run, inputs, tmp_path):
    from distributed import Client

    out = tmp_path / "dask-killed"
    killed, failed = tmp_path / "killed", tmp_path / "failed"
    with Client(cluster.scheduler_address) as client:
        pids_before = set(client.run(os.getpid).values())
        # split by connection: a share's worker dies after writing its tables
        r = run_batch([inputs], out, dask=client, options=OPTIONS, task=DieOnce(BIG, killed),
                      partition_bytes=1)
        assert killed.exists()
        assert (r.analysed, r.failed) == (N_OK, 1)
        client.wait_for_workers(2, timeout=60)
        assert set(client.run(os.getpid).values()) != pids_before  # a new worker process
        assert_same_output(local_run[0], out)
        out2 = tmp_path / "dask-failed"
        r = run_batch([inputs], out2, dask=client, options=OPTIONS, task=FailOnce(BIG, failed))
        assert failed.exists()
        assert (r.analysed, r.failed) == (N_OK, 1)
        assert_same_output(local_run[0], out2)


def test_batch_docstring_examples():
    result = doctest.testmod(batch, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0
