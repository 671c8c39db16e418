"""fastdicom as a Python library: captures as iterators of frozen records,
pydicom data sets, Arrow tables, and a streaming form for live or huge input.

Two entry points:

- :func:`open` returns a :class:`Capture`.  Its first use reads the whole
  capture once, exactly as ``fastdicom summary`` does (same options, same
  decoder), and keeps the decoder's model: associations, operations, objects
  (without their bytes) and expert info.  ``summary()`` is then the JSON
  summary, and ``associations()``, ``operations()``, ``objects()`` and
  ``expert()`` iterate frozen records built from the same functions as the
  summary, so the two always agree.
- :func:`stream` reads the capture once and yields records as they complete,
  keeping only what is still in progress.

Records mirror the JSON summary's keys (README, "The JSON summary"):

- a key holding a time becomes a :class:`~datetime.datetime` in UTC
  (microseconds) plus an ``_ns`` twin with the exact integer nanoseconds
  since the epoch (``start`` and ``start_ns``);
- a nested object of a client-to-server/server-to-client pair is flattened
  with an underscore (``bytes`` -> ``bytes_client_to_server``,
  ``bytes_server_to_client``; ``max_pdu_length`` -> ``max_pdu_length_client_receives``);
- other nested objects become small frozen records (:class:`Context`,
  :class:`Reject`, :class:`Abort`, :class:`TcpStats`, :class:`SubOperations`);
  lists become tuples; ``user_info`` and ``roles`` stay plain JSON values.

Where the bytes of :meth:`Object.dataset` come from
----------------------------------------------------
The analysis keeps only the first 64 KiB of each data set (as the summary
does).  The first call to ``dataset()`` on any object of a capture reads the
capture a second time and appends every data set's bytes, as they arrive, to
one spool file in a temporary folder owned by the :class:`Capture`; each
object keeps only a short list of (offset, spool offset, length) extents.
``dataset()`` then reads just that object's extents back.  Memory stays
bounded by the largest object whatever the capture's size; the disk holds at
most the capture's data set bytes; and captures that never call ``dataset()``
pay nothing.  The folder is removed by :meth:`Capture.close` (or the ``with``
block's end, or garbage collection).  Input that cannot be read twice (standard
input, a pipe) is copied to the same folder while it is read the first time.
:func:`stream` with ``datasets=True`` instead hands each object its own bytes
in memory, dropped with the record.

Example
-------
>>> import fastdicom
>>> with fastdicom.open(fastdicom.samples.path("query_retrieve"), ports=(5678, 11113)) as cap:
...     for op in cap.operations():
...         if op.command == "C-MOVE":
...             print(op.calling_ae, op.move_destination, hex(op.status or 0), op.status_class)
VIEWER MOVEDEST 0x0 success
VIEWER UNKNOWNDEST 0xa801 failure
"""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import weakref
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import (
    IO, TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Union,
)

from . import capture as _capture
from . import summary as _summary
from .decoder import Decoder
from .errors import CaptureFormatError, FastDicomError

if TYPE_CHECKING:
    import pyarrow
    import pydicom

__all__ = [
    "open", "stream", "Capture", "Association", "Operation", "Object", "Expert", "Pdu", "Pdv",
    "Context", "Reject", "Abort", "TcpStats", "SubOperations", "ExportResult", "Event",
    "CaptureReadError", "CaptureFormatError",
]

CaptureReadError = _capture.CaptureReadError

#: What :func:`open` and :func:`stream` read: a path, ``"-"`` (standard input),
#: a binary file object, or the capture's bytes.
Source = Union[str, "os.PathLike[str]", BinaryIO, IO[bytes], bytes, bytearray, memoryview]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ENGINE_OPTIONS = ("ooo_budget", "max_flows", "max_pdu", "max_assoc_pdu")


