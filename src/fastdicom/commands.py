"""What each CLI command runs: options to engine, decoder and sinks."""

from __future__ import annotations

import os
import stat
import sys

from . import capture
from .errors import FastDicomError

# The decoder, the sinks and their tables are imported by the commands that
# use them, not here: ``summary`` starts walking its capture first (about
# 25 ms of imports, the time the reading thread takes for 100 MB of it).


class UsageError(FastDicomError):
    pass


def engine_options(args, data_limit=65536, pdata_runs=False, trim_heads=False) -> capture.EngineOptions:
    try:
        ports = capture.parse_ports(args.ports)
    except ValueError as e:
        raise UsageError(f"--ports: {e}") from None
    bounds = {}
    for opt, key in (("max_ooo_bytes", "ooo_budget"), ("max_connections", "max_flows"),
                     ("max_pdu", "max_pdu"), ("max_depth", "max_depth"),
                     ("max_inflate", "max_inflate")):
        v = getattr(args, opt, None)
        if v is not None:
            bounds[key] = v
    if "max_pdu" in bounds:
        bounds["max_pdu"] = min(bounds["max_pdu"], 0xFFFFFFFF)
    return capture.EngineOptions(ports=ports, heuristic=not args.no_heuristic, data_limit=data_limit,
                                 pdata_runs=pdata_runs, trim_heads=trim_heads, **bounds)


class output:
    """``with output(path) as out``: where a command writes: standard output,
    or ``-o FILE`` (UTF-8) through a ``FileOutput``, closed at the end (its
    error raised then, unless the command's own is on its way).  A class,
    not contextlib's: this module is imported before a summary's capture
    starts to be read."""

    def __init__(self, path, binary=False):
        self.path = path
        self._out = None

    def open_early(self) -> "output":
        """Open ``-o FILE`` now, before the command's work, when it is a
        regular file or does not exist yet: an unwritable path is reported at
        once, and the end of the run is spared the opening, the writing
        thread's start and the freeing of the old content's pages (the file
        is written over and cut to its new length at the end, so that a
        command that fails before writing leaves it as it was; one it
        created is removed then).  Other paths (a FIFO, a device) are opened
        when written, as before."""
        path = self.path
        if not path or path == "-" or self._out is not None:
            return self
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError:
            return self  # (reported when it is opened)
        if st is not None and not stat.S_ISREG(st.st_mode):
            return self
        try:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
                created = True
            except FileExistsError:
                fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
                created = False
        except OSError as e:
            raise FastDicomError(f"{path}: {e.strerror or e}") from None
        self._out = FileOutput(open(fd, "wb"), written_over=path, created=created)
        return self

    def __enter__(self):
        path = self.path
        if self._out is not None:
            return self._out
        if not path or path == "-":
            return sys.stdout
        try:
            f = open(path, "wb")
        except OSError as e:
            raise FastDicomError(f"{path}: {e.strerror or e}") from None
        self._out = FileOutput(f)
        return self._out

    def __exit__(self, exc_type, exc, tb):
        self.close(ok=exc_type is None)
        return False

    def close(self, ok: bool = True):
        """(``ok``: the command succeeded; its errors are raised.)"""
        if self._out is not None:
            out, self._out = self._out, None
            out.close(raise_error=ok)


