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
    """Collects per-object facts as data sets end (their bytes are not kept)."""

    def __init__(self, leading: bool = True):
        self.leading = leading
        self.object_info = {}  # transfer index -> dict of leading values

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


def leading_values(t: DataSetTransfer) -> dict:
    """Patient/study/series context from the head of a data set."""
    try:
        from .dataset import leading_values as lv
    except ImportError:  # pragma: no cover - the decoder module is optional here
        return {}
    ts = t.transfer_syntax or t.association.transfer_syntax(t.context_id)
    try:
        vals = lv(bytes(t.head), ts, LEADING_TAGS)
    except Exception:  # a damaged head must not stop the summary
        return {}
    return {LEADING_KEYS[k]: v for k, v in vals.items() if k in LEADING_KEYS and v not in (None, "")}


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
        "contexts": [c.to_json() for c in sorted(a.contexts.values(), key=lambda c: c.id)],
        "roles": a.roles(),
        "user_info": ui,
        "max_pdu_length": {"client_receives": a.max_length(1), "server_receives": a.max_length(0)},
        "start": _t(a.start),
        "end_time": _t(a.end_time),
        "duration": None if a.end_time is None else (a.end_time - a.start) / 1e9,
        "start_frame": a.start_frame,
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
    from collections import Counter

    objects = []
    for t in decoder.objects:
        info = sink.object_info.get(t.index) if sink is not None else None
        objects.append(object_json(t, info, redact))
    assocs = [association_json(a, redact) for a in decoder.associations]
    ops = Counter()
    for a in decoder.associations:
        for op in a.operations:
            ops[(op.command, op.status_class or "unanswered")] += 1
    sev = Counter(e.severity.label for e in decoder.expert)
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
            "objects_complete": sum(1 for o in objects if o["complete"]),
            "pdus": decoder.pdu_count,
            "expert_by_severity": dict(sev),
            "expert_dropped": decoder.expert_dropped,
        },
        "associations": assocs,
        "objects": objects,
        "expert": [e.to_json() for e in decoder.expert],
        "tcp_attempts": [{"frame": x.frame, "time": _t(x.time), "client": x.client,
                          "server": x.server, "outcome": x.outcome_text} for x in decoder.attempts],
    }
    if redact:
        doc = R.redact_document(doc)
    return doc


def _nest(counter) -> dict:
    out = {}
    for (cmd, cls), n in sorted(counter.items()):
        out.setdefault(cmd, {})[cls] = n
    return out


def _version() -> str:
    from . import __version__
    return __version__
