"""The machine-readable summary: one JSON document per run (a contract).

Keys documented in the README ("JSON summary") and relied upon by other
tools: ``associations`` (each with ``operations`` and ``contexts``),
``objects`` and ``expert``.  Keys may be added, never renamed.  Times are
float seconds since the epoch (UTC).
"""

from __future__ import annotations

from . import redact as R
from .association import Association
from .dimse import DataSetTransfer, Operation
from .uids import uid_name

LEADING_TAGS = (
    0x00080016, 0x00080018, 0x00080020, 0x00080050, 0x00080060,
    0x00100010, 0x00100020, 0x0020000D, 0x0020000E,
)
LEADING_KEYS = {
    0x00080016: "sop_class_uid", 0x00080018: "sop_instance_uid", 0x00080020: "study_date",
    0x00080050: "accession_number", 0x00080060: "modality", 0x00100010: "patient_name",
    0x00100020: "patient_id", 0x0020000D: "study_instance_uid", 0x0020000E: "series_instance_uid",
}


def _t(ns):
    return None if ns is None else ns / 1e9


def _dir_name(direction: int) -> str:
    return "client" if direction == 0 else "server"


class SummarySink:
    """Collects per-object facts as data sets end (their bytes are not kept).

    With ``records``, it also makes each connection's JSON records (its
    associations with their operations, and their objects) as soon as the
    connection is over (``on_connection_end``), so that a decoder made with
    ``keep_ended=False`` can forget the connection: memory then holds one
    record per association and object, not every object the decoding made
    (30,000 small associations: 661 -> 410 MB).  The records are kept in a
    ``RecordSpill`` with what canonical() orders them by.  With ``spill``,
    those beyond the first ``hold`` go to its temporary file and memory holds
    only what orders them, about 0.4 KB per association and object (30,000,
    with the core's closed connections made small as well: 410 -> 114 MB);
    ``build`` then gives a document whose ``associations`` and ``objects``
    are ``RecordList``s, read back as they are written out.  With
    ``json_text`` (for a document only ``write_json`` writes), each record
    is kept as its JSON text (``record_text``), made as its connection ends
    instead of all at the end, and the lists are always ``RecordList``s of
    text.  ``build`` gives the same document every way."""

    def __init__(self, leading: bool = True, records: bool = False, redact: bool = False,
                 spill: bool = False, hold: int | None = None, json_text: bool = False):
        from collections import Counter

        self.leading = leading
        self.records = records or spill or json_text
        self.redact = redact
        # records kept as their JSON text (``record_text``), made as connections
        # end rather than all at the end: for a document only write_json writes
        self.json_text = json_text
        self.object_info = {}  # transfer index -> dict of leading values
        self._ended = {}  # with records: association id -> its data sets ended, not yet recorded
        # with records: each record's place in ``spill`` with what canonical()
        # orders it by, by connection as they ended (within a connection in the
        # order the decoder lists them, which settles ties)
        self.spill = RecordSpill(hold if spill else float("inf")) if self.records else None
        self.association_keys = []  # (capture, first PDU end frame, start frame, client, server, start, id, place)
        self.object_keys = []  # (capture, last frame, association id, place)
        self.operation_counts = Counter()
        self.objects_complete = 0

    def on_transfer_end(self, t: DataSetTransfer):
        info = {}
        if self.leading and t.head:
            info = leading_values(t)
        cmd = t.command
        sop_class = sop_inst = None
        if cmd is not None:
            sop_class = cmd.get("affected_sop_class_uid") or cmd.get("requested_sop_class_uid")
            sop_inst = cmd.get("affected_sop_instance_uid") or cmd.get("requested_sop_instance_uid")
        t.sop_class_uid = sop_class or info.get("sop_class_uid")
        t.sop_instance_uid = sop_inst or info.get("sop_instance_uid")
        self.object_info[t.index] = info
        if self.records:
            self._ended.setdefault(t.association.id, []).append(t)

    def on_connection_end(self, fl):
        if not self.records:
            return
        for a in fl.associations:
            rec = association_json(a, self.redact)
            for op in rec["operations"]:
                self.operation_counts[operation_class(op)] += 1
            self.association_keys.append((rec["capture"], rec["first_pdu_end_frame"], rec["start_frame"],
                                          rec["client"], rec["server"], rec["start"], rec["id"],
                                          self._keep(rec, "id")))
            for t in self._ended.pop(a.id, ()):
                rec = object_json(t, self.object_info.pop(t.index, None), self.redact)
                self.objects_complete += bool(rec["complete"])
                self.object_keys.append((rec["capture"], rec["frame_last"], rec["association"],
                                         self._keep(rec, "association")))

    def _keep(self, rec, key):
        """``rec`` into the spill (its place): redacted first, as build() redacts
        the document only after it is ordered; as its text with ``json_text``
        (``key``: its member that build() renumbers)."""
        if self.redact:
            rec = R.redact_document(rec)
        return self.spill.put(record_text(rec, key) if self.json_text else rec)