class FileOutput:
    """A text file written by a thread of its own: ``write`` gathers text,
    and every MiB of it is encoded (UTF-8) and handed to the thread, which
    writes it to the file while this thread goes on.  Writing into the page
    cache costs as much as making the text (on the VM we measured: 10 MB in
    20-80 ms, the JSON of a 4 GiB capture's summary), and here both go on at
    once.  At most ``DEPTH`` pieces wait (memory stays bounded).  The first
    error of the file is raised, as the OSError it was, by the next
    ``write``, ``flush`` or ``close``."""

    PIECE = 1 << 20
    DEPTH = 4

    def __init__(self, f, written_over=None, created=False):
        """``written_over``: the path of ``f``, opened without truncation
        (``output.open_early``): cut to what was written when closed, left as
        it was (removed when ``created``) if nothing was."""
        import _thread
        try:  # (queue.Queue and its imports: 1 ms of every run's end)
            from _queue import SimpleQueue
        except ImportError:  # pragma: no cover - not CPython
            from queue import SimpleQueue
        self._f = f
        self._written_over = written_over
        self._created = created
        self._wrote = False
        self._parts: list = []
        self._size = 0
        self._error = None
        self._queue = SimpleQueue()
        self._room = SimpleQueue()  # a token for each piece that may wait in the queue
        for _ in range(self.DEPTH):
            self._room.put(None)
        self._done = _thread.allocate_lock()  # held until the thread ends
        self._done.acquire()
        # _thread's, not threading's: Thread.start() waits until the new thread
        # runs, and with both CPUs busy (a summary's reading thread, when -o FILE
        # is opened early) that was 2.8 ms of the decoding thread's time
        _thread.start_new_thread(self._run, ())

    def _run(self):
        try:
            self._write_all()
        finally:
            self._done.release()

    def _write_all(self):
        f, q = self._f, self._queue
        while True:
            data = q.get()
            if data is None:
                return
            if self._error is None:
                try:
                    if data is _FLUSH:
                        f.flush()
                    else:
                        f.write(data)
                except BaseException as e:  # noqa: BLE001 - raised again on this thread's next call
                    self._error = e
            self._room.put(None)

    def _check(self):
        if self._error is not None:
            raise self._error

    def _hand_over(self, data):
        self._check()
        self._put(data)

    def _put(self, data):
        """To the thread, once there is room (it releases one per piece)."""
        self._room.get()
        self._queue.put(data)

    def _gathered(self) -> bytes:
        """The text gathered so far, encoded; the gathering starts again."""
        data = "".join(self._parts).encode("utf-8")
        self._parts = []
        self._size = 0
        return data

    def write(self, text: str) -> int:
        self._wrote = True
        if len(text) >= self.PIECE:  # (a summary's batch of records) as it is: not joined again
            if self._parts:
                self._hand_over(self._gathered())
            self._hand_over(text.encode("utf-8"))
            return len(text)
        self._parts.append(text)
        self._size += len(text)
        if self._size >= self.PIECE:
            self._hand_over(self._gathered())
        return len(text)

    def flush(self):
        """Everything written so far goes to the file (the thread flushes it)."""
        if self._parts:
            self._hand_over(self._gathered())
        self._hand_over(_FLUSH)

    def close(self, raise_error: bool = True):
        """Write what is left, wait for the thread and close the file."""
        try:
            if self._parts and self._error is None:
                self._put(self._gathered())
            self._parts = []
        finally:
            self._queue.put(None)
            self._done.acquire()
            try:
                self._end_written_over(raise_error)
            except OSError as e:
                if self._error is None:
                    self._error = e
            try:
                self._f.close()
            except OSError as e:
                if self._error is None:
                    self._error = e
        if raise_error:
            self._check()

    def _end_written_over(self, ok: bool):
        """A file written over (``written_over``): cut to its new content; if
        the command failed before writing, left as it was, or removed if this
        run created it."""
        path = self._written_over
        if path is None:
            return
        if ok or self._wrote:
            self._f.flush()
            os.ftruncate(self._f.fileno(), self._f.tell())
        elif self._created:
            os.unlink(path)


_FLUSH = object()  # the thread flushes the file when it meets this piece


def compile_filter(args):
    text = getattr(args, "filter", None)
    if not text:
        return None
    from . import filters
    return filters.compile_filter(text, command=args.command)


def exit_status(args, decoder) -> int:
    if not args.fail_on:
        return 0
    from .expert import Severity
    limit = Severity.parse(args.fail_on)
    return 1 if any(e.severity >= limit for e in decoder.expert) else 0


# the cyclic garbage collector runs after this many net allocations (Python's
# default is 700); see pace_garbage_collector()
GC_THRESHOLD = 50_000


