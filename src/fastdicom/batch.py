"""Batch runs: many captures into Parquet datasets, on local processes or Dask.

``fastdicom batch INPUT... -o OUTDIR`` (or :func:`run_batch`) analyses each
capture as ``fastdicom summary`` does and writes, per capture, one Parquet
part to each of four datasets, partitioned by the capture's date (UTC day of
its first DICOM packet; the file's modification day when it has none)::

    OUTDIR/associations/date=2026-11-27/part-<capture_id>.parquet
    OUTDIR/operations/date=2026-11-27/part-<capture_id>.parquet
    OUTDIR/objects/...   OUTDIR/expert/...
    OUTDIR/captures/date=2026-11-27/part-<capture_id>.parquet   (written by the driver)
    OUTDIR/files/<capture_id>/...                                (--export)

Every row starts with ``capture_id`` and ``capture`` (the file's name), so the
tables join; ``captures`` has one row per distinct capture with its status
("ok" or "error"), error text, sizes, counts, timings and options.  The
columns and types are those of :meth:`fastdicom.Capture.tables`.  DuckDB reads
it all at once::

    duckdb -c "select calling_ae, count(*) from 'OUTDIR/operations/**/*.parquet' group by 1"

The capture ID
--------------
``capture_id`` is a fast content hash: SHA-256 (first 32 hex digits) of the
file's size, its first and last MiB and 16 evenly spaced 64 KiB samples, so
that a resumed run can decide what is done without reading every byte of
every file.  The full SHA-256 of the capture's bytes (after gunzip) is
computed while the capture is analysed and stored in ``captures.sha256``.

Resuming
--------
A capture is skipped when ``captures`` already holds an "ok" row for its ID
made with the same options (ports, heuristic, export, table layout).  Failed
captures are tried again.  Files with the same content are analysed once (the
other paths are listed in ``captures.duplicates``).

Big captures
------------
An uncompressed capture of ``partition_bytes`` (256 MiB) or more is analysed
by several tasks, at most one per worker, each taking the connections it
owns (the least loaded share at a connection's first packet, decided alike
by all: ``Engine(partition=...)``; :func:`process_partition`; each reads the whole file
as ``summary --workers`` does), and one more computes the
file's SHA-256 beside them (:func:`hash_capture`).  A last task
(:func:`merge_partitions`; on Dask it depends on the shares, locally the
driver runs it) puts the shares' tables in the order and numbering one task
gives (associations by the frame that completed their first PDU, objects
numbered in the order the engine released their first bytes), so the output
is the same however a capture was split; ``captures.partitions`` says how
many shares there were.  With ``export``, a capture is one task.

Failures
--------
A capture that cannot be read or analysed becomes an "error" row; the batch
goes on.  Parts are written under a temporary name and renamed, and a task
rewrites all of its capture's parts, so a task run twice (a Dask retry after
a worker died, a local pool rebuilt after a worker process died) leaves the
same output.  A capture whose task killed its worker three times is recorded
as an error.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import socket
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from . import __version__
from .errors import FastDicomError

if TYPE_CHECKING:
    import pyarrow

__all__ = ["BatchOptions", "BatchResult", "Job", "run_batch", "find_captures", "capture_id",
           "process", "process_partition", "hash_capture", "merge_partitions", "captures_schema", "TABLES",
           "SUFFIXES", "PARTITION_BYTES"]

TABLES = ("associations", "operations", "objects", "expert")
SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")
LAYOUT_VERSION = 2  # bump when a table's columns change: captures are then redone
MAX_ATTEMPTS = 3  # worker deaths a capture may cause before it is recorded as failed
PARTITION_BYTES = 256 << 20  # captures this big are split by connection over the workers
STAGING = ".partitions"  # OUTDIR/.partitions/<capture_id>/<k>-of-<n>/<table>.parquet
_HEAD = 1 << 20
_SAMPLES, _SAMPLE = 16, 64 << 10


class BatchError(FastDicomError):
    """A batch that cannot start (no inputs, an unusable output folder)."""


@dataclass(frozen=True)
class BatchOptions:
    """Analysis options of a batch (part of what makes a capture "done")."""

    ports: tuple[int, ...] = (104, 11112)
    heuristic: bool = True
    export: bool = False

    def key(self) -> str:
        """The options as stored in ``captures.options``."""
        return json.dumps({"ports": sorted(set(self.ports)), "heuristic": self.heuristic,
                           "export": self.export, "layout": LAYOUT_VERSION}, sort_keys=True)


@dataclass(frozen=True)
class Job:
    """One task: analyse ``path`` into ``outdir``."""

    path: str
    capture_id: str
    outdir: str
    options: BatchOptions
    size: int = 0
    mtime: float = 0.0
    part: tuple[int, int] = (0, 1)  # (k, n): share k of n of the capture's connections


@dataclass
class BatchResult:
    """What a batch did; ``rows`` are the captures rows written this run."""

    found: int = 0
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    duplicates: int = 0
    bytes: int = 0
    seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------ inputs
def find_captures(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files named on the command line, capture files under folders
    (recursively: *.pcap, *.pcapng, *.cap, *.gz) and glob matches; sorted,
    each real file once.  A name that matches nothing is kept, so that it is
    reported as unreadable."""
    out: dict[str, str] = {}

    def add(p: str) -> None:
        out.setdefault(os.path.realpath(p), os.path.abspath(p))

    for item in inputs:
        s = os.fspath(item)
        if os.path.isdir(s):
            for root, dirs, names in os.walk(s):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for n in sorted(names):
                    if n.lower().endswith(SUFFIXES) and not n.startswith("."):
                        add(os.path.join(root, n))
        elif os.path.exists(s):
            add(s)
        elif glob.has_magic(s):
            for m in sorted(glob.glob(s, recursive=True)):
                if os.path.isfile(m):
                    add(m)
                elif os.path.isdir(m):
                    out.update((os.path.realpath(p), p) for p in find_captures([m]))
        else:
            add(s)
    return sorted(out.values())