HOLD_RECORDS = 2048  # records a RecordSpill keeps in memory before it writes to a file


class RecordSpill:
    """Records kept in memory up to ``hold`` of them (default
    HOLD_RECORDS: about 10 MB), the rest written to an unnamed temporary
    file as they are made; read back in any order: ``put(record)`` gives its
    place, ``get(place)`` the record.  Writing one and reading it back costs
    about 10 us, so a capture of few associations never pays it.  marshal
    keeps dicts in order and floats to the bit; a record marshal cannot take
    (a type of its own) goes by pickle."""

    def __init__(self, hold: int | None = None):
        self._held = []
        self._hold = HOLD_RECORDS if hold is None else hold
        self._file = None
        self._end = 0
        self._reading = False

    @property
    def in_file(self) -> bool:
        """Some records went to the file."""
        return self._file is not None

    def put(self, record):
        if len(self._held) < self._hold:
            self._held.append(record)
            return len(self._held) - 1
        import marshal
        try:
            raw = b"m" + marshal.dumps(record, 2)
        except ValueError:
            import pickle
            raw = b"p" + pickle.dumps(record, pickle.HIGHEST_PROTOCOL)
        try:
            if self._file is None:
                import tempfile
                self._file = tempfile.TemporaryFile(prefix="fastdicom-summary-")
            self._file.write(raw)
        except OSError as exc:
            raise self._failed(exc) from None
        at = (self._end, len(raw))
        self._end += len(raw)
        return at

    def get(self, at):
        if type(at) is int:
            return self._held[at]
        import marshal
        try:
            if not self._reading:
                self._file.flush()
                self._reading = True
            self._file.seek(at[0])
            raw = self._file.read(at[1])
        except OSError as exc:
            raise self._failed(exc) from None
        if len(raw) != at[1]:
            raise self._failed(OSError(0, "the file is shorter than what was written to it"))
        if raw[:1] == b"m":
            return marshal.loads(raw[1:])
        import pickle
        return pickle.loads(raw[1:])

    @staticmethod
    def _failed(exc: OSError):
        import tempfile
        from .errors import FastDicomError
        return FastDicomError(f"the summary's temporary file in {tempfile.gettempdir()}: "
                              f"{exc.strerror or exc} (set TMPDIR to a folder with room)")


class RecordList:
    """The records of a summary that are in a ``RecordSpill``, in order:
    iterating reads each back, with ``key`` set to its value here (an
    association's number, an object's association).  A sequence for
    ``len()`` and ``for``; ``write_json`` writes it record by record.  With
    ``text``, the spill holds ``record_text``s and iterating gives each
    record's JSON text, its number filled in."""

    def __init__(self, spill: RecordSpill, places: list, key: str, values: list, text: bool = False):
        self._spill = spill
        self._places = places
        self._key = key
        self._values = values
        self.text = text

    def __len__(self) -> int:
        return len(self._places)

    def __iter__(self):
        get, key = self._spill.get, self._key
        if self.text:
            for at, v in zip(self._places, self._values):
                head, tail = get(at)
                yield head if tail is None else head + repr(v) + tail
            return
        for at, v in zip(self._places, self._values):
            rec = get(at)
            rec[key] = v
            yield rec

    def joined_texts(self, sep: str, batch: int = 1024):
        """With ``text``: ``sep.join`` of the records' JSON texts, their
        numbers filled in, given ``batch`` records at a time (memory holds
        one batch's text, not the list's: 30,000 associations make 100 MB),
        each piece made by one join."""
        get = self._spill.get
        parts = []
        add = parts.extend
        for k, (at, v) in enumerate(zip(self._places, self._values)):
            head, tail = get(at)
            add((sep, head) if tail is None else (sep, head, repr(v), tail))
            if k % batch == batch - 1:
                yield "".join(parts[1:] if k < batch else parts)
                parts.clear()
        if parts:
            yield "".join(parts[1:] if len(self._places) <= batch else parts)


