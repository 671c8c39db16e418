"""The I/O edge: read capture files (or standard input), feed the core, and
pass its events to the decoder.  Everything else is sans-IO.

Regular uncompressed files are read in 1 MiB pieces into reused buffers;
when a second CPU is there, on a native thread (``_filereader``) that also
walks them through the core when only data set heads are handed out
(``start_walk``), else ahead of the walk on this thread.  gzip input is
recognised by its content (not its name) and inflated as a stream; ``-``
reads standard input as it arrives, so a live ``tcpdump -w - | fastdicom
...`` works.  Memory stays flat: a few buffers of input and at most 32 MiB
of events walked ahead are alive at a time.
"""

from __future__ import annotations

import os
import stat
import sys
import time

from . import _pyfilereader, core
from . import limits as dataset_limits
from .errors import CaptureFormatError, FastDicomError

TYPE_CHECKING = False  # (not typing's: importing typing costs 3.5 ms at start-up)
if TYPE_CHECKING:  # the decoder is imported by whoever makes one: capture files can be walked before
    from .decoder import Decoder

if core.PURE_PYTHON:
    _reader = _pyfilereader
else:
    from . import _filereader as _reader

CHUNK = 4 << 20
READ_CHUNK = 1 << 20  # capture files are read in pieces of this size
READ_AHEAD_DEPTH = 4  # buffers of READ_CHUNK bytes: read ahead, being walked, handed back

# resource bounds (SECURITY.md lists them with their options)
DEFAULT_MAX_OOO_BYTES = 64 << 20  # out-of-order bytes held, all connections together
DEFAULT_MAX_CONNECTIONS = 100_000  # connections tracked at once (SYN floods)
DEFAULT_MAX_PDU = 0xFFFFFFFF  # largest P-DATA-TF length accepted as plausible (streamed, not held)
DEFAULT_MAX_DEPTH = dataset_limits.DEFAULT_MAX_DEPTH
DEFAULT_MAX_INFLATE = dataset_limits.DEFAULT_MAX_INFLATE
GZIP_MAGIC = b"\x1f\x8b"


class CaptureReadError(FastDicomError):
    """A capture file could not be opened or read."""


class _Record:
    """A plain record with keyword fields, equality and a repr (what
    dataclasses would give, without importing them, and inspect with them,
    before a capture can start being walked: about 8 ms of start-up)."""

    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class EngineOptions(_Record):
    """Options shared by every command: the core's (see ``_pycore.Engine``) and
    the bounds of data set decoding.  Every bound is in SECURITY.md with its
    CLI option; when one is hit an expert info says so and the rest goes on."""

    def __init__(self, ports: tuple = (104, 11112), heuristic: bool = True, data_limit: int = 65536,
                 ooo_budget: int = DEFAULT_MAX_OOO_BYTES,  # --max-ooo-bytes
                 max_flows: int = DEFAULT_MAX_CONNECTIONS,  # --max-connections
                 max_pdu: int = DEFAULT_MAX_PDU,  # --max-pdu
                 max_assoc_pdu: int = 1 << 20,
                 max_depth: int = DEFAULT_MAX_DEPTH,  # --max-depth: sequence nesting when data sets are decoded
                 max_inflate: int = DEFAULT_MAX_INFLATE,  # --max-inflate: bytes a deflated data set may inflate to
                 pdata_runs: bool = False,  # plain P-DATA PDUs in runs (events.EV_PDATA_RUN)
                 trim_heads: bool = False,  # heads end before a Pixel Data value past data_limit
                 ):
        self.ports = ports
        self.heuristic = heuristic
        self.data_limit = data_limit
        self.ooo_budget = ooo_budget
        self.max_flows = max_flows
        self.max_pdu = max_pdu
        self.max_assoc_pdu = max_assoc_pdu
        self.max_depth = max_depth
        self.max_inflate = max_inflate
        self.pdata_runs = pdata_runs
        self.trim_heads = trim_heads

    def engine(self, partition=(0, 1)):
        return core.Engine(ports=self.ports, heuristic=self.heuristic, data_limit=self.data_limit,
                           ooo_budget=self.ooo_budget, max_flows=self.max_flows,
                           max_pdu=self.max_pdu, max_assoc_pdu=self.max_assoc_pdu,
                           partition=partition, pdata_runs=self.pdata_runs, trim_heads=self.trim_heads)