def capture_id(path: str, size: int | None = None) -> str:
    """The fast content hash of a file (see the module docstring)."""
    h = hashlib.sha256(b"fastdicom-capture-id-1\0")
    with open(path, "rb") as f:
        if size is None:
            size = os.fstat(f.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        h.update(f.read(_HEAD))
        if size > 2 * _HEAD:
            step = (size - 2 * _HEAD) // (_SAMPLES + 1)
            for k in range(1, _SAMPLES + 1):
                f.seek(_HEAD + k * step)
                h.update(f.read(_SAMPLE))
        if size > _HEAD:
            f.seek(max(_HEAD, size - _HEAD))
            h.update(f.read(_HEAD))
    return h.hexdigest()[:32]


def _path_id(path: str) -> str:
    return hashlib.sha256(b"fastdicom-path\0" + os.fsencode(path)).hexdigest()[:32]


# ------------------------------------------------------------------ schema
def captures_schema() -> pyarrow.Schema:
    """Columns of the ``captures`` table."""
    import pyarrow as pa

    ts = pa.timestamp("ns", tz="UTC")
    return pa.schema([
        ("capture_id", pa.string()), ("capture", pa.string()), ("path", pa.string()),
        ("status", pa.string()), ("error", pa.string()), ("size", pa.int64()),
        ("sha256", pa.string()), ("gzip", pa.bool_()), ("read_bytes", pa.int64()),
        ("format", pa.string()), ("frames", pa.int64()), ("associations", pa.int64()),
        ("operations", pa.int64()), ("objects", pa.int64()), ("objects_complete", pa.int64()),
        ("expert", pa.int64()), ("pdus", pa.int64()), ("time_first", ts), ("time_last", ts),
        ("exported", pa.int64()), ("options", pa.string()), ("fastdicom", pa.string()),
        ("seconds", pa.float64()), ("started", ts), ("finished", ts), ("worker", pa.string()),
        ("attempts", pa.int64()), ("duplicates", pa.list_(pa.string())), ("partitions", pa.int64()),
    ])


def _date(ns: int | None, mtime: float) -> str:
    if ns is not None:
        return datetime.fromtimestamp(ns // 10**9, tz=timezone.utc).strftime("%Y-%m-%d")
    return datetime.fromtimestamp(mtime, tz=timezone.utc).strftime("%Y-%m-%d")


def _row(job: Job, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {n: None for n in captures_schema().names}
    row.update(capture_id=job.capture_id, capture=os.path.basename(job.path), path=job.path,
               size=job.size, options=job.options.key(), fastdicom=__version__, attempts=1,
               duplicates=[], partitions=job.part[1])
    row.update(kw)
    return row


# ------------------------------------------------------------ Parquet parts
def _write_part(outdir: str, table_name: str, date: str, cid: str, table: pyarrow.Table) -> None:
    """Write one part under a temporary name, rename it, remove the capture's
    parts under other dates (idempotent)."""
    folder = os.path.join(outdir, table_name, f"date={date}")
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, f"part-{cid}.parquet")
    _write_parquet(table, final)
    _remove_parts(outdir, table_name, cid, keep=final)


def _write_parquet(table: pyarrow.Table, final: str) -> None:
    """Write under a temporary name in the same folder, then rename."""
    import pyarrow.parquet as pq

    head, tail = os.path.split(final)
    tmp = os.path.join(head, f".{tail}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)
    except BaseException:
        _unlink(tmp)
        raise


def _remove_parts(outdir: str, table_name: str, cid: str, keep: str | None = None) -> None:
    for p in glob.glob(os.path.join(glob.escape(os.path.join(outdir, table_name)), "date=*",
                                    f"part-{cid}.parquet")):
        if keep is None or os.path.abspath(p) != os.path.abspath(keep):
            _unlink(p)


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _write_capture_row(outdir: str, row: dict[str, Any]) -> None:
    import pyarrow as pa

    date = row.pop("_date", None) or _date(row.get("time_first"), time.time())
    table = pa.Table.from_pylist([row], schema=captures_schema())
    _write_part(outdir, "captures", date, row["capture_id"], table)


# -------------------------------------------------------------------- task
def process(job: Job) -> dict[str, Any]:
    """Analyse one capture and write its parts: the task run by workers.

    Returns the capture's ``captures`` row (with ``_date``: its partition).
    A capture that cannot be read or analysed gives an "error" row; failures
    to write the output raise (so that Dask retries the task).
    """
    from . import api

    if job.part[1] > 1:
        return hash_capture(job) if job.part[0] == job.part[1] else process_partition(job)
    started = time.time_ns()
    t0 = time.perf_counter()
    worker = _worker_name()
    opts = job.options
    try:
        cap = api.open(job.path, opts.ports, opts.heuristic, name=os.path.basename(job.path))
        sha = hashlib.sha256()
        an = cap._analyse(tap=sha.update)
        tables = api._tables(cap, {"capture_id": job.capture_id})
        exported = _export(cap, job) if opts.export else None
    except Exception as exc:  # noqa: BLE001 - any failure on one capture is recorded, never raised
        for name in TABLES:
            _remove_parts(job.outdir, name, job.capture_id)
        return _row(job, status="error", error=_failure(job, exc), seconds=time.perf_counter() - t0,
                    started=started, finished=time.time_ns(), worker=worker,
                    _date=_date(None, job.mtime))
    dec, info = an.decoder, an.info
    date = _date(dec.first_time, job.mtime)
    for name in TABLES:
        _write_part(job.outdir, name, date, job.capture_id, tables[name])
    ops = sum(len(a.operations) for a in dec.associations)
    stats = info.stats or {}
    cap.close()
    return _row(job, status="ok", sha256=sha.hexdigest(), gzip=info.compressed,
                read_bytes=info.read_bytes, format=stats.get("format"), frames=stats.get("frames"),
                associations=len(dec.associations), operations=ops, objects=len(dec.objects),
                objects_complete=sum(1 for t in dec.objects if t.complete),
                expert=len(dec.expert), pdus=dec.pdu_count, time_first=dec.first_time,
                time_last=dec.last_time, exported=exported, seconds=time.perf_counter() - t0,
                started=started, finished=time.time_ns(), worker=worker, _date=date)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _failure(job: Job, exc: Exception) -> str:
    """The ``captures.error`` text of an analysis that failed."""
    msg = str(exc) if isinstance(exc, FastDicomError) else f"{type(exc).__name__}: {exc}"
    name = os.path.basename(job.path)
    return msg if msg.startswith(name + ":") else f"{name}: {msg}"


# ------------------------------------------------------ connection partitions
def process_partition(job: Job) -> dict[str, Any]:
    """Analyse share ``k`` of ``n`` of a capture's connections (``job.part``):
    the task run per partition of a big capture.

    Each share reads the whole file and decodes the connections it
    owns (as ``summary --workers``); share 0 alone reports the
    file's own conditions (the SHA-256 of the file is a task of its own,
    :func:`hash_capture`, so that it runs beside the shares).  Its tables go to
    ``OUTDIR/.partitions/<capture_id>/<k>-of-<n>/``, with the keys that
    :func:`merge_partitions` orders them by: ``_seen_frame`` (associations:
    the frame that completed their first PDU) and ``_release_frame``,
    ``_flow_last_frame`` (objects: see ``events.EV_PDATA``).  Returns a small
    dict of the share's counts, or its ``error``.
    """
    import pyarrow as pa

    from . import api

    k, n = job.part
    started = time.time_ns()
    res: dict[str, Any] = {"part": k, "error": None, "started": started, "worker": _worker_name()}
    opts = job.options
    try:
        cap = api.open(job.path, opts.ports, opts.heuristic, name=os.path.basename(job.path))
        cap._partition = job.part
        an = cap._analyse()
        tables = api._tables(cap, {"capture_id": job.capture_id})
    except Exception as exc:  # noqa: BLE001 - recorded by merge_partitions
        res["error"] = _failure(job, exc)
        return res
    dec, info = an.decoder, an.info
    i64 = pa.int64()
    tables["associations"] = tables["associations"].append_column(
        "_seen_frame", pa.array([getattr(a, "seen_frame", 0) for a in dec.associations], i64))
    tables["objects"] = tables["objects"].append_column(
        "_release_frame", pa.array([t.release[0] for t in dec.objects], i64)).append_column(
        "_flow_last_frame", pa.array([t.release[1] for t in dec.objects], i64))
    folder = os.path.join(job.outdir, STAGING, job.capture_id, f"{k}-of-{n}")
    os.makedirs(folder, exist_ok=True)
    for name in TABLES:
        _write_parquet(tables[name], os.path.join(folder, f"{name}.parquet"))
    stats = info.stats or {}
    cap.close()
    res.update(gzip=info.compressed,
               read_bytes=info.read_bytes, format=stats.get("format"), frames=stats.get("frames"),
               pdus=dec.pdu_count, time_first=dec.first_time, time_last=dec.last_time)
    return res


def hash_capture(job: Job) -> dict[str, Any]:
    """The SHA-256 of a partitioned capture's file (``captures.sha256``): the
    task beside its shares, ``job.part == (n, n)``."""
    res: dict[str, Any] = {"part": job.part[0], "error": None, "started": time.time_ns(),
                           "worker": _worker_name()}
    from .capture import CaptureInfo, _chunks

    h = hashlib.sha256()
    try:
        # the bytes the analysis reads, read as it reads them (what process() hashes)
        for part in _chunks(job.path, CaptureInfo(job.path)):
            h.update(part)
    except (OSError, FastDicomError) as exc:
        res["error"] = _failure(job, exc)
        return res
    res["sha256"] = h.hexdigest()
    return res


def merge_partitions(job: Job, *parts: dict[str, Any]) -> dict[str, Any]:
    """Merge the shares of a capture (:func:`process_partition` results, and
    :func:`hash_capture`'s) into its parts under ``OUTDIR``: the same tables
    one task gives, whatever the number of shares.  Returns the capture's
    ``captures`` row."""
    import pyarrow.parquet as pq

    n = job.part[1]
    staging = os.path.join(job.outdir, STAGING, job.capture_id)
    parts = tuple(sorted(parts, key=lambda r: r["part"]))
    started = min(r["started"] for r in parts)
    workers = ",".join(sorted({r["worker"] for r in parts}))
    error = next((r["error"] for r in parts if r["error"]), None)
    if error is not None:
        for name in TABLES:
            _remove_parts(job.outdir, name, job.capture_id)
        _remove_staging(job)
        finished = time.time_ns()
        return _row(job, status="error", error=error, seconds=(finished - started) / 1e9,
                    started=started, finished=finished, worker=workers,
                    _date=_date(None, job.mtime))
    digest = parts[n]["sha256"]
    parts = parts[:n]
    shares = [{name: pq.read_table(os.path.join(staging, f"{k}-of-{n}", f"{name}.parquet"))
               for name in TABLES} for k in range(n)]
    tables = _merge_tables(shares)
    firsts = [r["time_first"] for r in parts if r["time_first"] is not None]
    lasts = [r["time_last"] for r in parts if r["time_last"] is not None]
    time_first = min(firsts) if firsts else None
    date = _date(time_first, job.mtime)
    for name in TABLES:
        _write_part(job.outdir, name, date, job.capture_id, tables[name])
    _remove_staging(job)
    head = parts[0]
    objects = tables["objects"]
    finished = time.time_ns()
    return _row(job, status="ok", sha256=digest, gzip=head["gzip"],
                read_bytes=head["read_bytes"], format=head["format"], frames=head["frames"],
                associations=tables["associations"].num_rows,
                operations=tables["operations"].num_rows, objects=objects.num_rows,
                objects_complete=sum(1 for c in objects["complete"].to_pylist() if c),
                expert=tables["expert"].num_rows, pdus=sum(r["pdus"] for r in parts),
                time_first=time_first, time_last=max(lasts) if lasts else None,
                seconds=(finished - started) / 1e9, started=started,
                finished=finished, worker=workers, _date=date)


def _remove_staging(job: Job) -> None:
    top = os.path.join(job.outdir, STAGING)
    shutil.rmtree(os.path.join(top, job.capture_id), ignore_errors=True)
    try:
        os.rmdir(top)  # when no other capture is in progress
    except OSError:
        pass


def _merge_tables(shares: list[dict[str, pyarrow.Table]]) -> dict[str, pyarrow.Table]:
    """One capture's tables from those of its shares, in the order and with
    the numbering of one decoder (``Decoder._canonical_order``):
    associations by the frame that completed their first PDU, operations by
    association, objects by the frame that ended them and numbered
    (``index``) in order of appearance, expert infos by frame."""
    import pyarrow as pa

    def column(k: int, table: str, name: str, cast: Any = None) -> list[Any]:
        c = shares[k][table][name]
        return (c.cast(cast) if cast is not None else c).to_pylist()

    i64 = pa.int64()
    offsets: dict[str, list[int]] = {}
    for table in TABLES:
        offsets[table], at = [], 0
        for s in shares:
            offsets[table].append(at)
            at += s[table].num_rows

    def gather(table: str, order: list[tuple[int, int]], **replace: list[Any]) -> pyarrow.Table:
        whole = pa.concat_tables([s[table] for s in shares])
        t = whole.take(pa.array([offsets[table][k] + pos for k, pos in order], i64))
        for name, values in replace.items():
            t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, t.schema.field(name).type))
        return t.drop_columns([c for c in t.column_names if c.startswith("_")])

    # associations: the key of decoder.association_order
    keyed = []
    for k in range(len(shares)):
        assoc = zip(column(k, "associations", "_seen_frame"), column(k, "associations", "start_frame"),
                    column(k, "associations", "client"), column(k, "associations", "server"),
                    column(k, "associations", "start", i64), column(k, "associations", "id"))
        for pos, (seen, frame, client, server, start, aid) in enumerate(assoc):
            keyed.append(((seen or 0, frame or 0, client or "", server or "", start or 0), k, pos, aid))
    keyed.sort()
    new_id = {(k, aid): i for i, (_, k, _, aid) in enumerate(keyed)}

    def remap(k: int, table: str) -> list[Any]:
        return [None if a is None else new_id[k, a] for a in column(k, table, "association")]

    out = {"associations": gather("associations", [(k, pos) for _, k, pos, _ in keyed],
                                  id=list(range(len(keyed))))}
    ops = sorted((-1 if a is None else a, k, pos, a)
                 for k in range(len(shares)) for pos, a in enumerate(remap(k, "operations")))
    out["operations"] = gather("operations", [(k, pos) for _, k, pos, _ in ops],
                               association=[a for _, _, _, a in ops])
    # objects: ordered by the frame that ended them, numbered in order of appearance
    rows: list[tuple[tuple[int, ...], tuple[int, ...], int | None]] = []
    for k in range(len(shares)):
        for pos, (last, a, release, flow_last, index) in enumerate(zip(
                column(k, "objects", "frame_last"), remap(k, "objects"),
                column(k, "objects", "_release_frame"), column(k, "objects", "_flow_last_frame"),
                column(k, "objects", "index"))):
            rows.append(((release, flow_last, k, index), (last, -1 if a is None else a, k, pos), a))
    appearance = {r[1]: i for i, r in enumerate(sorted(rows))}
    rows.sort(key=lambda r: r[1])
    out["objects"] = gather("objects", [(r[1][2], r[1][3]) for r in rows],
                            association=[r[2] for r in rows], index=[appearance[r[1]] for r in rows])
    exp: list[tuple[tuple[Any, ...], int | None]] = []
    for k in range(len(shares)):
        for pos, (frame, a) in enumerate(zip(column(k, "expert", "frame"), remap(k, "expert"))):
            exp.append(((frame is None, frame or 0, -1 if a is None else a, k, pos), a))
    exp.sort(key=lambda r: r[0])
    out["expert"] = gather("expert", [(r[0][3], r[0][4]) for r in exp], association=[r[1] for r in exp])
    return out


def partitions(job: Job, partition_bytes: int, slots: int) -> int:
    """How many shares a capture is analysed in: one per ``partition_bytes``,
    at most ``slots`` (the workers); one for a compressed or non-regular file
    and with ``export`` (exported files are numbered per capture)."""
    from .capture import partitionable

    if slots < 2 or partition_bytes <= 0 or job.size < partition_bytes or job.options.export:
        return 1
    if not partitionable([job.path]):
        return 1
    return max(1, min(slots, -(-job.size // partition_bytes)))


def _export(cap: Any, job: Job) -> int:
    """Export into a temporary folder, then rename it to files/<capture_id>."""
    files = os.path.join(job.outdir, "files")
    os.makedirs(files, exist_ok=True)
    tmp = os.path.join(files, f".tmp-{job.capture_id}-{uuid.uuid4().hex}")
    final = os.path.join(files, job.capture_id)
    try:
        res = cap.export(tmp)
        if os.path.isdir(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return int(res.counts["written"])


# ---------------------------------------------------------------- executors
Task = Callable[[Job], "dict[str, Any]"]


def _error_row(job: Job, why: str, attempts: int = 1) -> dict[str, Any]:
    return _row(job, status="error", error=why, attempts=attempts, finished=time.time_ns(),
                _date=_date(None, job.mtime))


def _run_local(jobs: Sequence[Job], workers: int, task: Task,
               on_result: Callable[[Job, dict[str, Any]], None]) -> None:
    """A ProcessPoolExecutor with at most ``workers`` tasks in flight.

    When a worker process dies the pool breaks and every task in flight
    fails with it; the pool is rebuilt and those tasks are run again one at a
    time, so that only the task that kills its worker is charged with it."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    pending = deque(jobs)
    suspects: deque[Job] = deque()  # in flight when a worker died: run alone
    deaths: dict[tuple[str, tuple[int, int]], int] = {}  # worker deaths charged to a task
    tries: dict[tuple[str, tuple[int, int]], int] = {}

    def submit(pool: Any, job: Job) -> Any:
        tries[job.capture_id, job.part] = tries.get((job.capture_id, job.part), 0) + 1
        return pool.submit(task, job)

    def finish(job: Job, row: dict[str, Any]) -> None:
        row["attempts"] = tries.get((job.capture_id, job.part), 1)
        on_result(job, row)

    while pending or suspects:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            running: dict[Any, Job] = {}
            lost: list[Job] = []
            broken = False

            def start(job: Job, source: deque[Job]) -> bool:
                """Submit ``job``; if the pool broke meanwhile (a worker died and
                its future is not collected yet), put it back and say so."""
                try:
                    running[submit(pool, job)] = job
                    return True
                except BrokenProcessPool:
                    tries[job.capture_id, job.part] -= 1
                    source.appendleft(job)
                    return False

            while (pending or suspects or running) and not lost and not broken:
                if suspects:
                    if not running:
                        broken = not start(suspects.popleft(), suspects)
                else:
                    while pending and len(running) < workers and not broken:
                        broken = not start(pending.popleft(), pending)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    try:
                        row = fut.result()
                    except BrokenProcessPool:
                        lost.append(job)
                    except Exception as exc:  # noqa: BLE001 - e.g. the output could not be written
                        finish(job, _error_row(job, f"{os.path.basename(job.path)}: "
                                                    f"{type(exc).__name__}: {exc}"))
                    else:
                        finish(job, row)
            # the pool broke: every task still in flight failed with it
            for fut, job in running.items():
                try:
                    finish(job, fut.result())
                except Exception:  # noqa: BLE001 - BrokenProcessPool
                    lost.append(job)
            if len(lost) == 1:
                job = lost[0]
                n = deaths[job.capture_id, job.part] = deaths.get((job.capture_id, job.part), 0) + 1
                if n >= MAX_ATTEMPTS:
                    on_result(job, _error_row(job, f"{os.path.basename(job.path)}: the worker process "
                                                   f"died {n} times while analysing it",
                                              tries[job.capture_id, job.part]))
                else:
                    suspects.append(job)
            else:
                suspects.extend(lost)


def _run_dask(jobs: Sequence[Job], scheduler: Any, task: Task,
              on_result: Callable[[Job, dict[str, Any]], None], partition_bytes: int) -> None:
    """One Dask task per capture on an existing cluster, or, for a big
    capture, one per connection partition and a merge task that depends on
    them; Dask reschedules the tasks of a worker that died, and ``retries``
    covers exceptions."""
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    token = uuid.uuid4().hex[:8]
    try:
        slots = sum(client.nthreads().values())
        futures = {}
        for job in jobs:
            key = f"fastdicom-batch-{job.capture_id}-{token}"
            n = partitions(job, partition_bytes, slots)
            if n == 1:
                futures[client.submit(task, job, key=key, retries=2)] = job
                continue
            job = replace(job, part=(0, n))
            # the shares, and the file's SHA-256 beside them (part (n, n))
            shares = [client.submit(task, replace(job, part=(k, n)), key=f"{key}-{k}-of-{n}", retries=2)
                      for k in range(n + 1)]
            futures[client.submit(merge_partitions, job, *shares, key=f"{key}-merge", retries=2)] = job
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                row = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, or a task that kept failing
                row = _error_row(job, f"{os.path.basename(job.path)}: {type(exc).__name__}: {exc}")
            on_result(job, row)
            fut.release()
    finally:
        if client is not scheduler:
            client.close()


class _Shares:
    """Local runs: the results of a partitioned capture's shares, merged
    (in the driver) once all have come; other results pass through."""

    def __init__(self, on_result: Callable[[dict[str, Any]], None]) -> None:
        self.on_result = on_result
        self.got: dict[str, dict[int, dict[str, Any]]] = {}

    def __call__(self, job: Job, row: dict[str, Any]) -> None:
        k, n = job.part
        if n == 1:
            self.on_result(row)
            return
        if "part" not in row:  # the executor's error row: the worker died, or an exception
            row = {"part": k, "error": row["error"], "started": time.time_ns(), "worker": "",
                   "attempts": row.get("attempts", 1)}
        got = self.got.setdefault(job.capture_id, {})
        got[k] = row
        if len(got) < n + 1:  # the shares and the hash task
            return
        del self.got[job.capture_id]
        base = replace(job, part=(0, n))
        try:
            merged = merge_partitions(base, *got.values())
        except Exception as exc:  # noqa: BLE001 - e.g. the output could not be written
            merged = _error_row(base, f"{os.path.basename(job.path)}: {type(exc).__name__}: {exc}")
        merged["attempts"] = max(r.get("attempts", 1) for r in got.values())
        self.on_result(merged)


class _Progress:
    """Captures and bytes done, on standard error."""

    def __init__(self, captures: int, nbytes: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(TextColumn("{task.description:<8}"), BarColumn(),
                           TextColumn("{task.fields[text]}"), TimeElapsedColumn(),
                           console=Console(file=sys.stderr), transient=True)
        self._n, self._bytes = [0, captures], [0, nbytes]
        self._ct = self._p.add_task("captures", total=captures, text=self._text(self._n, False))
        self._bt = self._p.add_task("bytes", total=max(nbytes, 1), text=self._text(self._bytes, True))
        self._p.start()

    @staticmethod
    def _text(pair: list[int], size: bool) -> str:
        if not size:
            return f"{pair[0]}/{pair[1]}"
        return f"{pair[0] / 1e6:,.0f}/{pair[1] / 1e6:,.0f} MB"

    def advance(self, nbytes: int) -> None:
        self._n[0] += 1
        self._bytes[0] += nbytes
        self._p.update(self._ct, advance=1, text=self._text(self._n, False))
        self._p.update(self._bt, advance=nbytes, text=self._text(self._bytes, True))

    def close(self) -> None:
        self._p.stop()


# ------------------------------------------------------------------ driver
def _load_done(outdir: str) -> dict[str, str]:
    """capture_id -> options of the captures already done ("ok")."""
    import pyarrow.parquet as pq

    done = {}
    for p in glob.glob(os.path.join(glob.escape(os.path.join(outdir, "captures")), "date=*",
                                    "part-*.parquet")):
        try:
            rows = pq.read_table(p, columns=["capture_id", "status", "options"]).to_pylist()
        except Exception:  # noqa: BLE001 - a damaged part: that capture is done again
            continue
        for r in rows:
            if r["status"] == "ok":
                done[r["capture_id"]] = r["options"]
    return done


def run_batch(inputs: Iterable[str | os.PathLike[str]], outdir: str | os.PathLike[str], *,
              workers: int | None = None, dask: Any = None, options: BatchOptions | None = None,
              progress: bool | None = None, task: Task | None = None,
              partition_bytes: int = PARTITION_BYTES) -> BatchResult:
    """Analyse captures into Parquet datasets under ``outdir`` (see the module docstring).

    Parameters
    ----------
    inputs : iterable of paths
        Files, folders (searched recursively) and glob patterns.
    outdir : path
        Output folder (created); a second run into it resumes.
    workers : int, optional
        Local worker processes (default: the number of CPUs).
    dask : str or distributed.Client, optional
        Run the tasks on this Dask scheduler (address or client) instead;
        the workers must see ``outdir`` (shared storage).
    options : BatchOptions
        Ports, heuristic, export.
    progress : bool, optional
        Show a progress bar on standard error (default: when it is a terminal).
    task : callable, optional
        The task run per capture or partition (default :func:`process`; tests wrap it).
    partition_bytes : int
        Captures of this size or more (uncompressed files, without
        ``export``) are analysed as several tasks, one per share of their
        connections, at most one per worker, then merged
        (:func:`merge_partitions`): the same tables as one task.  0: never.

    Returns
    -------
    BatchResult

    Examples
    --------
    >>> import fastdicom, tempfile, duckdb
    >>> from fastdicom.batch import run_batch
    >>> out = tempfile.mkdtemp()
    >>> r = run_batch([fastdicom.samples.path()], out, workers=1)
    >>> (r.analysed, r.failed)
    (1, 0)
    >>> duckdb.sql(f"select command, count(*) from '{out}/operations/**/*.parquet' group by 1").fetchall()
    [('C-STORE', 2)]
    >>> run_batch([fastdicom.samples.path()], out, workers=1).skipped
    1
    """
    t0 = time.perf_counter()
    options = options or BatchOptions()
    task = task or process
    out = os.path.abspath(os.fspath(outdir))
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"{out}: {exc.strerror or exc}") from None
    paths = find_captures(inputs)
    if not paths:
        raise BatchError("no captures found")
    result = BatchResult(found=len(paths))
    done = _load_done(out)
    key = options.key()
    jobs: list[Job] = []
    dupes: dict[str, list[str]] = {}
    early: list[dict[str, Any]] = []
    for p in paths:
        try:
            st = os.stat(p)
            cid = capture_id(p, st.st_size)
        except OSError as exc:
            job = Job(p, _path_id(p), out, options)
            early.append(_error_row(job, f"{p}: {exc.strerror or exc}"))
            continue
        if cid in dupes:
            dupes[cid].append(p)
            result.duplicates += 1
            continue
        dupes[cid] = []
        if done.get(cid) == key:
            result.skipped += 1
            continue
        jobs.append(Job(p, cid, out, options, st.st_size, st.st_mtime))

    total = sum(j.size for j in jobs)
    bar = None
    if progress or (progress is None and sys.stderr.isatty() and jobs):
        bar = _Progress(len(jobs), total)
    sizes = {j.capture_id: j.size for j in jobs}

    def on_result(row: dict[str, Any]) -> None:
        row["duplicates"] = dupes.get(row["capture_id"], [])
        _write_capture_row(out, row)
        result.rows.append(row)
        if row["status"] == "ok":
            result.analysed += 1
            result.bytes += row["size"] or 0
        else:
            result.failed += 1
        if bar is not None:
            bar.advance(sizes.get(row["capture_id"], 0))

    try:
        for row in early:
            on_result(row)
        if jobs:
            if dask is not None:
                _run_dask(jobs, dask, task, lambda job, row: on_result(row), partition_bytes)
            else:
                n = max(1, workers or os.cpu_count() or 1)
                units: list[Job] = []
                for job in jobs:
                    k = partitions(job, partition_bytes, n)
                    # the shares, and the file's SHA-256 as a task of its own (part (k, k))
                    units += [replace(job, part=(i, k)) for i in range(k + 1)] if k > 1 else [job]
                _run_local(units, min(n, len(units)), task, _Shares(on_result))
    finally:
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - t0
    return result