_value_text = None  # the JSON writer's value_text, imported at first use


def record_text(rec: dict, key: str) -> tuple:
    """``rec`` as ``write_json`` writes it in a list of the document (at
    nesting 2), cut around the value of ``key``, its first member, which
    build() renumbers: ``(text before the number, text after it)``, or
    ``(whole text, None)`` when the value is None (nothing is renumbered)::

        {"association": 3, "capture": ...}        an object: one line
                        ^ cut before and after the 3
        {                                         an association: expanded
           "id": 3,
           "capture": ...
          }
    """
    global _value_text
    if _value_text is None:
        _value_text = _json_writer().value_text
    text = _value_text(rec, 2)
    v = rec[key]
    if v is None:
        return text, None
    lead = text.find('"' + key + '": ')
    at = lead + len(key) + 4
    num = repr(v)
    if type(v) is not int or lead < 0 or text[:lead].strip("{\n ") or not text.startswith(num, at) \
            or text[at + len(num)] not in ",}":
        raise AssertionError(f"{key!r} is not the first member of the record")  # pragma: no cover
    return text[:at], text[at + len(num):]


_leading_values = None  # dataset.leading_values, imported at first use


def leading_values(t: DataSetTransfer) -> dict:
    """Patient/study/series context from the head of a data set."""
    global _leading_values
    if _leading_values is None:
        from .dataset import leading_values as _leading_values
    ts = t.transfer_syntax or t.association.transfer_syntax(t.context_id)
    try:
        vals = _leading_values(t.head, ts, LEADING_TAGS)  # read in place: no copy of the head
    except Exception:  # a damaged head must not stop the summary
        return {}
    return {LEADING_KEYS[k]: v for k, v in vals.items() if k in LEADING_KEYS and v not in (None, "")}


def operation_class(op: dict) -> tuple:
    """An operation record's cell in ``counts.operations_by_command``."""
    return (op["command"], op["status_class"] or "unanswered")


def operation_json(op: Operation) -> dict:
    return {
        "command": op.command,
        "message_id": op.message_id,
        "context_id": op.context_id,
        "invoked_by": "requestor" if op.direction == 0 else "acceptor",
        "affected_sop_class_uid": op.affected_sop_class_uid,
        "affected_sop_class_name": uid_name(op.affected_sop_class_uid),
        "affected_sop_instance_uid": op.affected_sop_instance_uid,
        "request_time": _t(op.request_time),
        "request_end_time": _t(op.request_end_time),
        "first_response_time": _t(op.first_response_time),
        "response_time": _t(op.response_time),
        "latency": op.latency,
        "status": op.status,
        "status_text": op.status_text,
        "status_class": op.status_class,
        "error_comment": op.error_comment,
        "pending_responses": op.pending_responses,
        "dataset_bytes": op.dataset_bytes,
        "response_dataset_bytes": op.response_dataset_bytes,
        "move_destination": op.move_destination,
        "priority": op.priority,
        "sub_operations": dict(op.counters) or None,
        "cancel_time": _t(op.cancel_time),
        "request_frame": op.request_frame,
        "response_frame": op.response_frame,
    }