class CaptureInfo(_Record):
    """Facts about one input capture."""

    def __init__(self, name: str, size: int | None = None, read_bytes: int = 0,
                 compressed: bool = False, seconds: float = 0.0, stats: dict | None = None,
                 error: str | None = None):
        self.name = name
        self.size = size  # bytes on disk (None: a stream)
        self.read_bytes = read_bytes  # bytes of (decompressed) capture data consumed
        self.compressed = compressed
        self.seconds = seconds
        self.stats = {} if stats is None else stats
        self.error = error

    def to_json(self) -> dict:
        # no timings here: the summary must be byte-identical from run to run
        return {"name": self.name, "size": self.size, "bytes": self.read_bytes,
                "gzip": self.compressed, "error": self.error, "stats": self.stats}


def parse_ports(spec: str) -> tuple:
    """``"104, 11112 2761-2762"`` -> (104, 2761, 2762, 11112).  Raises ValueError."""
    out = set()
    for part in spec.replace(",", " ").split():
        if "-" in part:
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi)
            if not (0 < a <= b <= 65535):
                raise ValueError(f"bad port range {part!r}")
            if b - a > 65535:
                raise ValueError(f"bad port range {part!r}")
            out.update(range(a, b + 1))
        else:
            p = int(part)
            if not 0 < p <= 65535:
                raise ValueError(f"bad port {part!r}")
            out.add(p)
    if not out:
        raise ValueError("no ports given")
    return tuple(sorted(out))