def _dt(ns: int | None) -> datetime | None:
    """Nanoseconds since the epoch as an aware UTC datetime (to the microsecond)."""
    return None if ns is None else _EPOCH + timedelta(microseconds=ns // 1000)


# ------------------------------------------------------------------- records
@dataclass(frozen=True)
class Context:
    """A presentation context as negotiated (``associations[].contexts[]``)."""

    id: int
    abstract_syntax: str | None
    abstract_syntax_name: str | None
    proposed_transfer_syntaxes: tuple[str, ...]
    result: str  #: "accepted", "rejected" or "unknown"
    result_code: int | None
    reason: str | None
    transfer_syntax: str | None
    transfer_syntax_name: str | None
    pdvs: int  #: PDVs that the context carried


@dataclass(frozen=True)
class Reject:
    """An A-ASSOCIATE-RJ (``associations[].reject``)."""

    result: int
    result_text: str
    source: int
    source_text: str
    reason: int
    reason_text: str


@dataclass(frozen=True)
class Abort:
    """An A-ABORT (``associations[].abort``); ``by`` is "client" or "server"."""

    source: int
    source_text: str
    reason: int
    reason_text: str
    by: str
    time: datetime | None
    time_ns: int | None


@dataclass(frozen=True)
class TcpStats:
    """The connection's TCP counters (``associations[].tcp``)."""

    bytes_client_to_server: int
    bytes_server_to_client: int
    retransmissions_client: int
    retransmissions_server: int
    out_of_order_client: int
    out_of_order_server: int
    zero_window_client: int
    zero_window_server: int
    handshake_rtt: float | None  #: seconds, SYN to ACK as the tap saw it


@dataclass(frozen=True)
class SubOperations:
    """C-MOVE/C-GET sub-operation counters of the last response that had them."""

    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None


@dataclass(frozen=True)
class Operation:
    """A DIMSE operation: a request and its final response (``associations[].operations[]``).

    ``association``, ``calling_ae`` and ``called_ae`` come from its association;
    the other fields are the JSON summary's keys.  ``status`` is the final
    status (``None``: never answered); ``latency`` is in seconds.
    """

    association: int
    calling_ae: str | None
    called_ae: str | None
    command: str  #: the service: "C-STORE", "C-FIND", ...
    message_id: int | None
    context_id: int
    invoked_by: str  #: "requestor" or "acceptor"
    affected_sop_class_uid: str | None
    affected_sop_class_name: str | None
    affected_sop_instance_uid: str | None
    request_time: datetime | None
    request_time_ns: int | None
    request_end_time: datetime | None
    request_end_time_ns: int | None
    first_response_time: datetime | None
    first_response_time_ns: int | None
    response_time: datetime | None
    response_time_ns: int | None
    latency: float | None
    status: int | None
    status_text: str | None
    status_class: str | None  #: "success", "warning", "failure", "cancel" (None: unanswered)
    error_comment: str | None
    pending_responses: int
    dataset_bytes: int
    response_dataset_bytes: int
    move_destination: str | None
    priority: int | None
    sub_operations: SubOperations | None
    cancel_time: datetime | None
    cancel_time_ns: int | None
    request_frame: int | None
    response_frame: int | None


@dataclass(frozen=True)
class Association:
    """One association (``associations[]``), with its operations in order."""

    id: int
    capture: str | None
    client: str  #: "ip:port" ("[ip]:port" for IPv6)
    server: str
    calling_ae: str | None
    called_ae: str | None
    result: str  #: "accepted", "rejected" or "unknown"
    end: str  #: "released", "aborted", "rejected" or "incomplete"
    state: str
    reject: Reject | None
    abort: Abort | None
    contexts: tuple[Context, ...]
    roles: tuple[Mapping[str, Any], ...] = field(hash=False)
    user_info: Mapping[str, Any] = field(hash=False)
    max_pdu_length_client_receives: int | None
    max_pdu_length_server_receives: int | None
    start: datetime | None
    start_ns: int | None
    end_time: datetime | None
    end_time_ns: int | None
    duration: float | None
    start_frame: int | None
    first_pdu_end_frame: int | None  #: the frame that completed its first PDU (numbering order)
    end_frame: int | None
    bytes_client_to_server: int
    bytes_server_to_client: int
    pdus_client_to_server: int
    pdus_server_to_client: int
    gaps: int
    gap_bytes: int
    tcp: TcpStats | None
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class Expert:
    """One expert info (``expert[]``): a condition found, with a stable ``id``."""

    id: str
    severity: str  #: "chat", "note", "warning" or "error"
    group: str
    message: str
    time: datetime | None
    time_ns: int | None
    frame: int | None
    association: int | None
    capture: str | None = None  #: the capture file it was found in


@dataclass(frozen=True)
class Pdv:
    """One PDV of a P-DATA-TF PDU."""

    context_id: int
    flags: int
    length: int
    command: bool
    last: bool
    description: str


@dataclass(frozen=True)
class Pdu:
    """One PDU, as ``fastdicom pdus --format jsonl`` prints it."""

    frame: int  #: the frame that completed it
    frames: tuple[int, int]
    time: datetime  #: when it completed
    time_ns: int
    time_first: datetime
    time_first_ns: int
    src: str
    dst: str
    type: int
    type_name: str
    length: int
    association: int | None
    info: str
    truncated: bool
    pdvs: tuple[Pdv, ...]


class _Data:
    """Where an object's bytes can be read back from (see the module docstring)."""

    def read(self, obj: Object) -> tuple[bytes | bytearray, str | None]:
        """The data set bytes and the sender's AE title."""
        raise NotImplementedError


@dataclass(frozen=True)
class Object:
    """A data set that crossed the wire (``objects[]``).

    ``index`` numbers the data sets of the capture in order of appearance;
    the leading values (``patient_id`` ...) are those found in the data set's
    head, ``None`` when absent.
    """

    index: int
    association: int
    capture: str | None
    message_id: int | None
    command: str | None  #: "C-STORE-RQ", "C-FIND-RSP", ...
    direction: str  #: "client_to_server" or "server_to_client"
    context_id: int
    sop_class_uid: str | None
    sop_class_name: str | None
    sop_instance_uid: str | None
    transfer_syntax: str | None
    bytes: int
    complete: bool
    sha256: str | None  #: only with ``hash_data=True`` (as ``--hash``)
    frame_first: int
    frame_last: int
    time_first: datetime | None
    time_first_ns: int | None
    time_last: datetime | None
    time_last_ns: int | None
    missing: tuple[tuple[int, int], ...] | None
    incomplete_reasons: tuple[str, ...] | None
    study_date: str | None = None
    accession_number: str | None = None
    modality: str | None = None
    patient_name: str | None = None
    patient_id: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    _data: _Data | None = field(default=None, repr=False, compare=False, hash=False)

    def dataset(self, *, allow_incomplete: bool = False) -> pydicom.Dataset:
        """The data set decoded by pydicom, from the bytes that crossed the wire.

        Decoded as the exported Part 10 file would be (same File Meta
        Information: UIDs, transfer syntax, source AE title); deflated data
        sets are inflated by pydicom.  See the module docstring for where the
        bytes come from.

        Parameters
        ----------
        allow_incomplete : bool
            Decode an incomplete object anyway (missing bytes read as zeros);
            by default that raises ``ValueError``.

        Returns
        -------
        pydicom.dataset.FileDataset

        Raises
        ------
        ValueError
            The object is incomplete, its capture was closed, it came from
            :func:`stream` without ``datasets=True``, or its deflated data set
            inflates beyond the ``max_inflate`` bound (64 MiB by default).

        Examples
        --------
        >>> import fastdicom
        >>> cap = fastdicom.open(fastdicom.samples.path("query_retrieve"), ports=(5678, 11113))
        >>> obj = next(o for o in cap.objects() if o.command == "C-STORE-RQ")
        >>> ds = obj.dataset()
        >>> ds.Modality, ds.Rows, ds.SOPInstanceUID == obj.sop_instance_uid
        ('CT', 128, True)
        >>> cap.close()
        """
        import pydicom

        from . import export as X

        if self._data is None:
            raise ValueError("no bytes kept for this object: use fastdicom.stream(..., datasets=True)")
        if not self.complete and not allow_incomplete:
            raise ValueError(f"object {self.index} is incomplete "
                             f"({'; '.join(self.incomplete_reasons or ()) or 'bytes missing'})")
        raw, source_ae = self._data.read(self)
        ts = self.transfer_syntax or X.guess_transfer_syntax(bytes(raw[:16]))
        from . import limits
        from .dataset import DEFLATED_SYNTAXES, inflated_size
        if ts in DEFLATED_SYNTAXES and inflated_size(raw, limits.max_inflate) > limits.max_inflate:
            # pydicom would inflate it whole in memory (a decompression bomb)
            raise ValueError(f"object {self.index}: its deflated data set inflates beyond "
                             f"{limits.max_inflate} bytes (max_inflate)")
        sop_class = self.sop_class_uid if X._valid_uid(self.sop_class_uid) else X.ARTIFICIAL_SOP_CLASS_COMMAND
        sop_instance = self.sop_instance_uid if X._valid_uid(self.sop_instance_uid) else \
            f"{X.ARTIFICIAL_INSTANCE_ROOT}.{self.association + 1}.{self.index + 1}"
        buf = io.BytesIO()
        buf.write(X.file_meta(str(sop_class), str(sop_instance), ts, source_ae))
        buf.write(raw)
        del raw
        buf.seek(0)
        return pydicom.dcmread(buf)


#: What :func:`stream` yields.
Event = Union[Association, Operation, Object, Expert]


@dataclass(frozen=True)
class ExportResult:
    """What :meth:`Capture.export` wrote."""

    directory: Path
    manifest: Path
    files: tuple[Path, ...]
    counts: Mapping[str, int] = field(hash=False)  #: written, partial, skipped_incomplete, ...


# ------------------------------------------------------ from the model to records
def _tcp(d: Mapping[str, Any] | None) -> TcpStats | None:
    return None if d is None else TcpStats(**d)


def _operation(op: Any, a: Any) -> Operation:
    d = _summary.operation_json(op)
    sub = d.pop("sub_operations")
    return Operation(
        association=a.id, calling_ae=a.calling_ae, called_ae=a.called_ae,
        command=d["command"], message_id=d["message_id"], context_id=d["context_id"],
        invoked_by=d["invoked_by"], affected_sop_class_uid=d["affected_sop_class_uid"],
        affected_sop_class_name=d["affected_sop_class_name"],
        affected_sop_instance_uid=d["affected_sop_instance_uid"],
        request_time=_dt(op.request_time), request_time_ns=op.request_time,
        request_end_time=_dt(op.request_end_time), request_end_time_ns=op.request_end_time,
        first_response_time=_dt(op.first_response_time), first_response_time_ns=op.first_response_time,
        response_time=_dt(op.response_time), response_time_ns=op.response_time,
        latency=d["latency"], status=d["status"], status_text=d["status_text"],
        status_class=d["status_class"], error_comment=d["error_comment"],
        pending_responses=d["pending_responses"], dataset_bytes=d["dataset_bytes"],
        response_dataset_bytes=d["response_dataset_bytes"], move_destination=d["move_destination"],
        priority=d["priority"], sub_operations=None if sub is None else SubOperations(**sub),
        cancel_time=_dt(op.cancel_time), cancel_time_ns=op.cancel_time,
        request_frame=d["request_frame"], response_frame=d["response_frame"])


def _association(a: Any, operations: Iterable[Operation] | None = None) -> Association:
    d = _summary.association_json(a)
    rj, ab = d["reject"], d["abort"]
    return Association(
        id=d["id"], capture=d["capture"], client=d["client"], server=d["server"],
        calling_ae=d["calling_ae"], called_ae=d["called_ae"], result=d["result"], end=d["end"],
        state=d["state"], reject=None if rj is None else Reject(**rj),
        abort=None if ab is None else Abort(
            source=ab["source"], source_text=ab["source_text"], reason=ab["reason"],
            reason_text=ab["reason_text"], by=ab["by"], time=_dt(a.abort_time), time_ns=a.abort_time),
        contexts=tuple(Context(**dict(c, proposed_transfer_syntaxes=tuple(c["proposed_transfer_syntaxes"])))
                       for c in d["contexts"]),
        roles=tuple(d["roles"]), user_info=d["user_info"],
        max_pdu_length_client_receives=d["max_pdu_length"]["client_receives"],
        max_pdu_length_server_receives=d["max_pdu_length"]["server_receives"],
        start=_dt(a.start), start_ns=a.start, end_time=_dt(a.end_time), end_time_ns=a.end_time,
        duration=d["duration"], start_frame=d["start_frame"],
        first_pdu_end_frame=d["first_pdu_end_frame"], end_frame=d["end_frame"],
        bytes_client_to_server=d["bytes"]["client_to_server"],
        bytes_server_to_client=d["bytes"]["server_to_client"],
        pdus_client_to_server=d["pdus"]["client_to_server"],
        pdus_server_to_client=d["pdus"]["server_to_client"],
        gaps=d["gaps"], gap_bytes=d["gap_bytes"], tcp=_tcp(d["tcp"]),
        operations=tuple(operations) if operations is not None else
        tuple(_operation(op, a) for op in a.operations))


_LEADING = ("study_date", "accession_number", "modality", "patient_name", "patient_id",
            "study_instance_uid", "series_instance_uid")


def _object(t: Any, info: Mapping[str, Any] | None, data: _Data | None) -> Object:
    d = _summary.object_json(t, dict(info) if info else None)
    missing = d["missing"]
    reasons = d["incomplete_reasons"]
    return Object(
        index=t.index, association=d["association"], capture=d["capture"], message_id=d["message_id"],
        command=d["command"],
        direction=d["direction"], context_id=d["context_id"], sop_class_uid=d["sop_class_uid"],
        sop_class_name=d["sop_class_name"], sop_instance_uid=d["sop_instance_uid"],
        transfer_syntax=d["transfer_syntax"], bytes=d["bytes"], complete=d["complete"],
        sha256=d["sha256"], frame_first=d["frame_first"], frame_last=d["frame_last"],
        time_first=_dt(t.time_first), time_first_ns=t.time_first,
        time_last=_dt(t.time_last), time_last_ns=t.time_last,
        missing=None if missing is None else tuple((int(s), int(e)) for s, e in missing),
        incomplete_reasons=None if reasons is None else tuple(reasons),
        **{k: (None if d.get(k) is None else str(d[k])) for k in _LEADING}, _data=data)


def _expert(e: Any) -> Expert:
    return Expert(id=e.id, severity=e.severity.label, group=e.group, message=e.message,
                  time=_dt(e.time), time_ns=e.time, frame=e.frame, association=e.association,
                  capture=e.capture)


def _pdu(rec: Any) -> Pdu:
    from .show import pdu_json

    d = pdu_json(rec)
    return Pdu(frame=d["frame"], frames=(rec.frame_first, rec.frame_last),
               time=_EPOCH + timedelta(microseconds=rec.time_last // 1000), time_ns=rec.time_last,
               time_first=_EPOCH + timedelta(microseconds=rec.time_first // 1000),
               time_first_ns=rec.time_first, src=d["src"], dst=d["dst"], type=d["type"],
               type_name=d["type_name"], length=d["length"], association=d["association"],
               info=d["info"], truncated=d["truncated"],
               pdvs=tuple(Pdv(**p) for p in d.get("pdvs", ())))


# ----------------------------------------------------------------- input
class _Workdir:
    """A temporary folder made on first use, removed by ``close()`` or at exit."""

    def __init__(self) -> None:
        self.path: str | None = None
        self._finalizer: weakref.finalize | None = None
        self.closed = False

    def get(self) -> str:
        if self.closed:
            raise ValueError("the capture is closed")
        if self.path is None:
            self.path = tempfile.mkdtemp(prefix="fastdicom-")
            self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)
        return self.path

    def close(self) -> None:
        self.closed = True
        if self._finalizer is not None:
            self._finalizer()


class _Tee:
    """A file-like reader that copies what it reads to ``out``."""

    def __init__(self, raw: Any, out: Any) -> None:
        self.raw = raw
        self.out = out

    def read(self, n: int = -1) -> bytes:
        b = self.raw.read(n)
        if b:
            self.out.write(b)
        return b

    def read1(self, n: int = -1) -> bytes:
        r1 = getattr(self.raw, "read1", None)
        b = r1(n) if r1 is not None else self.raw.read(n)
        if b:
            self.out.write(b)
        return b

    def readable(self) -> bool:
        return True


class _Source:
    """The input of a Capture: read as often as needed (see the module docstring)."""

    def __init__(self, src: Source, name: str | None, workdir: _Workdir, keep_copy: bool = True) -> None:
        self.workdir = workdir
        self.keep_copy = keep_copy
        self.raw: Any = None
        self.path: str | None = None
        self.replay: str | None = None  # copy of a stream read once
        self.start = 0
        if isinstance(src, (bytes, bytearray, memoryview)):
            src = io.BytesIO(bytes(src))
            name = name or "<bytes>"
        if isinstance(src, (str, os.PathLike)):
            p = os.fspath(src)
            if not isinstance(p, str):
                raise TypeError("a capture path must be text, not bytes")
            if p == "-":
                self.raw = sys.stdin.buffer
                self.seekable = False
            else:
                try:
                    builtins.open(p, "rb").close()
                except OSError as exc:
                    raise CaptureReadError(f"{p}: {exc.strerror or exc}") from None
                self.path = p
            self.name = name or p
            return
        if isinstance(src, io.TextIOBase) or not hasattr(src, "read"):
            raise TypeError(f"expected a path or a binary file object, not {type(src).__name__}")
        self.raw = src
        fname = getattr(src, "name", None)
        self.name = name or (fname if isinstance(fname, str) else "<stream>")
        try:
            self.seekable = bool(src.seekable())
            if self.seekable:
                self.start = src.tell()
        except (AttributeError, OSError, ValueError):
            self.seekable = False

    @property
    def rereadable(self) -> bool:
        return self.path is not None or self.seekable or self.replay is not None

    def chunks(self, info: _capture.CaptureInfo) -> Iterator[Any]:
        if self.path is not None:
            yield from _capture._chunks(self.path, info)
        elif self.replay is not None:
            yield from _capture._chunks(self.replay, info)
            info.size = None
        elif self.seekable:
            self.raw.seek(self.start)
            try:  # a file on disk has a size, as for a path
                st = os.fstat(self.raw.fileno())
                if stat.S_ISREG(st.st_mode):
                    info.size = st.st_size - self.start
            except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
                pass
            yield from _capture._stream_chunks(self.raw, info, _capture.CHUNK)
        elif not self.keep_copy:
            yield from _capture._stream_chunks(self.raw, info, _capture.CHUNK)
        else:
            # read once: keep a copy for the next passes
            tmp = os.path.join(self.workdir.get(), "input.copy")
            with builtins.open(tmp, "wb") as out:
                yield from _capture._stream_chunks(_Tee(self.raw, out), info, _capture.CHUNK)
            self.replay = tmp


def _engine_options(ports: Iterable[int] | str, heuristic: bool, data_limit: int,
                    options: Mapping[str, Any]) -> _capture.EngineOptions:
    bad = sorted(set(options) - set(_ENGINE_OPTIONS))
    if bad:
        raise TypeError(f"unknown option(s) {', '.join(bad)} (engine options: {', '.join(_ENGINE_OPTIONS)})")
    if isinstance(ports, str):
        p = _capture.parse_ports(ports)
    else:
        p = tuple(sorted({int(x) for x in ports}))
        if not p or not all(0 < x <= 65535 for x in p):
            raise ValueError(f"bad ports {ports!r}")
    return _capture.EngineOptions(ports=p, heuristic=heuristic, data_limit=data_limit, **options)


def _drive(source: _Source, decoder: Decoder, options: _capture.EngineOptions,
           partition: tuple[int, int] = (0, 1),
           tap: Callable[[Any], None] | None = None) -> Iterator[_capture.CaptureInfo | None]:
    """``capture.run`` for one source, as a generator: yields None after each
    chunk, and the CaptureInfo once everything is fed and the decoder finished."""

    def chunks(info: _capture.CaptureInfo) -> Iterator[Any]:
        for part in source.chunks(info):
            if tap is not None:
                tap(part)
            yield part

    info = None
    for info in _capture.feed_capture(0, source.name, chunks, decoder, options, partition):
        yield None
    decoder.finish()
    yield info


def _run(source: _Source, decoder: Decoder, options: _capture.EngineOptions,
         partition: tuple[int, int] = (0, 1), tap: Callable[[Any], None] | None = None
         ) -> _capture.CaptureInfo:
    info = None
    for info in _drive(source, decoder, options, partition, tap):
        pass
    assert info is not None
    return info


# ----------------------------------------------------------- data set spool
class _SpoolSink:
    """Decoder sink appending every data set's bytes to one spool file."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.pos = 0
        self.extents: dict[int, array] = {}  # index -> flat (offset, spool offset, length)*
        self.meta: dict[int, tuple[int, int, int, str | None]] = {}  # length, association, frame, AE

    def on_transfer_start(self, t: Any) -> None:
        self.extents[t.index] = array("q")

    def on_data(self, t: Any, offset: int, data: Any) -> None:
        n = len(data)
        ext = self.extents[t.index]
        if ext and ext[-3] + ext[-1] == offset and ext[-2] + ext[-1] == self.pos:
            ext[-1] += n  # contiguous in both: grow the last extent
        else:
            ext.extend((offset, self.pos, n))
        self.f.write(data)
        self.pos += n

    def on_transfer_end(self, t: Any) -> None:
        a = t.association
        self.meta[t.index] = (t.length, a.id, t.frame_first,
                              a.calling_ae if t.direction == 0 else a.called_ae)


class _SpoolData(_Data):
    """The data sets of a Capture, spooled on first use."""

    def __init__(self, source: _Source, options: _capture.EngineOptions, workdir: _Workdir) -> None:
        self.source = source
        self.options = options
        self.workdir = workdir
        self.sink: _SpoolSink | None = None
        self.path: str | None = None

    def _spool(self) -> _SpoolSink:
        if self.sink is None:
            path = os.path.join(self.workdir.get(), "datasets.spool")
            with builtins.open(path, "wb", buffering=1 << 20) as f:
                sink = _SpoolSink(f)
                opts = _capture.EngineOptions(**{**self.options.__dict__, "data_limit": -1})
                _run(self.source, Decoder([sink], hash_data=False, keep_objects=False), opts)
            self.sink, self.path = sink, path
        return self.sink

    def read(self, obj: Object) -> tuple[bytes | bytearray, str | None]:
        if self.workdir.closed:
            raise ValueError("the capture is closed")
        sink = self._spool()
        meta = sink.meta.get(obj.index)
        if meta is None or meta[1] != obj.association or meta[2] != obj.frame_first:
            raise RuntimeError(f"object {obj.index}: the second reading of the capture differs")
        length, _, _, ae = meta
        buf = bytearray(length)
        view = memoryview(buf)
        ext = sink.extents[obj.index]
        assert self.path is not None
        with builtins.open(self.path, "rb", buffering=0) as f:
            for k in range(0, len(ext), 3):
                off, pos, n = ext[k], ext[k + 1], ext[k + 2]
                f.seek(pos)
                f.readinto(view[off:off + n])
        view.release()
        return buf, ae


class _InlineData(_Data):
    """Bytes of one object held in memory (stream(..., datasets=True))."""

    def __init__(self, data: bytearray, source_ae: str | None) -> None:
        self.data = data
        self.source_ae = source_ae

    def read(self, obj: Object) -> tuple[bytes | bytearray, str | None]:
        return self.data, self.source_ae


# ------------------------------------------------------------------ Capture
class _Analysis:
    def __init__(self, decoder: Decoder, info: _capture.CaptureInfo, sink: _summary.SummarySink):
        self.decoder = decoder
        self.info = info
        self.sink = sink


class Capture:
    """One capture, analysed on first use.  Made by :func:`open`.

    Iterators return frozen records; ``summary()`` the JSON summary.  Use it
    as a context manager (or call :meth:`close`) to remove the temporary
    files of :meth:`Object.dataset` early.  Not thread-safe.
    """

    def __init__(self, source: Source, ports: Iterable[int] | str = (104, 11112),
                 heuristic: bool = True, *, hash_data: bool = False, name: str | None = None,
                 **options: Any) -> None:
        self._workdir = _Workdir()
        self._options = _engine_options(ports, heuristic, -1 if hash_data else 65536, options)
        self._hash_data = hash_data
        self._source = _Source(source, name, self._workdir)
        self._data = _SpoolData(self._source, self._options, self._workdir)
        self._analysis: _Analysis | None = None
        # (k, n): only the connections of share k of n (a batch task, see batch.merge_partitions)
        self._partition = (0, 1)

    # --- life cycle
    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary files (data set spool, copy of a stream)."""
        self._workdir.close()

    def __repr__(self) -> str:
        return f"<fastdicom.Capture {self.name!r}>"

    @property
    def name(self) -> str:
        """The capture's name in the summary (the path as given, ``-``, or the file's name)."""
        return self._source.name

    def _analyse(self, tap: Callable[[Any], None] | None = None) -> _Analysis:
        if self._analysis is None:
            if self._workdir.closed:
                raise ValueError("the capture is closed")
            sink = _summary.SummarySink()
            dec = Decoder([sink], hash_data=self._hash_data)
            dec.drop_capture_level = self._partition[0] != 0  # share 0 reports the file's own conditions
            info = _run(self._source, dec, self._options, self._partition, tap=tap)
            self._analysis = _Analysis(dec, info, sink)
        return self._analysis

    def _reread(self) -> None:
        """Make sure the input can be read again (a stream is copied on its first reading)."""
        if not self._source.rereadable:
            self._analyse()

    # --- records
    def associations(self) -> Iterator[Association]:
        """The associations in order of appearance, each with its operations.

        Examples
        --------
        >>> import fastdicom
        >>> cap = fastdicom.open(fastdicom.samples.path())
        >>> for a in cap.associations():
        ...     print(a.id, a.calling_ae, "->", a.called_ae, a.result, a.end, len(a.operations))
        0 STORESCU -> WRONG_AE rejected rejected 0
        1 STORESCU -> STORESCP accepted aborted 1
        2 SENDER -> DCMTK accepted aborted 1
        3 SENDER -> DCMTK rejected rejected 0
        """
        for a in self._analyse().decoder.associations:
            yield _association(a)

    def operations(self) -> Iterator[Operation]:
        """Every operation, association by association (the JSON summary's order).

        Examples
        --------
        >>> import fastdicom
        >>> cap = fastdicom.open(fastdicom.samples.path())
        >>> [(op.association, op.command, op.status, op.status_class) for op in cap.operations()]
        [(1, 'C-STORE', 0, 'success'), (2, 'C-STORE', None, None)]
        """
        for a in self._analyse().decoder.associations:
            for op in a.operations:
                yield _operation(op, a)

    def objects(self) -> Iterator[Object]:
        """Every data set that crossed the wire, in the order they ended.

        Examples
        --------
        >>> import fastdicom
        >>> cap = fastdicom.open(fastdicom.samples.path())
        >>> [(o.command, o.bytes, o.complete, o.modality) for o in cap.objects()]
        [('C-STORE-RQ', 38870, True, 'CT'), ('C-STORE-RQ', 38732, True, 'CT')]
        """
        an = self._analyse()
        info = an.sink.object_info
        for t in an.decoder.objects:
            yield _object(t, info.get(t.index), self._data)

    def expert(self) -> Iterator[Expert]:
        """The expert infos, in the order they were found.

        Examples
        --------
        >>> import fastdicom
        >>> cap = fastdicom.open(fastdicom.samples.path())
        >>> sorted({e.id for e in cap.expert() if e.severity == "warning"})
        ['dicom.assoc.abort', 'dicom.assoc.reject', 'dicom.op.unanswered']
        """
        for e in self._analyse().decoder.expert:
            yield _expert(e)

    def pdus(self) -> Iterator[Pdu]:
        """Every PDU as it completes.  Reads the capture again (PDU records
        are not kept by the analysis); memory stays flat.

        Examples
        --------
        >>> import fastdicom
        >>> cap = fastdicom.open(fastdicom.samples.path())
        >>> first = next(cap.pdus())
        >>> first.type_name, first.info
        ('A-ASSOCIATE-RQ', 'A-ASSOCIATE request STORESCU --> WRONG_AE')
        """
        self._reread()
        out: list[Pdu] = []

        class _Sink:
            def on_pdu(self, rec: Any) -> None:
                out.append(_pdu(rec))

        dec = Decoder([_Sink()], keep_pdus=True, keep_objects=False)
        opts = _capture.EngineOptions(**self._options.__dict__)
        for _ in _drive(self._source, dec, opts):
            yield from out
            out.clear()

    def summary(self) -> dict[str, Any]:
        """The JSON summary: the same dict as ``json.load`` of
        ``fastdicom summary CAPTURE --format json`` (``--hash`` when opened
        with ``hash_data=True``).

        Examples
        --------
        >>> import fastdicom
        >>> doc = fastdicom.open(fastdicom.samples.path()).summary()
        >>> doc["counts"]["operations_by_command"]
        {'C-STORE': {'success': 1, 'unanswered': 1}}
        """
        an = self._analyse()
        doc = _summary.build(an.decoder, [an.info], an.sink)
        # as the CLI writes it: JSON types only (tuples become lists, and so on)
        return json.loads(json.dumps(doc, default=str))

    def export(self, directory: str | os.PathLike[str], **options: Any) -> ExportResult:
        """Write every data set as a DICOM Part 10 file, as ``fastdicom export`` does.

        Parameters
        ----------
        directory : path
            Output folder (created); files already there are never replaced.
        **options
            :class:`fastdicom.export.Exporter` options: ``min_size``,
            ``include_commands``, ``keep_incomplete``, ``meta_header``,
            ``layout`` ("flat", "association", "patient"), ``max_open``,
            ``max_total_bytes``, ``redact``, ``direct_io``.

        Returns
        -------
        ExportResult

        Examples
        --------
        >>> import fastdicom, tempfile
        >>> with tempfile.TemporaryDirectory() as out:
        ...     result = fastdicom.open(fastdicom.samples.path()).export(out)
        ...     print(result.counts["written"], [p.suffix for p in result.files])
        2 ['.dcm', '.dcm']
        """
        from . import export as X

        self._reread()
        ex = X.Exporter(directory, decoder=None, **options)
        try:
            dec = Decoder([ex], hash_data=True, keep_objects=False)
            ex.decoder = dec
            opts = _capture.EngineOptions(**{**self._options.__dict__, "data_limit": -1})
            _run(self._source, dec, opts)
        finally:
            ex.close()
        out = Path(ex.out)
        return ExportResult(out, out / "manifest.jsonl", tuple(Path(f) for f in ex.files), dict(ex.counts))

    def tables(self) -> dict[str, pyarrow.Table]:
        """Arrow tables ``associations``, ``operations``, ``objects`` and ``expert``.

        Typed columns: UIDs and texts are strings, times
        ``timestamp[ns, tz=UTC]``, counts and frames int64, DIMSE statuses
        uint16 (null: unanswered), message IDs uint16.  Every table starts with
        the ``capture`` name; rows join on (``capture``, ``association``).
        Needs pyarrow (the ``batch`` extra).

        Examples
        --------
        >>> import fastdicom
        >>> t = fastdicom.open(fastdicom.samples.path()).tables()
        >>> t["operations"].num_rows, str(t["operations"].schema.field("status").type)
        (2, 'uint16')
        >>> str(t["associations"].schema.field("start").type)
        'timestamp[ns, tz=UTC]'
        """
        return _tables(self)


def open(source: Source, ports: Iterable[int] | str = (104, 11112), heuristic: bool = True, *,
         hash_data: bool = False, name: str | None = None, **options: Any) -> Capture:
    """Open a capture (pcap or pcapng, gzip-compressed or not).

    Nothing is read until the first question; the first one reads the whole
    capture once (as ``fastdicom summary``).

    Parameters
    ----------
    source : path, "-", binary file object or bytes
        Gzip is recognised from the content, not the name.  ``"-"`` is
        standard input.  A file object is read from its current position.
    ports : iterable of int or str
        TCP ports that carry DICOM (``"104, 11112 2761-2762"`` works too).
    heuristic : bool
        Also recognise DICOM on other ports from the traffic itself.
    hash_data : bool
        Read every byte of every data set to give each object its SHA-256
        (as ``fastdicom summary --hash``).
    name : str, optional
        The capture's name in the summary (default: the path, or the file
        object's ``name``).
    **options
        Core limits: ``ooo_budget``, ``max_flows``, ``max_pdu``, ``max_assoc_pdu``.

    Returns
    -------
    Capture

    Raises
    ------
    CaptureReadError
        The file cannot be opened (at once) or read.
    CaptureFormatError
        The input is not a capture (on first use).

    Examples
    --------
    >>> import fastdicom
    >>> cap = fastdicom.open(fastdicom.samples.path())
    >>> cap.summary()["counts"]["associations"]
    4
    >>> with builtins.open(fastdicom.samples.path(), "rb") as f:
    ...     sum(1 for _ in fastdicom.open(f).operations())
    2
    """
    return Capture(source, ports, heuristic, hash_data=hash_data, name=name, **options)


# ------------------------------------------------------------------- stream
class _StreamSink:
    """Turns decoder callbacks into records, dropping what has been handed out."""

    def __init__(self, summary_sink: _summary.SummarySink, datasets: bool) -> None:
        self.summary_sink = summary_sink
        self.datasets = datasets
        self.out: list[Event] = []
        self.buffers: dict[int, bytearray] = {}
        self.decoder: Decoder | None = None

    def on_operation(self, op: Any) -> None:
        self.out.append(_operation(op, op.association))

    def on_transfer_start(self, t: Any) -> None:
        if self.datasets:
            self.buffers[t.index] = bytearray()

    def on_data(self, t: Any, offset: int, data: Any) -> None:
        buf = self.buffers.get(t.index)
        if buf is not None:
            if offset > len(buf):  # a hole lost by the tap: zeros
                buf.extend(bytes(offset - len(buf)))
            buf[offset:offset + len(data)] = data

    def on_transfer_end(self, t: Any) -> None:
        info = self.summary_sink.object_info.pop(t.index, None)
        data: _Data | None = None
        buf = self.buffers.pop(t.index, None)
        if buf is not None:
            if len(buf) < t.length:
                buf.extend(bytes(t.length - len(buf)))
            a = t.association
            data = _InlineData(buf, a.calling_ae if t.direction == 0 else a.called_ae)
        self.out.append(_object(t, info, data))

    def on_association_end(self, a: Any) -> None:
        # the operations were handed out as they completed; the record carries them again
        self.out.append(_association(a))
        dec = self.decoder
        if dec is not None and 0 <= a.id < len(dec.associations):
            # keep the list's length (it numbers associations), drop the ended one
            dec.associations[a.id] = None  # type: ignore[call-overload]

    def on_expert(self, info: Any) -> None:
        self.out.append(_expert(info))


class _StreamDecoder(Decoder):
    """A Decoder that forgets connections once they end (stream() keeps nothing done)."""

    def _ev_flow_end(self, ev: Any) -> None:
        super()._ev_flow_end(ev)
        self.flows.pop(ev[1], None)

    def _canonical_order(self) -> None:
        """Records were handed out as they completed; there is nothing left to order."""


def stream(source: Source, ports: Iterable[int] | str = (104, 11112), heuristic: bool = True, *,
           datasets: bool = False, hash_data: bool = False, name: str | None = None,
           **options: Any) -> Iterator[Event]:
    """Read a capture once and yield records as they complete.

    Yields an :class:`Operation` when it has its final response (or never
    will), an :class:`Object` when its data set ended, an :class:`Association`
    when it ended, and an :class:`Expert` when found, in that order of
    completion.  Memory holds only what is still in progress, so this works on
    live input (``"-"`` with ``tcpdump -w -``) and on captures of any size.

    Parameters
    ----------
    source, ports, heuristic, hash_data, name, **options
        As for :func:`open`.
    datasets : bool
        Keep each object's bytes (in memory, until the record is dropped) so
        that :meth:`Object.dataset` works.  Reads every byte.

    Yields
    ------
    Association, Operation, Object or Expert

    Examples
    --------
    >>> import fastdicom
    >>> for ev in fastdicom.stream(fastdicom.samples.path()):
    ...     if isinstance(ev, fastdicom.Association):
    ...         print("ended", ev.id, ev.end)
    ...     elif isinstance(ev, fastdicom.Operation):
    ...         print("op", ev.command, ev.status_class)
    ended 0 rejected
    op C-STORE success
    ended 1 aborted
    op C-STORE None
    ended 2 aborted
    ended 3 rejected
    """
    workdir = _Workdir()
    src = _Source(source, name, workdir, keep_copy=False)
    data_limit = -1 if (hash_data or datasets) else 65536
    opts = _engine_options(ports, heuristic, data_limit, options)
    ssink = _summary.SummarySink()
    sink = _StreamSink(ssink, datasets)
    dec = _StreamDecoder([ssink, sink], hash_data=hash_data, keep_objects=False)
    sink.decoder = dec
    try:
        for _ in _drive(src, dec, opts):
            if sink.out:
                batch, sink.out = sink.out, []
                yield from batch
            dec.expert.clear()  # handed out already
    finally:
        workdir.close()


# ------------------------------------------------------------------- tables
def _col_types(pa: Any) -> dict[str, Any]:
    return {"str": pa.string(), "i64": pa.int64(), "u16": pa.uint16(), "u8": pa.uint8(),
            "f64": pa.float64(), "bool": pa.bool_(), "ts": pa.timestamp("ns", tz="UTC"),
            "strs": pa.list_(pa.string()),
            "contexts": pa.list_(pa.struct([
                ("id", pa.uint8()), ("abstract_syntax", pa.string()), ("result", pa.string()),
                ("reason", pa.string()), ("transfer_syntax", pa.string()), ("pdvs", pa.int64())]))}


def _g(name: str) -> Callable[[Any], Any]:
    return lambda r: getattr(r, name)


def _sub(attr: str, name: str) -> Callable[[Any], Any]:
    def get(r: Any) -> Any:
        v = getattr(r, attr)
        return None if v is None else getattr(v, name)
    return get


_TCP_KEYS = ("bytes_client_to_server", "bytes_server_to_client", "retransmissions_client",
             "retransmissions_server", "out_of_order_client", "out_of_order_server",
             "zero_window_client", "zero_window_server")

# table -> [(column, type, getter)]; the first column, ``capture``, is added by _tables
_COLUMNS: dict[str, list[tuple[str, str, Callable[[Any], Any]]]] = {
    "associations": [
        ("id", "i64", _g("id")), ("client", "str", _g("client")), ("server", "str", _g("server")),
        ("calling_ae", "str", _g("calling_ae")), ("called_ae", "str", _g("called_ae")),
        ("result", "str", _g("result")), ("end", "str", _g("end")), ("state", "str", _g("state")),
        ("start", "ts", _g("start_ns")), ("end_time", "ts", _g("end_time_ns")),
        ("duration", "f64", _g("duration")), ("start_frame", "i64", _g("start_frame")),
        ("end_frame", "i64", _g("end_frame")), ("operations", "i64", lambda a: len(a.operations)),
        ("bytes_client_to_server", "i64", _g("bytes_client_to_server")),
        ("bytes_server_to_client", "i64", _g("bytes_server_to_client")),
        ("pdus_client_to_server", "i64", _g("pdus_client_to_server")),
        ("pdus_server_to_client", "i64", _g("pdus_server_to_client")),
        ("gaps", "i64", _g("gaps")), ("gap_bytes", "i64", _g("gap_bytes")),
        ("max_pdu_length_client_receives", "i64", _g("max_pdu_length_client_receives")),
        ("max_pdu_length_server_receives", "i64", _g("max_pdu_length_server_receives")),
        ("reject_result", "u8", _sub("reject", "result")),
        ("reject_source", "u8", _sub("reject", "source")),
        ("reject_reason", "u8", _sub("reject", "reason")),
        ("reject_reason_text", "str", _sub("reject", "reason_text")),
        ("abort_by", "str", _sub("abort", "by")), ("abort_source", "u8", _sub("abort", "source")),
        ("abort_reason", "u8", _sub("abort", "reason")),
        ("abort_reason_text", "str", _sub("abort", "reason_text")),
        ("abort_time", "ts", _sub("abort", "time_ns")),
        *[(f"tcp_{k}", "i64", _sub("tcp", k)) for k in _TCP_KEYS],
        ("tcp_handshake_rtt", "f64", _sub("tcp", "handshake_rtt")),
        ("contexts", "contexts", lambda a: [
            {"id": c.id, "abstract_syntax": c.abstract_syntax, "result": c.result, "reason": c.reason,
             "transfer_syntax": c.transfer_syntax, "pdvs": c.pdvs} for c in a.contexts]),
    ],
    "operations": [
        ("association", "i64", _g("association")), ("calling_ae", "str", _g("calling_ae")),
        ("called_ae", "str", _g("called_ae")), ("command", "str", _g("command")),
        ("message_id", "u16", _g("message_id")), ("context_id", "u8", _g("context_id")),
        ("invoked_by", "str", _g("invoked_by")),
        ("affected_sop_class_uid", "str", _g("affected_sop_class_uid")),
        ("affected_sop_class_name", "str", _g("affected_sop_class_name")),
        ("affected_sop_instance_uid", "str", _g("affected_sop_instance_uid")),
        ("request_time", "ts", _g("request_time_ns")), ("request_end_time", "ts", _g("request_end_time_ns")),
        ("first_response_time", "ts", _g("first_response_time_ns")),
        ("response_time", "ts", _g("response_time_ns")), ("latency", "f64", _g("latency")),
        ("status", "u16", _g("status")), ("status_text", "str", _g("status_text")),
        ("status_class", "str", _g("status_class")), ("error_comment", "str", _g("error_comment")),
        ("pending_responses", "i64", _g("pending_responses")),
        ("dataset_bytes", "i64", _g("dataset_bytes")),
        ("response_dataset_bytes", "i64", _g("response_dataset_bytes")),
        ("move_destination", "str", _g("move_destination")), ("priority", "u16", _g("priority")),
        ("sub_remaining", "i64", _sub("sub_operations", "remaining")),
        ("sub_completed", "i64", _sub("sub_operations", "completed")),
        ("sub_failed", "i64", _sub("sub_operations", "failed")),
        ("sub_warning", "i64", _sub("sub_operations", "warning")),
        ("cancel_time", "ts", _g("cancel_time_ns")), ("request_frame", "i64", _g("request_frame")),
        ("response_frame", "i64", _g("response_frame")),
    ],
    "objects": [
        ("association", "i64", _g("association")), ("index", "i64", _g("index")),
        ("message_id", "u16", _g("message_id")), ("command", "str", _g("command")),
        ("direction", "str", _g("direction")), ("context_id", "u8", _g("context_id")),
        ("sop_class_uid", "str", _g("sop_class_uid")), ("sop_class_name", "str", _g("sop_class_name")),
        ("sop_instance_uid", "str", _g("sop_instance_uid")),
        ("transfer_syntax", "str", _g("transfer_syntax")), ("bytes", "i64", _g("bytes")),
        ("complete", "bool", _g("complete")), ("sha256", "str", _g("sha256")),
        ("frame_first", "i64", _g("frame_first")), ("frame_last", "i64", _g("frame_last")),
        ("time_first", "ts", _g("time_first_ns")), ("time_last", "ts", _g("time_last_ns")),
        ("missing_bytes", "i64", lambda o: None if o.missing is None else
         sum(e - s for s, e in o.missing if e >= 0)),
        ("incomplete_reasons", "strs", lambda o: None if o.incomplete_reasons is None
         else list(o.incomplete_reasons)),
        *[(k, "str", _g(k)) for k in _LEADING],
    ],
    "expert": [
        ("id", "str", _g("id")), ("severity", "str", _g("severity")), ("group", "str", _g("group")),
        ("message", "str", _g("message")), ("time", "ts", _g("time_ns")), ("frame", "i64", _g("frame")),
        ("association", "i64", _g("association")),
    ],
}


def table_schemas(extra: Iterable[str] = ()) -> dict[str, pyarrow.Schema]:
    """The Arrow schema of each table of :meth:`Capture.tables`; ``extra``
    names string columns put first (the batch adds ``capture_id``)."""
    import pyarrow as pa

    types = _col_types(pa)
    lead = [(n, pa.string()) for n in extra] + [("capture", pa.string())]
    return {name: pa.schema(lead + [(c, types[t]) for c, t, _ in cols])
            for name, cols in _COLUMNS.items()}


def _tables(cap: Capture, extra: Mapping[str, str] | None = None) -> dict[str, pyarrow.Table]:
    import pyarrow as pa

    extra = dict(extra or {})
    schemas = table_schemas(extra)
    sources: dict[str, Callable[[], Iterator[Any]]] = {
        "associations": cap.associations, "operations": cap.operations,
        "objects": cap.objects, "expert": cap.expert}
    out = {}
    for name, cols in _COLUMNS.items():
        rows = list(sources[name]())
        schema = schemas[name]
        arrays = [pa.array([v] * len(rows), type=pa.string()) for v in extra.values()]
        arrays.append(pa.array([cap.name] * len(rows), type=pa.string()))
        for (col, _t, get), fld in zip(cols, list(schema)[len(extra) + 1:]):
            arrays.append(pa.array([get(r) for r in rows], type=fld.type))
        out[name] = pa.Table.from_arrays(arrays, schema=schema)
    return out