def association_json(a: Association, redact: bool = False) -> dict:
    fl = a.flow
    ab = None
    if a.abort is not None:
        ab = a.abort.to_json()
        ab["by"] = _dir_name(a.abort_by)
        ab["time"] = _t(a.abort_time)
    rj = a.rj.to_json() if a.rj is not None else None
    ui = {}
    if a.rq is not None:
        ui["requestor"] = a.rq.user_info.to_json(redact)
    if a.ac is not None:
        ui["acceptor"] = a.ac.user_info.to_json(redact)
    tcp = None
    if fl.tcp is not None:
        s = fl.tcp
        tcp = {"bytes_client_to_server": s[0], "bytes_server_to_client": s[1],
               "retransmissions_client": s[2], "retransmissions_server": s[3],
               "out_of_order_client": s[4], "out_of_order_server": s[5],
               "zero_window_client": s[6], "zero_window_server": s[7],
               "handshake_rtt": fl.handshake_rtt}
    return {
        "id": a.id,
        "capture": a.capture,
        "client": fl.client,
        "server": fl.server,
        "calling_ae": a.calling_ae,
        "called_ae": a.called_ae,
        "result": a.result,
        "end": a.end,
        "state": a.state,
        "reject": rj,
        "abort": ab,
        "contexts": [dict(c.to_json(), pdvs=a.ctx_pdvs.get(c.id, 0))
                     for c in sorted(a.contexts.values(), key=lambda c: c.id)],
        "roles": a.roles(),
        "user_info": ui,
        "max_pdu_length": {"client_receives": a.max_length(1), "server_receives": a.max_length(0)},
        "start": _t(a.start),
        "end_time": _t(a.end_time),
        "duration": None if a.end_time is None else (a.end_time - a.start) / 1e9,
        "start_frame": a.start_frame,
        "first_pdu_end_frame": a.seen_frame,
        "end_frame": a.end_frame,
        "bytes": {"client_to_server": a.bytes[0], "server_to_client": a.bytes[1]},
        "pdus": {"client_to_server": a.pdus[0], "server_to_client": a.pdus[1]},
        "gaps": a.gaps,
        "gap_bytes": a.gap_bytes,
        "tcp": tcp,
        "operations": [operation_json(op) for op in a.operations],
    }


def object_json(t: DataSetTransfer, info: dict | None, redact: bool = False) -> dict:
    cmd = t.command
    if cmd is None:
        mid = None
    elif cmd.is_response:
        mid = cmd.responded_id
    else:
        mid = cmd.message_id
    ts = t.transfer_syntax or t.association.transfer_syntax(t.context_id)
    d = {
        "association": t.association.id,
        "capture": t.association.capture,
        "message_id": mid,
        "command": cmd.name if cmd is not None else None,
        "direction": "client_to_server" if t.direction == 0 else "server_to_client",
        "context_id": t.context_id,
        "sop_class_uid": t.sop_class_uid,
        "sop_class_name": uid_name(t.sop_class_uid),
        "sop_instance_uid": t.sop_instance_uid,
        "transfer_syntax": ts,
        "bytes": t.length,
        "complete": t.complete,
        "sha256": t.sha256,
        "frame_first": t.frame_first,
        "frame_last": t.frame_last,
        "time_first": _t(t.time_first),
        "time_last": _t(t.time_last),
        "missing": [list(m) for m in t.missing] or None,
        "incomplete_reasons": list(t.incomplete_reasons) or None,
    }
    if info:
        extra = dict(info)
        extra.pop("sop_class_uid", None)
        extra.pop("sop_instance_uid", None)
        if redact:
            extra = R.redact_summary_fields(extra)
        d.update(extra)
    return d


def build(decoder, infos, sink: SummarySink | None = None, redact: bool = False) -> dict:
    """The summary document of a finished ``decoder``.  With a ``records``
    sink, from the records it made as connections ended (``redact`` must be
    the sink's own)."""
    from collections import Counter

    if sink is not None and sink.records:
        return _build_records(decoder, infos, sink, redact)
    objects = []
    for t in decoder.objects:
        info = sink.object_info.get(t.index) if sink is not None else None
        objects.append(object_json(t, info, redact))
    assocs = [association_json(a, redact) for a in decoder.associations]
    ops = Counter()
    for a in decoder.associations:
        for op in a.operations:
            ops[(op.command, op.status_class or "unanswered")] += 1
    return _finish(decoder, infos, assocs, objects, ops, sum(1 for o in objects if o["complete"]), redact)


def _build_records(decoder, infos, sink: SummarySink, redact: bool) -> dict:
    """``build`` for a sink that made records: canonical() orders stand-ins
    that carry only what it orders by (and the record's place), then each
    list becomes a ``RecordList`` of the records in that order, or, when
    none went to the spill's file and they are not texts, the plain list of
    them."""
    assocs = [{"id": k[6], "capture": k[0], "first_pdu_end_frame": k[1], "start_frame": k[2],
               "client": k[3], "server": k[4], "start": k[5], "_at": k[7]} for k in sink.association_keys]
    objects = [{"capture": k[0], "frame_last": k[1], "association": k[2], "_at": k[3]} for k in sink.object_keys]
    sink.association_keys = sink.object_keys = None  # the stand-ins take their place
    doc = _finish(decoder, infos, assocs, objects, sink.operation_counts, sink.objects_complete, redact)
    a, o = doc["associations"], doc["objects"]
    doc["associations"] = RecordList(sink.spill, [x["_at"] for x in a], "id", [x["id"] for x in a],
                                     text=sink.json_text)
    doc["objects"] = RecordList(sink.spill, [x["_at"] for x in o], "association", [x["association"] for x in o],
                                text=sink.json_text)
    if not sink.spill.in_file and not sink.json_text:  # all in memory: what every reader of a document takes
        doc["associations"], doc["objects"] = list(doc["associations"]), list(doc["objects"])
    return doc


