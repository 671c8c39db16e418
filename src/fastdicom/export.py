"""Export every data set that crossed the wire as a DICOM Part 10 file.

A sink of the decoder.  Each file is a 128-byte preamble, ``DICM``, a File
Meta Information group (PS3.10 7.1) and then the data set bytes exactly as
they crossed the wire (deflated data stays deflated)::

    00 * 128 | "DICM" | (0002,0000) UL group length
                      | (0002,0001) OB 00 01              version
                      | (0002,0002) UI media storage SOP class UID
                      | (0002,0003) UI media storage SOP instance UID
                      | (0002,0010) UI transfer syntax UID (the context's accepted one)
                      | (0002,0012) UI implementation class UID (fastdicom's own)
                      | (0002,0013) SH implementation version name
                      | (0002,0016) AE source application entity title (the sender)
                      | data set bytes ...

Fragments are appended to the file as they arrive: memory never holds a
whole object, and at most ``max_open`` files are open at once (the least
recently written is closed and reopened when more comes).  Opening, hashing
and writing run in order on the native threads of ``_filewriter.pyx`` (I/O
lanes that share the slots out, and a hashing thread), which never take the
GIL, so they overlap with decoding and with each other; bytes in flight are
bounded (``MAX_PENDING``).  New files are written with ``O_DIRECT`` where
the file system allows it (``direct_io``), which bypasses the page cache.
Files are written under a temporary name and given their final name (the
writer renames them, never replacing a file) only once it has finished them
and the object is complete: an incomplete object never gets a normal name
(with ``keep_incomplete`` it is kept as ``NAME.dcm.partial``).
Names are built from sanitised wire values, never hold a path separator, and
never replace an existing file; symbolic links in the output folder are not
followed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import uuid
from collections import OrderedDict, deque

from . import redact as R
from .core import PURE_PYTHON
from .errors import FastDicomError
from .dimse import DataSetTransfer
from .uids import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)

# fastdicom's own UID root: 2.25 + a fixed UUID (PS3.5 B.2), never another product's
FASTDICOM_UUID = uuid.UUID("6f3c9a52-1d7e-4b8a-9c41-0e5d2f7a8b13")
UID_ROOT = "2.25." + str(FASTDICOM_UUID.int)
IMPLEMENTATION_CLASS_UID = UID_ROOT + ".1"
ARTIFICIAL_SOP_CLASS_COMMAND = UID_ROOT + ".2"  # "a DIMSE command set", for --include-commands
ARTIFICIAL_INSTANCE_ROOT = UID_ROOT + ".3"
IMPLEMENTATION_VERSION_NAME = "FASTDICOM_010"

SAFE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._-")
TMP_DIR = ".fastdicom-tmp"
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_BINARY = getattr(os, "O_BINARY", 0)

LAYOUTS = ("flat", "association", "patient")
HEAD = 16384  # leading data set bytes kept to find UIDs and patient/study/series
BATCH = 4 << 20  # bytes of one object handed to the writer at once
MAX_PENDING = 32 << 20  # all objects together, batched here; as much again queued in the writer

if PURE_PYTHON:
    from . import _pyfilewriter as _writer
else:
    from . import _filewriter as _writer


class ExportError(FastDicomError):
    pass


def safe_name(text, limit: int = 64, default: str = "unknown") -> str:
    """Only ``[0-9A-Za-z._-]``, at most ``limit`` characters, never starting
    with a dot (so never ``.`` or ``..``)."""
    s = "".join(c if c in SAFE else "_" for c in str(text or ""))[:limit]
    s = s.lstrip(".") or default
    return s


def _element(group, elem, vr, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr == b"UI" else b" "
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str | None) -> bytes:
    """Preamble, prefix and File Meta Information group (explicit VR LE)."""
    body = _element(0x0002, 0x0001, b"OB", b"\x00\x01")
    body += _element(0x0002, 0x0002, b"UI", sop_class.encode("ascii", "replace"))
    body += _element(0x0002, 0x0003, b"UI", sop_instance.encode("ascii", "replace"))
    body += _element(0x0002, 0x0010, b"UI", transfer_syntax.encode("ascii", "replace"))
    body += _element(0x0002, 0x0012, b"UI", IMPLEMENTATION_CLASS_UID.encode())
    body += _element(0x0002, 0x0013, b"SH", IMPLEMENTATION_VERSION_NAME.encode())
    if source_ae:
        body += _element(0x0002, 0x0016, b"AE", source_ae.encode("ascii", "replace")[:16])
    group_length = _element(0x0002, 0x0000, b"UL", struct.pack("<I", len(body)))
    return b"\x00" * 128 + b"DICM" + group_length + body


def _valid_uid(u) -> bool:
    """Digits and dots, 1 to 64 characters (what the meta header may hold)."""
    return isinstance(u, str) and 0 < len(u) <= 64 and not u.strip("0123456789.")


def guess_transfer_syntax(head: bytes) -> str:
    """The encoding of a data set whose negotiation was not captured (PS3.5 7.1)."""
    if len(head) < 8:
        return IMPLICIT_VR_LITTLE_ENDIAN
    vr = head[4:6]
    explicit = vr.isalpha() and vr.isupper()
    if explicit and head[0] == 0 and head[1] != 0:
        return EXPLICIT_VR_BIG_ENDIAN
    if not explicit:
        return IMPLICIT_VR_LITTLE_ENDIAN
    return EXPLICIT_VR_LITTLE_ENDIAN


class _Item:
    """Export state of one object."""

    __slots__ = ("tmp", "created", "meta_len", "written", "sop_class", "sop_instance",
                 "ts", "ts_guessed", "deferred", "dropped", "head", "hasher",
                 "pending", "pending_off", "pending_len")

    def __init__(self):
        self.tmp = None
        self.created = False
        self.meta_len = 0
        self.written = 0
        self.sop_class = None
        self.sop_instance = None
        self.ts = None
        self.ts_guessed = False
        self.deferred = False
        self.dropped = False
        self.head = b""
        self.hasher = None
        self.pending = []  # data not yet handed to the writer
        self.pending_off = 0
        self.pending_len = 0


class Exporter:
    """Decoder sink writing Part 10 files and ``manifest.jsonl``."""

    def __init__(self, out_dir, *, min_size: int = 0, include_commands: bool = False,
                 keep_incomplete: bool = False, meta_header: bool = True, layout: str = "flat",
                 max_open: int = 64, max_total_bytes: int = 0, redact: bool = False, decoder=None,
                 direct_io: bool = True):
        if layout not in LAYOUTS:
            raise ExportError(f"unknown layout {layout!r} ({', '.join(LAYOUTS)})")
        self.out = os.path.abspath(out_dir)
        self.min_size = min_size
        self.include_commands = include_commands
        self.keep_incomplete = keep_incomplete
        self.meta_header = meta_header
        self.layout = layout
        self.max_open = max(1, max_open)
        self.max_total = max_total_bytes
        self.redact = redact
        self.decoder = decoder
        self.total = 0
        self.cap_reported = False
        self.items = {}  # transfer index -> _Item
        self.open = OrderedDict()  # transfer index (or command key) -> writer slot, LRU
        self.counts = {"written": 0, "partial": 0, "skipped_incomplete": 0, "skipped_small": 0,
                       "commands": 0, "capped": 0}
        self.files = []
        self._mkdir(self.out)
        self._out_prefix = os.path.join(self.out, "")  # the folder with its separator: see _rel
        self.tmp_dir = os.path.join(self.out, TMP_DIR)
        self._mkdir(self.tmp_dir)
        self.manifest = self._open_new(os.path.join(self.out, "manifest.jsonl"), append=True)
        self._seq = 0
        self.pending_total = 0
        # direct_io: O_DIRECT where the file system takes it (see _filewriter.pyx)
        self._writer = _writer.FileWriter(self.max_open, MAX_PENDING, direct=direct_io)
        # slots are taken in turn (FIFO), so that files written one after another
        # go to different I/O lanes of the writer and are written at once
        self._free_slots = deque(range(self.max_open))
        self._last_job = 0
        # the writer hashes while it writes when its SHA-256 is native; else this thread hashes
        self._native_hash = _writer.native_sha256()
        self._finishing = deque()  # (job, function, args): run in order once the writer did job

    # ------------------------------------------------------ writer jobs
    def _job(self, call, *args) -> int:
        try:
            self._last_job = call(*args)
        except OSError as exc:
            raise ExportError(f"writing to {self.out}: {exc.strerror or exc}") from exc
        return self._last_job

    def _slot(self, key, item) -> int:
        """The writer slot holding ``item``'s file open (opened, or reopened
        without creating, when it is not open now)."""
        slot = self.open.get(key)
        if slot is not None:
            self.open.move_to_end(key)
            return slot
        while len(self.open) >= self.max_open:
            self._release(next(iter(self.open)))
        slot = self._free_slots.popleft()
        self.open[key] = slot
        self._job(self._writer.open, slot, item.tmp, not item.created)
        item.created = True
        return slot

    def _release(self, key) -> None:
        slot = self.open.pop(key, None)
        if slot is not None:
            self._job(self._writer.close, slot)
            self._free_slots.append(slot)

    def _after_writes(self, tmp, fn, *args) -> None:
        """Run ``fn(*args)`` once every job queued so far is done, in order
        (``tmp``: the file it takes over, removed if it never runs)."""
        self._finishing.append((self._last_job, tmp, fn, args))
        self._reap()

    def _reap(self, wait: bool = False) -> None:
        fin = self._finishing
        if not fin:
            return
        if wait:
            self._job(self._writer.wait, fin[-1][0])
        done = self._job(self._writer.done)
        while fin and fin[0][0] <= done:
            _, _, fn, args = fin.popleft()
            try:
                fn(*args)
            except OSError as exc:
                raise ExportError(f"writing to {self.out}: {exc.strerror or exc}") from exc

    # ------------------------------------------------------------ file I/O
    @staticmethod
    def _mkdir(path):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.makedirs(path, exist_ok=True)
            st = os.lstat(path)
        import stat as _s
        if _s.S_ISLNK(st.st_mode) or not _s.S_ISDIR(st.st_mode):
            raise ExportError(f"{path} is not a directory (symbolic links are not followed)")

    @staticmethod
    def _open_new(path, append=False):
        flags = os.O_WRONLY | os.O_CREAT | O_NOFOLLOW | O_BINARY | (os.O_APPEND if append else os.O_EXCL)
        fd = os.open(path, flags, 0o644)
        return os.fdopen(fd, "ab" if append else "wb")

    # ---------------------------------------------------------- decoder sink
    def bind(self, decoder):
        """The decoder to report through (``export.cap``, ``export.partial``)."""
        self.decoder = decoder

    def on_transfer_start(self, t: DataSetTransfer):
        item = _Item()
        self.items[t.index] = item
        cmd = t.command
        a = t.association
        if cmd is not None:
            item.sop_class = cmd.get("affected_sop_class_uid") or cmd.get("requested_sop_class_uid")
            item.sop_instance = cmd.get("affected_sop_instance_uid") or cmd.get("requested_sop_instance_uid")
        item.ts = t.transfer_syntax or a.transfer_syntax(t.context_id)
        # the exporter hashes (on the writer thread) what the decoder would have hashed
        item.hasher = _writer.Sha256() if self._native_hash else hashlib.sha256()
        t.hasher = None
        self._seq += 1
        item.tmp = os.path.join(self.tmp_dir, f"{self._seq:08d}.part")
        # the meta header goes first when everything it needs is known now;
        # otherwise the data set is written alone and the meta put in front at the end
        slot = self._slot(t.index, item)
        if self.meta_header and _valid_uid(item.sop_class) and _valid_uid(item.sop_instance) and item.ts:
            meta = file_meta(item.sop_class, item.sop_instance, item.ts, self._source_ae(t))
            item.meta_len = len(meta)
            self._job(self._writer.write, slot, 0, (meta,), None)
        else:
            item.deferred = self.meta_header

    def on_data(self, t: DataSetTransfer, offset: int, data):
        item = self.items.get(t.index)
        if item is None or item.dropped:
            return
        if self.max_total and self.total + len(data) > self.max_total:
            self._cap(t, item)
            return
        if type(data) is not bytes:
            data = bytes(data)
        if len(item.head) < HEAD:
            item.head += data[:HEAD - len(item.head)]
        self.total += len(data)
        # batch the pieces: one writer job per BATCH bytes (or per object)
        if item.pending and offset != item.pending_off + item.pending_len:
            self._flush(t.index, item)
        if not item.pending:
            item.pending_off = offset
        item.pending.append(data)
        item.pending_len += len(data)
        self.pending_total += len(data)
        if item.pending_len >= BATCH:
            self._flush(t.index, item)
        elif self.pending_total >= MAX_PENDING:
            for idx, it in list(self.items.items()):
                if it.pending:
                    self._flush(idx, it)

    def _flush(self, idx, item):
        if not item.pending:
            return
        pieces = tuple(item.pending)
        offset = item.pending_off
        self.pending_total -= item.pending_len
        item.pending = []
        if offset != item.written:
            # a hole lost by the tap: positions are kept (the file is .partial anyway)
            item.hasher = None
        hasher = item.hasher
        if hasher is not None and not self._native_hash:
            for p in pieces:
                hasher.update(p)
            hasher = None
        self._job(self._writer.write, self._slot(idx, item), item.meta_len + offset, pieces, hasher)
        item.written = offset + item.pending_len
        item.pending_len = 0

    def _cap(self, t, item):
        item.dropped = True
        self.pending_total -= item.pending_len
        item.pending = []
        item.pending_len = 0
        self._release(t.index)
        self.counts["capped"] += 1
        if not self.cap_reported and self.decoder is not None:
            self.cap_reported = True
            self.decoder.report("export.cap", association=t.association,
                                time=t.time_last, frame=t.frame_last, cap=self.max_total)

    def on_transfer_end(self, t: DataSetTransfer):
        item = self.items.pop(t.index, None)
        if item is None:
            return
        self._flush(t.index, item)
        complete = t.complete and not item.dropped
        ts = item.ts or t.transfer_syntax or t.association.transfer_syntax(t.context_id)
        if not ts:
            ts = guess_transfer_syntax(item.head)
            item.ts_guessed = True
        sop_class = item.sop_class if _valid_uid(item.sop_class) else t.sop_class_uid
        sop_instance = item.sop_instance if _valid_uid(item.sop_instance) else t.sop_instance_uid
        if not _valid_uid(sop_class) or not _valid_uid(sop_instance):
            from_ds = self._uids_from_dataset(item.head, ts)
            sop_class = sop_class if _valid_uid(sop_class) else from_ds.get(0x00080016)
            sop_instance = sop_instance if _valid_uid(sop_instance) else from_ds.get(0x00080018)
        if not _valid_uid(sop_class):
            sop_class = (t.command.get("affected_sop_class_uid") if t.command else None) or ARTIFICIAL_SOP_CLASS_COMMAND
            if not _valid_uid(sop_class):
                sop_class = ARTIFICIAL_SOP_CLASS_COMMAND
        if not _valid_uid(sop_instance):
            sop_instance = f"{ARTIFICIAL_INSTANCE_ROOT}.{t.association.id + 1}.{t.index + 1}"
        meta = b""
        if item.deferred:
            meta = file_meta(sop_class, sop_instance, ts, self._source_ae(t))
        size = t.length + (item.meta_len or len(meta))
        rec = self._record(t, sop_class, sop_instance, ts, item, complete)
        keep = True
        if item.dropped:
            rec["skipped"] = f"past --max-total-bytes {self.max_total}"
            keep = False
        elif not complete and not self.keep_incomplete:
            self.counts["skipped_incomplete"] += 1
            rec["skipped"] = "incomplete (use --keep-incomplete to keep it as .partial)"
            keep = False
        elif size < self.min_size:
            self.counts["skipped_small"] += 1
            rec["skipped"] = f"smaller than --min-size {self.min_size}"
            keep = False
        name = folder = suffix = None
        if keep:
            name = self._name(t, sop_instance)
            folder = self._folder(t, item, ts)
            suffix = ".dcm" if complete else ".dcm.partial"
            if complete:
                self.counts["written"] += 1
            else:
                self.counts["partial"] += 1
                if self.decoder is not None:
                    self.decoder.report("export.partial", association=t.association, time=t.time_last,
                                        frame=t.frame_last, file=name + suffix,
                                        missing=_ranges(t) or "the end of the data set")
        self._release(t.index)
        # the writer renames the file (the meta header is known): this thread only reads the result
        placing = self._place_later(item.tmp, folder, name, suffix) if keep and not meta else None
        self._after_writes(item.tmp, self._finish, t, item, rec, complete, keep, meta, folder, name,
                           suffix, placing)

    def _finish(self, t, item, rec, complete, keep, meta, folder, name, suffix, placing):
        if complete and item.hasher is not None:
            t.hasher = item.hasher  # the object's SHA-256, for the manifest and the summary
            rec["sha256"] = t.sha256
        if not keep:
            self._unlink(item.tmp)
            rec["file"] = None
        else:
            try:
                if meta:
                    self._prepend_meta(item, meta)
                final = self._placed(item.tmp, folder, name, suffix, placing)
            except BaseException:
                self._unlink(item.tmp)  # no temporary file left behind
                raise
            rec["file"] = self._rel(final)
            self.files.append(final)
        self.manifest.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())

    def on_command(self, cmd):
        if not self.include_commands or cmd.raw_bytes is None:
            return
        a = cmd.association
        idx = f"c{self.counts['commands'] + 1}"
        self.counts["commands"] += 1
        inst = f"{ARTIFICIAL_INSTANCE_ROOT}.0.{self.counts['commands']}"
        ae = None
        if a is not None:
            ae = a.calling_ae if cmd.direction == 0 else a.called_ae
        data = cmd.raw_bytes
        meta = file_meta(ARTIFICIAL_SOP_CLASS_COMMAND, inst, IMPLICIT_VR_LITTLE_ENDIAN, ae) \
            if self.meta_header else b""
        if len(meta) + len(data) < self.min_size:
            return
        client = safe_name(a.calling_ae if a is not None else "unknown", 32)
        mid = cmd.message_id if not cmd.is_response else cmd.responded_id
        name = f"{client}_{'unknown' if mid is None else mid}_{safe_name(cmd.name, 24)}_{idx}"
        self._seq += 1
        tmp = os.path.join(self.tmp_dir, f"{self._seq:08d}.part")
        folder = self.out if self.layout == "flat" else self._assoc_folder(a)
        rec = {"file": None, "association": None if a is None else a.id,
               "command": cmd.name, "message_id": mid, "bytes": len(data), "complete": True,
               "transfer_syntax": IMPLICIT_VR_LITTLE_ENDIAN, "kind": "command"}
        item = _Item()
        item.tmp = tmp
        self._job(self._writer.write, self._slot(idx, item), 0, (meta, bytes(data)), None)
        self._release(idx)
        placing = self._place_later(tmp, folder, name, ".dcm")
        self._after_writes(tmp, self._finish_command, tmp, folder, name, rec, placing)

    def _finish_command(self, tmp, folder, name, rec, placing):
        try:
            final = self._placed(tmp, folder, name, ".dcm", placing)
        except BaseException:
            self._unlink(tmp)
            raise
        rec["file"] = self._rel(final)
        self.manifest.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())

    def on_end(self, decoder):
        self.close()

    def close(self):
        """Finish every file the writer has, then stop it; objects still
        open (the decoder did not end them) leave no file behind."""
        try:
            for idx, item in list(self.items.items()):
                if item.pending:
                    self._flush(idx, item)
            self._reap(wait=True)
        finally:
            for _, tmp, _, _ in self._finishing:
                self._unlink(tmp)
            self._finishing.clear()
            self.open.clear()
            try:
                self._writer.stop()
            except OSError as exc:
                error = ExportError(f"writing to {self.out}: {exc.strerror or exc}")
            else:
                error = None
            for item in self.items.values():
                self._unlink(item.tmp)
            self.items.clear()
            if not self.manifest.closed:
                self.manifest.close()
            try:
                os.rmdir(self.tmp_dir)
            except OSError:
                pass
        if error is not None:
            raise error

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _source_ae(t):
        a = t.association
        return a.calling_ae if t.direction == 0 else a.called_ae

    @staticmethod
    def _uids_from_dataset(head, ts):
        try:
            from .dataset import leading_values
            return leading_values(bytes(head), ts, (0x00080016, 0x00080018))
        except Exception:  # a damaged head: fall back to artificial UIDs
            return {}

    def _record(self, t, sop_class, sop_instance, ts, item, complete):
        a = t.association
        cmd = t.command
        mid = None if cmd is None else (cmd.responded_id if cmd.is_response else cmd.message_id)
        return {
            "file": None, "association": a.id, "calling_ae": a.calling_ae, "called_ae": a.called_ae,
            "direction": "client_to_server" if t.direction == 0 else "server_to_client",
            "message_id": mid, "command": cmd.name if cmd is not None else None,
            "sop_class_uid": sop_class, "sop_instance_uid": sop_instance, "transfer_syntax": ts,
            "transfer_syntax_guessed": item.ts_guessed, "bytes": t.length,
            "sha256": t.sha256, "complete": complete, "first_frame": t.frame_first,
            "last_frame": t.frame_last, "missing": [list(m) for m in t.missing] or None,
            "capture": a.capture,
        }

    def _name(self, t, sop_instance) -> str:
        a = t.association
        cmd = t.command
        client = safe_name(a.calling_ae, 32)
        mid = None if cmd is None else (cmd.responded_id if cmd.is_response else cmd.message_id)
        kind = ""
        if cmd is not None and cmd.field != 0x0001:  # not a C-STORE-RQ: say what it is
            kind = "_" + safe_name(cmd.name, 24)
        return f"{client}_{'unknown' if mid is None else mid}{kind}_{safe_name(sop_instance, 64)}"

    def _assoc_folder(self, a):
        if a is None:
            return os.path.join(self.out, "unknown")
        return os.path.join(self.out, safe_name(
            f"{a.id:04d}_{a.calling_ae or 'unknown'}_to_{a.called_ae or 'unknown'}", 96))

    def _folder(self, t, item, ts) -> str:
        if self.layout == "flat":
            return self.out
        if self.layout == "association":
            return self._assoc_folder(t.association)
        try:
            from .dataset import leading_values
            vals = leading_values(bytes(item.head), ts, (0x00100020, 0x0020000D, 0x0020000E))
        except Exception:  # a damaged head: the object still lands under "unknown-*"
            vals = {}
        pid = vals.get(0x00100020)
        if self.redact and pid:
            pid = "redacted-patient"
        return os.path.join(self.out, safe_name(pid, 64, "unknown-patient"),
                            safe_name(vals.get(0x0020000D), 64, "unknown-study"),
                            safe_name(vals.get(0x0020000E), 64, "unknown-series"))

    def _rel(self, path: str) -> str:
        """``os.path.relpath(path, self.out)`` for the paths built here, by
        cutting the folder off (relpath takes 5 us: twice per object)."""
        if path == self.out:
            return "."
        if path.startswith(self._out_prefix):
            return path[len(self._out_prefix):]
        return os.path.relpath(path, self.out)  # pragma: no cover - every path is built under self.out

    def _make_folder(self, folder) -> None:
        rel = self._rel(folder)
        if rel != ".":
            cur = self.out
            for part in rel.split(os.sep):
                cur = os.path.join(cur, part)
                self._mkdir(cur)

    def _place_later(self, tmp, folder, stem, suffix) -> bytearray:
        """Queue the writer's rename of ``tmp`` to its final name (after the
        jobs queued so far); the returned buffer says how it went."""
        self._make_folder(folder)
        result = bytearray(8)
        self._job(self._writer.place, tmp, os.path.join(folder, stem), suffix, result)
        return result

    def _placed(self, tmp, folder, stem, suffix, placing) -> str:
        """The final path of a file the writer was asked to place (``placing``),
        or placed here (``_place``) when it was not asked or could not."""
        if placing is not None:
            err, k = struct.unpack("=ii", placing)
            if err == 0:
                return os.path.join(folder, f"{stem}{suffix}" if k == 0 else f"{stem}-{k}{suffix}")
        return self._place(tmp, folder, stem, suffix)

    def _place(self, tmp, folder, stem, suffix) -> str:
        """Link the temporary file to ``stem + suffix`` in ``folder`` (``stem-1``,
        ``stem-2``... if taken); never replace a file."""
        self._make_folder(folder)
        for k in range(10000):
            cand = os.path.join(folder, f"{stem}{suffix}" if k == 0 else f"{stem}-{k}{suffix}")
            try:
                os.link(tmp, cand, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError:
                # no hard links here: fall back to an exclusive create and copy
                try:
                    dst = self._open_new(cand)
                except FileExistsError:
                    continue
                with dst, open(tmp, "rb", buffering=0) as src:
                    _copy_keeping_holes(src, dst, 0)
            self._unlink(tmp)
            return cand
        raise ExportError(f"too many files named {stem}{suffix} in {folder}")

    def _prepend_meta(self, item, meta: bytes):
        """Put the meta header in front of a data set written alone (its UIDs
        were not known when it began): copied piece by piece into a new file,
        so memory stays flat whatever the object's size, and the holes of a
        .partial file (bytes the tap lost, possibly claimed by a hostile
        sequence number jump) stay holes instead of becoming written zeros."""
        new = item.tmp + ".meta"
        try:
            with open(item.tmp, "rb", buffering=0) as src, self._open_new(new) as dst:
                dst.write(meta)
                _copy_keeping_holes(src, dst, len(meta))
            os.replace(new, item.tmp)
        except BaseException:
            self._unlink(new)
            raise

    @staticmethod
    def _unlink(path):
        try:
            os.unlink(path)
        except OSError:
            pass


COPY_CHUNK = 1 << 20


def _copy_keeping_holes(src, dst, shift: int) -> None:
    """Copy file ``src`` into ``dst`` from offset ``shift`` on, a chunk at a
    time (flat memory): its holes stay holes and the size is the same."""
    for start, end in _data_ranges(src.fileno()):
        src.seek(start)
        dst.seek(shift + start)
        left = end - start
        while left > 0:
            b = src.read(min(left, COPY_CHUNK))
            if not b:
                break
            dst.write(b)
            left -= len(b)
    dst.truncate(shift + os.fstat(src.fileno()).st_size)


def _data_ranges(fd: int):
    """(start, end) of the parts of a file that hold data: everything but
    its holes, where the system can say (SEEK_DATA/SEEK_HOLE); else the whole file."""
    size = os.fstat(fd).st_size
    if not hasattr(os, "SEEK_DATA"):
        yield 0, size
        return
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                return
            yield pos, size  # not supported here: copy the rest
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end
        pos = end


def _ranges(t) -> str:
    return ", ".join(f"bytes {s}-{e}" for s, e in t.missing[:10])


def _deflated_too_large(path, max_inflate) -> bool:
    """A Part 10 file with a deflated transfer syntax whose data set inflates
    beyond ``max_inflate``: pydicom would inflate it whole in memory."""
    import mmap

    from .dataset import DEFLATED_SYNTAXES, inflated_size
    with open(path, "rb") as f:
        head = f.read(144)
        if len(head) < 144 or head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL":
            return False
        meta_end = 144 + struct.unpack("<I", head[140:144])[0]
        meta = head + f.read(max(0, min(meta_end, 1 << 20) - 144))
        ts = None
        p = 144
        while p + 8 <= len(meta):
            grp, elem = struct.unpack("<HH", meta[p:p + 4])
            vr = meta[p + 4:p + 6]
            if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
                if p + 12 > len(meta):
                    break
                ln, vo = struct.unpack("<I", meta[p + 8:p + 12])[0], p + 12
            else:
                ln, vo = struct.unpack("<H", meta[p + 6:p + 8])[0], p + 8
            if (grp, elem) == (0x0002, 0x0010):
                ts = meta[vo:vo + ln].decode("ascii", "replace").rstrip("\0 ")
                break
            p = vo + ln
        if ts not in DEFLATED_SYNTAXES or os.fstat(f.fileno()).st_size <= meta_end:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                return inflated_size(view[meta_end:], max_inflate) > max_inflate
            finally:
                view.release()


VERIFY_DEFER = 1 << 20


def _check_elements(ds, file_size: int | None) -> None:
    """Convert every element (into sequences too), which proves the data set
    parses to its end; every value of a defined length must lie inside the
    file, and one over VERIFY_DEFER bytes (skipped while reading) is not read."""
    from pydicom.dataelem import RawDataElement

    for tag in list(ds.keys()):
        try:
            raw = ds.get_item(tag, keep_deferred=True)  # pydicom >= 3: not read yet
        except TypeError:  # pragma: no cover - pydicom 2 reads deferred values here
            raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF:
            # pydicom reads a value cut by the end of the file without a word
            if file_size is not None and raw.value_tell + raw.length > file_size:
                raise ValueError(f"element {raw.tag} ends at byte {raw.value_tell + raw.length}, "
                                 f"past the end of the file ({file_size} bytes)")
            if raw.value is None and raw.length > VERIFY_DEFER:
                continue
        elem = ds[raw.tag]
        if elem.VR == "SQ":
            for item in elem.value:
                _check_elements(item, file_size)


def verify(out_dir, max_inflate=None) -> list[tuple[str, str]]:
    """Re-read every exported ``.dcm`` with pydicom; returns (file, error) for failures.
    A deflated data set that inflates beyond ``max_inflate`` (``--max-inflate``) is
    not handed to pydicom, which would inflate it whole: it is reported instead."""
    import pydicom

    from . import limits
    from .dataset import DEFLATED_SYNTAXES
    if max_inflate is None:
        max_inflate = limits.max_inflate
    bad = []
    for root, dirs, names in os.walk(out_dir):
        dirs[:] = [d for d in dirs if d != TMP_DIR]
        for n in sorted(names):
            if not n.endswith(".dcm"):
                continue
            p = os.path.join(root, n)
            try:
                if _deflated_too_large(p, max_inflate):
                    bad.append((os.path.relpath(p, out_dir),
                                f"deflated data set inflates beyond {max_inflate} bytes (--max-inflate): "
                                "not read back"))
                    continue
                with open(p, "rb") as f:
                    # values over VERIFY_DEFER bytes are skipped over, not read:
                    # memory stays flat for a multi-gigabyte object
                    ds = pydicom.dcmread(f, defer_size=VERIFY_DEFER)
                    ts = str(ds.file_meta.TransferSyntaxUID)  # must exist
                    # a deflated data set is read from its inflated bytes: offsets
                    # are not the file's
                    _check_elements(ds, None if ts in DEFLATED_SYNTAXES else os.fstat(f.fileno()).st_size)
            except Exception as exc:  # any parse failure is a finding, not a crash
                bad.append((os.path.relpath(p, out_dir), f"{type(exc).__name__}: {exc}"))
    return bad