def pace_garbage_collector() -> None:
    """The decoder makes many small objects, freed by reference counting, and
    keeps every association for the summary: at Python's default pace the
    collector kept scanning them (a capture of 3,000 small associations: 385
    young and 3 full collections, 14 % of the run; best of 8 alternating runs
    0.697 -> 0.598 s).  Collect every GC_THRESHOLD allocations instead, and
    leave out what the imports made (``gc.freeze``).  Cycles are still
    collected, so memory stays bounded (peak RSS unchanged on the 1 and 4 GiB
    benchmark captures).  A command-line setting: the library leaves the
    collector as the application has it, and this runs once per process."""
    import gc
    if gc.get_threshold()[0] >= GC_THRESHOLD:
        return
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


def run(args) -> int:
    pace_garbage_collector()
    return {"summary": cmd_summary, "export": cmd_export, "pdus": cmd_pdus,
            "expert": cmd_expert, "sample": cmd_sample, "show": cmd_show, "analyze": cmd_analyze,
            "report": cmd_report, "fields": cmd_fields, "batch": cmd_batch}[args.command](args)


def cmd_fields(args) -> int:
    from . import filters
    sys.stdout.write(filters.render_fields(args.format, args.word))
    return 0


def cmd_sample(args) -> int:
    from . import samples
    try:
        print(samples.path(args.name or samples.DEFAULT))
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    return 0


def _analyse(args, sinks, data_limit=65536, read_ahead=None, started=None, options=None, **decoder_opts):
    """The captures through a Decoder with ``sinks``: ``started``'s engine
    options, else ``options``, else the command line's with ``data_limit``."""
    from .decoder import Decoder
    if started is not None:
        opts = started.options
    else:
        opts = options if options is not None else engine_options(args, data_limit)
    dec = Decoder(sinks, **decoder_opts)
    for s in sinks:
        if hasattr(s, "bind"):
            s.bind(dec)
    progress = None
    if sys.stderr.isatty():
        from .progress import Progress
        progress = Progress.maybe(args.captures)
    try:
        infos = capture.run(args.captures, dec, opts, progress=progress, read_ahead=read_ahead,
                            started=started)
    finally:
        if progress is not None:
            progress.close()
    return dec, infos


# --------------------------------------------------------------- summary
AUTO_WORKERS_BYTES = 256 * 1000 * 1000  # below this, starting workers costs more than it saves


def summary_cpus(args) -> int:
    """How many CPUs ``summary`` uses: ``--workers`` (0: every CPU this process
    may run on), or by default all of them for capture files of
    AUTO_WORKERS_BYTES or more, else one."""
    if args.workers is not None:
        return args.workers or capture.usable_cpus()
    try:
        total = sum(os.path.getsize(n) for n in args.captures)
    except OSError:
        return 1
    return capture.usable_cpus() if total >= AUTO_WORKERS_BYTES else 1