def _finish(decoder, infos, assocs, objects, ops, complete: int, redact: bool) -> dict:
    from collections import Counter

    doc = {
        "fastdicom": _version(),
        "captures": [i.to_json() for i in infos],
        "time_first": _t(decoder.first_time),
        "time_last": _t(decoder.last_time),
        "counts": {
            "associations": len(assocs),
            "operations": sum(ops.values()),
            "operations_by_command": _nest(ops),
            "objects": len(objects),
            "objects_complete": complete,
            "pdus": decoder.pdu_count,
            "expert_by_severity": None,  # in canonical order, below
            "expert_dropped": decoder.expert_dropped,
        },
        "associations": assocs,
        "objects": objects,
        "expert": [e.to_json() for e in decoder.expert],
        "tcp_attempts": [{"frame": x.frame, "time": _t(x.time), "client": x.client,
                          "server": x.server, "outcome": x.outcome_text, "capture": x.capture}
                         for x in decoder.attempts],
    }
    doc = canonical(doc)
    doc["counts"]["expert_by_severity"] = dict(Counter(e["severity"] for e in doc["expert"]))
    if redact:
        doc = R.redact_document(doc)
    return doc


def canonical(doc: dict) -> dict:
    """Put a summary in its one canonical order, whatever produced it (one
    decoder, or several workers each with a share of the connections):
    associations by capture and the frame that completed their first PDU,
    numbered from 0; objects by the frame that ended them; expert infos by
    capture and frame.  The same capture always gives the
    same bytes."""
    caps = {c["name"]: k for k, c in enumerate(doc["captures"])}

    def cap(name):
        return caps.get(name, len(caps))

    assocs = sorted(doc["associations"], key=lambda a: (
        cap(a["capture"]), a["first_pdu_end_frame"], a["start_frame"], a["client"], a["server"],
        a["start"] or 0))
    new_id = {(a["capture"], a["id"]): k for k, a in enumerate(assocs)}
    for k, a in enumerate(assocs):
        a["id"] = k
    doc["associations"] = assocs

    def ordered(rows, key):
        for r in rows:
            if r["association"] is not None:
                r["association"] = new_id.get((r.get("capture"), r["association"]), r["association"])
        return [r for _, r in sorted(enumerate(rows), key=lambda p: key(p[1]) + (p[0],))]

    doc["objects"] = ordered(doc["objects"], lambda o: (
        cap(o.get("capture")), o["frame_last"], o["association"]))
    doc["expert"] = ordered(doc["expert"], lambda e: (
        cap(e.get("capture")), e["frame"] is None, e["frame"] or 0,
        -1 if e["association"] is None else e["association"]))
    doc["tcp_attempts"] = sorted(doc["tcp_attempts"], key=lambda x: (
        cap(x.get("capture")), x["frame"], x["client"], x["server"]))
    return doc


# per-connection counters add up across workers; the others are the capture's own
_FLOW_COUNTERS = ("dicom_packets", "other_tcp_packets", "flows", "dicom_flows", "gaps", "gap_bytes",
                  "pdus", "retransmissions", "ooo_segments", "overlap_conflicts", "evicted_flows",
                  "ooo_forced", "open_flows", "ooo_bytes")