def usable_cpus() -> int:
    """The CPUs this process may run on (``taskset`` and cgroups narrow it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def read_ahead_default() -> bool:
    """Files are read ahead on a thread of their own when a second CPU can
    run it; on one CPU the thread would only take turns with the decoding."""
    return not core.PURE_PYTHON and usable_cpus() >= 2


class _Opened:
    """The capture opened: ``with _Opened(name, info) as (file, regular)``,
    where a regular file is an uncompressed one on disk, positioned at its
    start.  Standard input (``-``), pipes (``<(zcat ...)``, a FIFO) and
    devices are streams, read as they come and never sought; gzip is
    recognised by its content.  (A class, not contextlib's: the summary
    opens its capture before contextlib and its imports are loaded.)"""

    def __init__(self, name: str, info: CaptureInfo):
        self.name = name
        self.info = info
        self._file = None

    def __enter__(self):
        name, info = self.name, self.info
        if name == "-":
            return sys.stdin.buffer, False
        try:
            f = open(name, "rb")
        except OSError as exc:
            raise CaptureReadError(f"{name}: {exc.strerror or exc}") from None
        self._file = f
        try:
            try:
                st = os.fstat(f.fileno())
                regular = stat.S_ISREG(st.st_mode)
                if regular:
                    info.size = st.st_size
                    head = f.read(2)
            except OSError as exc:
                raise CaptureReadError(f"{name}: {exc.strerror or exc}") from None
            if not regular:
                return f, False
            f.seek(0)
            if head == GZIP_MAGIC or info.size == 0:
                return f, False
            # read(2) into reused buffers, not mmap: on the virtual machines we
            # measured, mapping the page cache in (fault-around) and out again
            # (MADV_DONTNEED, to keep RSS flat) cost more kernel time than copying
            # the bytes, and a buffer that stays in the CPU cache makes the walk
            # over the records faster (core loop 0.195 -> 0.152 s per GiB).  With
            # a second CPU the copy runs on a thread of its own, ahead of the walk
            raw = f.raw
            raw.seek(0)  # the raw file itself (the buffered reader read ahead)
            return raw, True
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _read_chunk(name: str, call):
    try:
        return call()
    except OSError as exc:
        raise CaptureReadError(f"{name}: {exc.strerror or exc}") from None


def _read_ahead(impl, f, info: CaptureInfo, engine=None):
    """``impl.ReadAhead`` (``_filereader``'s or its twin's) over the regular
    file ``f``: READ_AHEAD_DEPTH chunks of READ_CHUNK bytes (of the file's
    size, when it is smaller), walked through ``engine`` if given."""
    return impl.ReadAhead(f.fileno(), min(READ_CHUNK, max(info.size, 1)), READ_AHEAD_DEPTH, engine=engine)


def _chunks(name: str, info: CaptureInfo, chunk: int = CHUNK, read_ahead: bool | None = None):
    """Yield the capture's bytes in chunks: memoryviews of reused buffers,
    each released once the consumer is done with it.  ``read_ahead``: read
    regular files on a native thread ahead of the consumer (None: when
    ``read_ahead_default()``)."""
    with _Opened(name, info) as (f, regular):
        if not regular:
            yield from _stream_chunks(f, info, chunk)
            return
        if read_ahead is None:
            read_ahead = read_ahead_default()
        with _read_ahead(_reader if read_ahead else _pyfilereader, f, info) as reader:
            while True:
                part = _read_chunk(name, reader.next_chunk)
                if part is None:
                    break
                info.read_bytes += len(part)
                try:
                    yield part
                finally:
                    part.release()  # a consumer must not keep it: the buffer is read into again


def _events(name: str, info: CaptureInfo, engine, read_ahead: bool | None = None):
    """Yield the lists of events ``engine`` emits as the capture's bytes go
    through it: walked on the reading thread (``start_walk``), or else fed here."""
    walk = start_walk(name, info, engine, read_ahead)
    if walk is None:
        yield from _fed(engine, _chunks(name, info, read_ahead=read_ahead))
    else:
        yield from walk


def start_walk(name: str, info: CaptureInfo, engine, read_ahead: bool | None = None):
    """Open capture ``name`` and start walking it through ``engine`` on the
    reading thread: the record walk, TCP ordering and PDU framing leave this
    thread, which only makes the event tuples.  A ``FileWalk``, or None
    where the bytes are to be fed on this thread instead: ``read_ahead``
    false (None: ``read_ahead_default()``), standard input, gzip, not a
    regular file, and an engine that hands out every data set byte
    (``data_limit`` -1: export, ``summary --hash``), whose bytes would be
    copied twice, out of the packets on the walking thread and into bytes
    objects on this one (export of 1 GiB on 2 CPUs: 1.15-1.19 s so, against
    1.00-1.08 s walked here with the file read ahead)."""
    if read_ahead is None:
        read_ahead = read_ahead_default()
    if not read_ahead or core.PURE_PYTHON or engine.data_limit < 0:
        return None
    if name == "-" or (os.path.exists(name) and not os.path.isfile(name)):
        # a pipe or a device is not even opened here: opened and closed
        # again, it would lose what it held, and its writer
        return None
    opened = _Opened(name, info)
    f, regular = opened.__enter__()
    try:
        if not regular:
            opened.close()
            return None
        reader = _read_ahead(_reader, f, info, engine)
    except BaseException:
        opened.close()
        raise
    return FileWalk(name, info, reader, opened)


class FileWalk:
    """A capture file being walked on the reading thread: iterating yields
    the lists of events of each chunk, in order; the file and the thread are
    closed at the end, or by ``close()``."""

    def __init__(self, name, info, reader, opened):
        self.name = name
        self.info = info
        self._reader = reader
        self._opened = opened

    def __iter__(self):
        try:
            while True:
                got = _read_chunk(self.name, self._reader.next_events)
                if got is None:
                    return
                self.info.read_bytes += got[0]
                yield got[1]
        finally:
            self.close()

    def close(self):
        """Stop the thread, then close the file (again: nothing)."""
        try:
            self._reader.close()
        finally:
            self._opened.close()


class StartedCapture:
    """A run's first capture, walked ahead (``walk_ahead``) while its decoder
    and sinks are still being set up (their imports take longer than the
    first hundreds of MB of a capture do): ``run(..., started=...)`` goes on
    from there."""

    def __init__(self, name: str, options: EngineOptions, info: CaptureInfo, engine, walk: FileWalk):
        self.name = name
        self.options = options
        self.info = info
        self.engine = engine
        self.walk = walk

    def close(self):
        self.walk.close()


def walk_ahead(name: str, options: EngineOptions, read_ahead: bool | None = None):
    """Start walking capture ``name`` now (a ``StartedCapture``), or None
    where it would not be walked on the reading thread (``start_walk``)."""
    info = CaptureInfo(name)
    engine = options.engine()
    walk = start_walk(name, info, engine, read_ahead)
    return None if walk is None else StartedCapture(name, options, info, engine, walk)


def _fed(engine, parts):
    for part in parts:
        engine.feed(part)
        yield engine.pop_events()


def _stream_chunks(raw, info: CaptureInfo, chunk: int):
    """Chunks from a non-seekable stream, inflating gzip when the content says so."""
    import gzip  # only for streams: not at every start (with its zlib, 1 ms)
    import zlib

    head = _read_some(raw, 2)
    if head[:2] == GZIP_MAGIC:
        info.compressed = True
        src = gzip.GzipFile(fileobj=_Prepend(head, raw))
    else:
        if head:
            info.read_bytes += len(head)
            yield head
        src = raw
    while True:
        try:
            b = src.read1(chunk) if hasattr(src, "read1") else src.read(chunk)
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            if not info.compressed or not info.read_bytes:
                what = "damaged gzip data" if info.compressed else "read error"
                raise CaptureReadError(f"{info.name}: {what} ({exc})") from None
            # what came before the damage is analysed; the rest is reported lost
            # (a capture copied while it was being written is cut short)
            why = "is cut short" if isinstance(exc, EOFError) else f"is damaged ({exc})"
            info.error = f"gzip data {why} after {info.read_bytes} bytes of capture"
            return
        if not b:
            return
        info.read_bytes += len(b)
        yield b


def _read_some(raw, n):
    out = b""
    while len(out) < n:
        b = raw.read(n - len(out))
        if not b:
            break
        out += b
    return out


class _Prepend:
    """A file-like object that replays ``head`` before reading ``raw``."""

    def __init__(self, head, raw):
        self.head = head
        self.raw = raw

    def read(self, n=-1):
        if self.head:
            if n is None or n < 0:
                b = self.head + self.raw.read()
                self.head = b""
                return b
            b = self.head[:n]
            self.head = self.head[n:]
            return b
        return self.raw.read(n)

    def readable(self):
        return True


def feed_capture(k: int, name: str, chunks, decoder: Decoder, options: EngineOptions,
                 partition=(0, 1), events=None, started: StartedCapture | None = None):
    """Feed one capture through a fresh engine into ``decoder``.  ``chunks(info)``
    yields its bytes; or ``events(info, engine)`` yields the lists of events
    that engine emits for them (``_events``); or ``started`` has begun
    (``walk_ahead``).  A generator: yields the CaptureInfo after each chunk
    (its ``read_bytes`` grows), and once more when the capture is done."""
    if started is not None:
        info, engine, source = started.info, started.engine, iter(started.walk)
    else:
        info = CaptureInfo(name)
        engine = options.engine(partition)
        source = events(info, engine) if events is not None else _fed(engine, chunks(info))
    if hasattr(decoder, "set_limits"):
        decoder.set_limits(max_depth=options.max_depth, max_inflate=options.max_inflate)
    decoder.begin_capture(k, name)
    t0 = time.perf_counter()
    dfeed = decoder.feed
    try:
        for evs in source:
            dfeed(evs)
            yield info
        engine.finish()
    except CaptureFormatError as exc:
        raise CaptureFormatError(f"{name}: {exc}") from None
    if info.error and hasattr(decoder, "report"):
        decoder.report("capture.gzip", why=info.error)
    dfeed(engine.pop_events())
    info.seconds = time.perf_counter() - t0
    info.stats = engine.stats()
    decoder.end_capture(info)
    yield info


def run(names, decoder: Decoder, options: EngineOptions | None = None, progress=None,
        partition=(0, 1), read_ahead: bool | None = None,
        started: StartedCapture | None = None) -> list[CaptureInfo]:
    """Analyse each capture in turn into ``decoder``.  Raises CaptureReadError
    (unreadable file) or CaptureFormatError (not a capture).  ``read_ahead``:
    as ``_chunks``; ``started``: the first capture, walked ahead with the
    same ``options`` (``walk_ahead``)."""
    options = options or EngineOptions()
    infos = []
    for k, name in enumerate(names):
        info = None
        events = lambda i, e, n=name: _events(n, i, e, read_ahead=read_ahead)  # noqa: E731
        first = started if (k == 0 and started is not None and started.name == name
                            and partition == (0, 1)) else None
        for info in feed_capture(k, name, None, decoder, options, partition, events=events,
                                 started=first):
            if progress is not None:
                progress(info)
        infos.append(info)
    decoder.finish()
    return infos


# ------------------------------------------------------------ several workers
def partitionable(names) -> bool:
    """Workers each read the whole file and keep their share of the
    connections: worth it only for regular, uncompressed files."""
    for n in names:
        if n == "-" or not os.path.isfile(n):
            return False
        try:
            with open(n, "rb") as f:
                if f.read(2) == GZIP_MAGIC:
                    return False
        except OSError:
            return False
    return True


_worker_read = None  # shared array of bytes read per worker (set by the pool initializer)


def _init_worker(read):
    global _worker_read
    _worker_read = read


def _summary_worker(names, options, k, n, hash_data, read_ahead):
    from . import summary
    from .decoder import Decoder
    sink = summary.SummarySink(records=True)
    dec = Decoder([sink], hash_data=hash_data, keep_ended=False, keep_objects=False)
    dec.drop_capture_level = k != 0  # worker 0 alone reports the file's own conditions
    done = {}

    def progress(info):
        if _worker_read is not None:
            done[info.name] = info.read_bytes
            _worker_read[k] = sum(done.values())

    infos = run(names, dec, options, partition=(k, n), progress=progress, read_ahead=read_ahead)
    return summary.build(dec, infos, sink)


def summary_parallel(names, options: EngineOptions, workers: int, hash_data: bool = False,
                     progress=None, read_ahead: bool | None = None) -> dict:
    """The JSON summary computed by ``workers`` processes, each taking the
    connections it owns (``Engine(partition=(k, n))``: at its first packet a
    connection goes to the worker with the least traffic so far),
    merged into exactly what one process gives.  ``progress``, if given, is
    called once the workers have started (so that no thread of a progress bar
    runs when they fork) and returns None or an object with ``set_read(n)``
    and ``close()``: it is given the bytes read by the slowest worker a few
    times a second.  ``read_ahead``: as ``_chunks``, in each worker."""
    import multiprocessing as mp
    from . import summary

    try:
        ctx = mp.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork
        ctx = mp.get_context("spawn")
    read = ctx.Array("q", workers, lock=False)
    bar = None
    try:
        with ctx.Pool(workers, initializer=_init_worker, initargs=(read,)) as pool:
            res = pool.starmap_async(_summary_worker, [(list(names), options, k, workers, hash_data,
                                                        read_ahead) for k in range(workers)])
            bar = progress() if progress is not None else None
            while True:
                res.wait(0.25)
                if bar is not None:
                    bar.set_read(min(read))
                if res.ready():
                    break
            docs = res.get()
    finally:
        if bar is not None:
            bar.close()
    return summary.merge(docs)