def summary_workers(args) -> tuple[int, bool]:
    """(processes, read ahead) for ``summary`` on ``summary_cpus`` CPUs.

    Reading a file is a copy from the page cache that costs about half as
    much as the rest of the work, and every process that takes a share of
    the connections reads the whole file.  So two CPUs do best as one
    process whose file is read ahead on a thread of its own; each further
    pair of CPUs adds a process with its share of the connections (output
    byte-identical to one process's).  ``--follow`` and inputs that cannot be
    read twice (standard input, gzip) take one process."""
    cpus = summary_cpus(args)
    read_ahead = cpus >= 2
    if args.follow or not args.captures or not capture.partitionable(args.captures):
        return 1, read_ahead
    return max(1, cpus // 2), read_ahead


# ``fastdicom summary FILE ...`` on two CPUs or more: FILE read and walked from
# before the command line is parsed (walk_early), until cmd_summary takes it
_early = None


def walk_early(argv) -> None:
    """Begin to read and walk the capture of ``fastdicom summary FILE ...``
    at once, from a guess at what the command line asks: argparse and the
    parser take 8 ms of every start, the reading thread's time for 60 MB of
    capture.  ``cmd_summary`` takes the walk only if the parsed command line
    asks for the very same (file, engine options, one process reading ahead);
    else it is stopped.  Any option the guess does not know, any doubt: no
    walk.  Never raises (the parsed command line reports what is wrong)."""
    global _early
    if len(argv) < 2 or argv[0] != "summary":
        return
    from types import SimpleNamespace
    ns = SimpleNamespace(captures=[], ports="104, 11112", no_heuristic=False, workers=None, follow=False,
                         hash=False, head_bytes=65536)
    valued = {"--ports": str, "--workers": int, "--head-bytes": int, "--format": str, "-o": str,
              "--output": str, "--slowest": int, "--fail-on": str, "-Y": str, "--filter": str}
    flags = ("--no-heuristic", "--follow", "--hash", "--redact")
    try:
        it = iter(argv[1:])
        for a in it:
            if a.startswith("--") and "=" in a:
                a, v = a.split("=", 1)
            elif a in valued:
                v = next(it)
            elif a in flags:
                v = True
            elif a == "-" or not a.startswith("-"):
                ns.captures.append(a)
                continue
            else:
                return
            if a not in valued and a not in flags:
                return
            setattr(ns, a.lstrip("-").replace("-", "_"), valued[a](v) if a in valued else v)
        if len(ns.captures) != 1:
            return
        workers, read_ahead = summary_workers(ns)
        if workers == 1 and read_ahead:
            _early = capture.walk_ahead(ns.captures[0], summary_options(ns), read_ahead)
    except Exception:  # noqa: BLE001 - a guess: the parsed command line says what is wrong
        return


def _take_early(name: str, options: capture.EngineOptions, read_ahead: bool):
    """The walk begun by walk_early, if it is of ``name`` with ``options``
    read ahead; any other is stopped."""
    global _early
    early = _early
    if early is not None and early.name == name and early.options == options and read_ahead:
        _early = None
        return early
    drop_early()
    return None


def drop_early() -> None:
    """Stop a walk walk_early began that no command took."""
    global _early
    early, _early = _early, None
    if early is not None:
        early.close()


def summary_options(args) -> capture.EngineOptions:
    """The summary's engine options: the first ``--head-bytes`` of each data
    set handed out (every byte with ``--hash``), but none past the start of
    a Pixel Data value that runs past them (``trim_heads``: the summary's
    walks of the head stop there), plain P-DATA PDUs in runs
    (events.EV_PDATA_RUN)."""
    return engine_options(args, -1 if args.hash else max(0, args.head_bytes), pdata_runs=True,
                          trim_heads=True)


def cmd_summary(args) -> int:
    flt = compile_filter(args)  # a bad filter is rejected before anything is read
    out = output(args.output)
    if not args.follow:
        out.open_early()  # so is an unwritable -o FILE
    ok = False
    try:
        status = _cmd_summary(args, flt, out)
        ok = True
        return status
    finally:
        out.close(ok)


def _cmd_summary(args, flt, out) -> int:
    workers, read_ahead = summary_workers(args)
    opts = summary_options(args)
    started = None
    if workers == 1 and args.captures:
        # the first capture is read and walked while the decoder is imported
        # (already since the start, when walk_early guessed right)
        started = _take_early(args.captures[0], opts, read_ahead)
        if started is None:
            started = capture.walk_ahead(args.captures[0], opts, read_ahead)
    else:
        drop_early()
    try:
        return _summary(args, flt, workers, read_ahead, opts, started, out)
    finally:
        if started is not None:
            started.close()


def _summary(args, flt, workers, read_ahead, opts, started, out) -> int:
    from . import summary
    if workers > 1:
        from . import redact as R
        from .expert import Severity as _S
        progress = None
        if sys.stderr.isatty():
            from .progress import Progress

            def progress():
                return Progress.maybe(args.captures)
        doc = capture.summary_parallel(args.captures, opts, workers,
                                       hash_data=args.hash, progress=progress, read_ahead=read_ahead)
        if args.redact:
            doc = R.redact_document(doc)
        status = 0
        if args.fail_on:
            limit = _S.parse(args.fail_on)
            status = 1 if any(_S.parse(e["severity"]) >= limit for e in doc["expert"]) else 0
        _write_summary(args, doc, flt, out)
        return status
    # records made as connections end, which are then forgotten: memory holds
    # one record per association and object, not all the decoding made; the
    # outputs that read them in order (all but -Y, which judges whole
    # documents) keep them in a temporary file instead
    spill = flt is None and not args.follow
    # the JSON document's records are written as their connections end (the
    # text of each, in the spill), not all once the capture is read
    sink = summary.SummarySink(records=True, redact=args.redact, spill=spill,
                               json_text=spill and args.format == "json")
    sinks = [sink]
    follow = None
    if args.follow:
        follow = _FollowOperations(args, flt)
        sinks.append(follow)
    dec, infos = _analyse(args, sinks, read_ahead=read_ahead, started=started, options=opts,
                          hash_data=args.hash, keep_ended=False, keep_objects=False)
    doc = summary.build(dec, infos, sink, redact=args.redact)
    if follow is not None:
        return exit_status(args, dec)
    _write_summary(args, doc, flt, out)
    return exit_status(args, dec)


def _write_summary(args, doc, flt, to: output):
    from . import summary
    if flt is not None:
        doc = flt.select_summary(doc)
    with to as out:
        if args.format == "json":
            summary.write_json(doc, out)
        elif args.format == "jsonl":
            import json
            for line in summary.jsonl_lines(doc):
                out.write(json.dumps(line, default=str) + "\n")
        elif args.format == "csv":
            summary.write_csv(doc, out)
        else:
            summary.render_text(doc, out, slowest=args.slowest, to_file=bool(args.output))


class _FollowOperations:
    """--follow: one line per operation as soon as it has its final response."""

    def __init__(self, args, flt=None):
        self.args = args
        self.flt = flt

    def on_operation(self, op):
        from . import summary
        d = summary.operation_json(op)
        d["association"] = op.association.id
        if self.flt is not None:
            # judge the operation with its association as the summary's -Y would
            a = summary.association_json(op.association)
            a["operations"] = [dict(d)]
            kept = self.flt.select_summary({"associations": [a], "objects": [], "expert": [],
                                            "tcp_attempts": [], "captures": [], "counts": {}})
            if not any(x["operations"] for x in kept.get("associations", ())):
                return
        if self.args.format == "jsonl" or self.args.format == "json":
            import json
            line = json.dumps(d, default=str)
        else:
            line = summary.operation_line(d)
        print(line, flush=True)


# ---------------------------------------------------------------- export
def cmd_export(args) -> int:
    from . import export
    try:
        ex = export.Exporter(args.output, min_size=args.min_size, include_commands=args.include_commands,
                             keep_incomplete=args.keep_incomplete, meta_header=not args.no_meta_header,
                             layout=args.layout, max_open=args.max_open_files,
                             max_total_bytes=args.max_total_bytes, redact=args.redact,
                             direct_io=not args.no_direct_io)
    except (OSError, export.ExportError) as e:
        raise FastDicomError(f"{args.output}: {e}") from None
    try:
        dec, infos = _analyse(args, [ex], data_limit=-1, hash_data=True)
        ex.decoder = dec
    finally:
        ex.close()
    c = ex.counts
    parts = [f"{c['written']} objects written to {args.output}"]
    if c["partial"]:
        parts.append(f"{c['partial']} kept incomplete (.partial)")
    if c["commands"]:
        parts.append(f"{c['commands']} command sets")
    if c["capped"]:
        parts.append(f"{c['capped']} not written past --max-total-bytes")
    parts.append(f"{c['skipped_incomplete']} incomplete not written")
    parts.append(f"{c['skipped_small']} below --min-size")
    print("; ".join(parts), file=sys.stderr)
    status = exit_status(args, dec)
    if args.verify:
        bad = export.verify(args.output)
        for name, err in bad:
            print(f"fastdicom: verify: {name}: {err}", file=sys.stderr)
        print(f"verify: {len(ex.files) - len(bad)} of {len(ex.files)} files read back with pydicom",
              file=sys.stderr)
        if bad:
            status = 1
    return status


# ------------------------------------------------------------------ pdus
def cmd_pdus(args) -> int:
    from . import show
    flt = compile_filter(args)
    with output(args.output) as out:
        sink = show.PduLister(out, fmt=args.format, flt=flt, redact=args.redact, follow=args.follow)
        dec, infos = _analyse(args, [sink], keep_pdus=True, keep_heads=False)
    return exit_status(args, dec)


# ------------------------------------------------------------------ show
def cmd_show(args) -> int:
    from . import show
    flt = compile_filter(args)
    opts = show.TreeOptions(seq_tree=args.seq_tree, tag_tree=args.tag_tree,
                            max_len=args.max_value_length, redact=args.redact)
    with output(args.output) as out:
        sink = show.TreeShower(out, fmt=args.format, flt=flt, opts=opts)
        dec, infos = _analyse(args, [sink], data_limit=16 << 20, keep_pdus=True, keep_pdv_data=True,
                              keep_objects=False, head_limit=16 << 20, keep_heads=False)
    return exit_status(args, dec)


# ---------------------------------------------------------------- expert
def cmd_expert(args) -> int:
    from .expert import Severity
    flt = compile_filter(args)
    minimum = Severity.parse(args.min_severity)
    with output(args.output) as out:
        sink = _ExpertPrinter(out, args.format, minimum, flt, follow=args.follow)
        dec, infos = _analyse(args, [sink])
        if not args.follow:
            for info in dec.expert:
                sink.emit(info, dec)
    return exit_status(args, dec)


class _ExpertPrinter:
    def __init__(self, out, fmt, minimum, flt, follow):
        self.out = out
        self.fmt = fmt
        self.minimum = minimum
        self.flt = flt
        self.follow = follow
        self.decoder = None

    def bind(self, dec):
        self.decoder = dec

    def on_expert(self, info):
        if self.follow:
            self.emit(info, self.decoder)

    def emit(self, info, dec):
        if info.severity < self.minimum:
            return
        if self.flt is not None and not self.flt.match_expert(info, dec):
            return
        if self.fmt == "jsonl":
            import json
            self.out.write(json.dumps(info.to_json()) + "\n")
        else:
            from .show import expert_line
            self.out.write(expert_line(info) + "\n")
        if self.follow:
            self.out.flush()


# ------------------------------------------------------- analyze and report
def _run_analyses(args):
    from .analysis import output as AO
    summary_sink, collector = AO.sinks()
    dec, infos = _analyse(args, [summary_sink, collector], **AO.DECODER_OPTIONS)
    return dec, infos, summary_sink, collector, AO.run_analyses(dec, collector, args.redact)


def cmd_analyze(args) -> int:
    from . import summary
    from .analysis import output as AO
    from .expert import Severity
    dec, infos, _, _, result = _run_analyses(args)
    with output(args.output) as out:
        if args.format == "json":
            summary.write_json(AO.document(dec, infos, result), out)
        else:
            AO.render_text(dec, infos, result, out, Severity.parse(args.min_severity))
    return AO.exit_status(result, args.fail_on)


def cmd_report(args) -> int:
    from .analysis import output as AO
    from .report import write_report
    dec, infos, summary_sink, _, result = _run_analyses(args)
    try:
        size = write_report(args.output, dec, infos, result, summary_sink, redact=args.redact,
                            title=args.title)
    except OSError as e:
        raise FastDicomError(f"{args.output}: {e.strerror or e}") from None
    print(f"report written to {args.output} ({size / 1024:.0f} KB, {len(result.findings)} findings)",
          file=sys.stderr)
    return AO.exit_status(result, args.fail_on)


# ----------------------------------------------------------------- batch
def cmd_batch(args) -> int:
    from . import batch
    try:
        ports = capture.parse_ports(args.ports)
    except ValueError as e:
        raise UsageError(f"--ports: {e}") from None
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    opts = batch.BatchOptions(ports=ports, heuristic=not args.no_heuristic, export=args.export)
    r = batch.run_batch(args.inputs, args.output, workers=args.workers, dask=args.dask, options=opts,
                        partition_bytes=args.partition_bytes)
    print(f"{r.found} captures: {r.analysed} analysed, {r.skipped} already done, "
          f"{r.duplicates} duplicates, {r.failed} failed; {r.bytes / 1e6:,.1f} MB in "
          f"{r.seconds:.1f} s -> {args.output}", file=sys.stderr)
    from .show import safe_text
    for row in r.rows:
        if row["status"] != "ok":  # file names from a folder from the wild: escaped
            print(f"fastdicom: {safe_text(row['error'])}", file=sys.stderr)
    return 1 if r.failed else 0