def merge(docs: list) -> dict:
    """One summary from the summaries of workers that each took a share of the
    connections (``Engine(partition=(k, n))``): byte-identical to one worker's."""
    from collections import Counter

    # worker-local association ids overlap: make them unique, canonical() renumbers
    for k, d in enumerate(docs):
        off = k << 32
        for a in d["associations"]:
            a["id"] += off
        for row in d["objects"] + d["expert"]:
            if row["association"] is not None:
                row["association"] += off
    out = docs[0]
    for d in docs[1:]:
        out["associations"] += d["associations"]
        out["objects"] += d["objects"]
        out["expert"] += d["expert"]
        out["tcp_attempts"] += d["tcp_attempts"]
        for c0, c in zip(out["captures"], d["captures"]):
            for k in _FLOW_COUNTERS:
                if k in c0["stats"]:
                    c0["stats"][k] += c["stats"][k]
        firsts = [x for x in (out["time_first"], d["time_first"]) if x is not None]
        lasts = [x for x in (out["time_last"], d["time_last"]) if x is not None]
        out["time_first"] = min(firsts) if firsts else None
        out["time_last"] = max(lasts) if lasts else None
        out["counts"]["pdus"] += d["counts"]["pdus"]
        out["counts"]["expert_dropped"] += d["counts"]["expert_dropped"]
    for c0 in out["captures"]:
        c0["stats"]["partition_skipped"] = 0
    out = canonical(out)
    ops = Counter()
    for a in out["associations"]:
        for op in a["operations"]:
            ops[operation_class(op)] += 1
    c = out["counts"]
    c["associations"] = len(out["associations"])
    c["operations"] = sum(ops.values())
    c["operations_by_command"] = _nest(ops)
    c["objects"] = len(out["objects"])
    c["objects_complete"] = sum(1 for o in out["objects"] if o["complete"])
    c["expert_by_severity"] = dict(Counter(e["severity"] for e in out["expert"]))
    return out


def _nest(counter) -> dict:
    out = {}
    for (cmd, cls), n in sorted(counter.items()):
        out.setdefault(cmd, {})[cls] = n
    return out


def _version() -> str:
    from . import __version__
    return __version__


# ----------------------------------------------------------------- formats
def write_json(doc, out) -> None:
    """Write a JSON document for people and for tools: containers of records
    are indented one level per nesting, and each record (an operation, a
    presentation context, an object, an expert info, a row of counts) is one
    compact line.  The output parses to the same document.  Written by
    ``_jsontext.pyx`` in C (pure-Python twin ``_pyjsontext.py``): on a
    summary of many associations ``json.dump(indent=...)``, or encoding node
    by node from Python, took longer than decoding the capture.
    ::

        {
         "associations": [
          {
           "id": 0,
           "contexts": [
            {"id": 1, "abstract_syntax": "1.2.840.10008.5.1.4.1.1.2", ...},
           ],
           ...
    """
    writer = _json_writer()
    if isinstance(doc, dict) and any(isinstance(v, RecordList) for v in doc.values()):
        # records in a spill (build() makes RecordLists only then): the
        # document is laid out expanded, a list of records in it
        _write_spilled(doc, out, writer.value_text)
    else:
        writer.write_json(doc, out)


def _json_writer():
    """The JSON writer: ``_jsontext``, or its pure-Python twin."""
    from .core import PURE_PYTHON
    if PURE_PYTHON:
        from . import _pyjsontext as writer
    else:
        from . import _jsontext as writer
    return writer


def _write_spilled(doc: dict, out, value_text) -> None:
    """``write_json`` for a document holding ``RecordList``s: the same
    characters, written one top-level member and one batch of records at a
    time.  A value at depth 1 is what ``value_text`` gives for it; a list's
    records each take their own lines, so a batch of them is the inside of
    the list it gives for the batch."""
    import itertools
    import json

    sep = "{\n "
    for k, v in doc.items():
        out.write(sep + json.dumps(k) + ": ")
        sep = ",\n "
        if isinstance(v, RecordList):
            if not len(v):
                out.write("[]")
                continue
            if v.text:  # each record already written as it is in the list
                out.write("[\n  ")
                for piece in v.joined_texts(",\n  "):
                    out.write(piece)
                out.write("\n ]")
                continue
            records = iter(v)
            lead = "[\n  "
            while True:
                batch = list(itertools.islice(records, 512))
                if not batch:
                    break
                out.write(lead + value_text(batch, 1)[4:-3])  # "[\n  " ... "\n ]"
                lead = ",\n  "
            out.write("\n ]")
        else:
            out.write(value_text(v, 1))
    out.write("\n}\n")


def jsonl_lines(doc: dict):
    """One JSON object per line: the run, then associations, operations,
    objects and expert infos, each tagged with ``record``."""
    head = {k: v for k, v in doc.items() if k not in ("associations", "objects", "expert")}
    yield {"record": "capture", **head}
    for a in doc["associations"]:
        yield {"record": "association", **{k: v for k, v in a.items() if k != "operations"}}
        for op in a["operations"]:
            yield {"record": "operation", "association": a["id"], **op}
    for o in doc["objects"]:
        yield {"record": "object", **o}
    for e in doc["expert"]:
        yield {"record": "expert", **e}


CSV_COLUMNS = ("association", "calling_ae", "called_ae", "command", "message_id", "context_id",
               "affected_sop_class_uid", "affected_sop_instance_uid", "request_time", "response_time",
               "latency", "status", "status_text", "status_class", "pending_responses", "dataset_bytes")


def _csv_cell(v):
    """Wire strings with control characters escaped, and never read as a
    spreadsheet formula (a leading ``=``, ``+``, ``-`` or ``@`` gets a ``'``)."""
    if v is None:
        return ""
    if isinstance(v, str):
        from .show import safe_text
        v = safe_text(v)
        if v[:1] in ("=", "+", "-", "@"):
            v = "'" + v
    return v


def write_csv(doc: dict, out) -> None:
    import csv
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for a in doc["associations"]:
        for op in a["operations"]:
            row = {"association": a["id"], "calling_ae": a["calling_ae"], "called_ae": a["called_ae"], **op}
            w.writerow([_csv_cell(row.get(c)) for c in CSV_COLUMNS])


def _fmt_bytes(n) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fmt_secs(s) -> str:
    if s is None:
        return ""
    if s < 1:
        return f"{s * 1000:.1f} ms"
    return f"{s:.3f} s"


def operation_line(op: dict) -> str:
    from .show import safe_text
    st = "unanswered" if op["status"] is None else f"0x{op['status']:04x} {op['status_text']}"
    return safe_text(f"assoc {op.get('association')} {op['command']} ID={op['message_id']} "
                     f"{op['affected_sop_instance_uid'] or ''} {st} "
                     f"{_fmt_secs(op['latency'])}").replace("  ", " ")


def _reason(a: dict) -> str:
    if a["reject"]:
        r = a["reject"]
        return f"{r['result_text']}: {r['reason_text']} ({r['source_text']})"
    if a["abort"]:
        ab = a["abort"]
        if ab["source"] == 2:
            return f"A-ABORT from the {ab['by']} (service-provider): {ab['reason_text']}"
        return f"A-ABORT from the {ab['by']} (service-user)"
    return ""


def _table(title: str, rule: bool = True):
    """A text table whose title and cells are escaped: wire values (AE titles,
    UIDs, comments, file names) reach the terminal without control
    characters, and nothing is read as markup."""
    from .show import safe_text
    from .texttable import Table

    return Table(title, rule=rule, escape=safe_text)


def _contexts_table(a, show_all: int = 8):
    """Contexts of one association: those used or refused in full, the
    accepted-but-unused ones counted (the JSON lists them all)."""
    from .texttable import Styled

    ctxs = a["contexts"]
    shown = ctxs if len(ctxs) <= show_all else [
        x for x in ctxs if x["pdvs"] or x["result"] != "accepted"]
    ct = _table(f"Association {a['id']} presentation contexts ({a['calling_ae']} → {a['called_ae']})",
                rule=False)
    for col in ("id", "abstract syntax", "result", "transfer syntax", "PDVs"):
        ct.add_column(col)
    for x in shown:
        if x["result"] == "accepted":
            res, ts = Styled("accepted", "green"), x["transfer_syntax_name"] or x["transfer_syntax"]
        elif x["result"] == "rejected":
            res = Styled(f"rejected: {x['reason']}", "red")
            ts = "proposed: " + ", ".join(uid_name(u) or u for u in x["proposed_transfer_syntaxes"])
        else:
            res = Styled("association rejected" if a["result"] == "rejected" else "no answer", "yellow")
            ts = "proposed: " + ", ".join(uid_name(u) or u for u in x["proposed_transfer_syntaxes"])
        ct.add_row(str(x["id"]), x["abstract_syntax_name"] or x["abstract_syntax"] or "?", res, ts or "",
                   str(x["pdvs"] or ""))
    return ct, len(ctxs) - len(shown)


def render_text(doc: dict, out, slowest: int = 10, to_file: bool = False) -> None:
    """The readable report: plain columns, coloured on a terminal."""
    from .show import safe_text
    from .texttable import Styled, paint

    color = hasattr(out, "isatty") and out.isatty() and not to_file

    def emit(line: str) -> None:
        out.write(line + "\n")

    def table(t) -> None:
        t.write(out, color)

    c = doc["counts"]
    caps = safe_text(", ".join(x["name"] for x in doc["captures"]))
    dur = None
    if doc["time_first"] is not None and doc["time_last"] is not None:
        dur = doc["time_last"] - doc["time_first"]
    emit(paint(f"fastdicom {doc['fastdicom']}: {caps}", "bold", color))
    frames = sum((x["stats"] or {}).get("frames", 0) for x in doc["captures"])
    emit(f"{frames} frames, {c['pdus']} PDUs over {_fmt_secs(dur) or '0 s'}; "
         f"{c['associations']} associations, {c['operations']} operations, "
         f"{c['objects']} objects ({c['objects_complete']} complete)")
    emit("")

    t = _table("Associations")
    for col in ("#", "client → server", "calling → called", "result", "end", "duration",
                "ops", "bytes", "reason"):
        t.add_column(col, justify="right" if col in ("#", "ops", "bytes") else "left")
    for a in doc["associations"]:
        res_style = {"accepted": "green", "rejected": "red"}.get(a["result"], "yellow")
        end_style = {"released": "green", "aborted": "red"}.get(a["end"], "yellow")
        t.add_row(str(a["id"]), f"{a['client']} → {a['server']}",
                  f"{a['calling_ae'] or '?'} → {a['called_ae'] or '?'}",
                  Styled(a["result"], res_style), Styled(a["end"], end_style),
                  _fmt_secs(a["duration"]) or "", str(len(a["operations"])),
                  _fmt_bytes(a["bytes"]["client_to_server"] + a["bytes"]["server_to_client"]),
                  _reason(a))
    table(t)
    for a in doc["associations"]:
        if a["contexts"]:
            emit("")
            ct, hidden = _contexts_table(a)
            table(ct)
            if hidden:
                emit(f"  and {hidden} more accepted contexts that carried no data (--format json lists them)")
    emit("")

    ops = c["operations_by_command"]
    if ops:
        classes = ["success", "pending", "warning", "failure", "cancel", "unanswered"]
        ot = _table("Operations by command and status class")
        ot.add_column("command")
        for k in classes:
            ot.add_column(k, justify="right")
        ot.add_column("total", justify="right")
        for cmd, by in ops.items():
            ot.add_row(cmd, *[str(by.get(k, "")) for k in classes], str(sum(by.values())))
        table(ot)
        # the slowest, as a stable sort by latency gives them, keeping only them
        # (the associations may be read from a file: RecordList)
        import heapq
        rows = heapq.nsmallest(slowest, ((op, a["id"]) for a in doc["associations"] for op in a["operations"]
                                         if op["latency"] is not None), key=lambda r: -r[0]["latency"])
        if rows:  # (none when slowest <= 0)
            emit("")
            st = _table(f"Slowest operations (top {len(rows)})")
            for col in ("latency", "assoc", "command", "ID", "SOP instance", "status", "bytes"):
                st.add_column(col, justify="right" if col in ("latency", "assoc", "ID", "bytes") else "left")
            for op, aid in rows:
                st.add_row(_fmt_secs(op["latency"]) or "", str(aid), op["command"], str(op["message_id"]),
                           op["affected_sop_instance_uid"] or "",
                           f"0x{op['status']:04x} {op['status_text']}" if op["status"] is not None else "",
                           _fmt_bytes(op["dataset_bytes"]))
            table(st)
        emit("")

    if doc["expert"]:
        from collections import OrderedDict
        groups = OrderedDict()
        for e in doc["expert"]:
            groups.setdefault((e["severity"], e["id"]), []).append(e)
        order = {"error": 0, "warning": 1, "note": 2, "chat": 3}
        et = _table("Expert info")
        for col in ("severity", "count", "id", "first", "example"):
            et.add_column(col, justify="right" if col == "count" else "left")
        for (sev, id_), items in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
            style = {"error": "red", "warning": "yellow", "note": "cyan"}.get(sev, "")
            first = items[0]
            where = f"frame {first['frame']}" if first["frame"] else ""
            if first["association"] is not None:
                where += f" assoc {first['association']}"
            et.add_row(Styled(sev, style), str(len(items)), id_, where.strip(), first["message"])
        table(et)
    else:
        emit("No expert info.")
