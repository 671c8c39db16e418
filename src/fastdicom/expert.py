"""Expert info: the catalogue of conditions fastdicom reports, with stable IDs.

Every sink (summary, pdus, show, export, analyses) reports through this one
catalogue, so an ID means the same everywhere and tests can assert on IDs,
never on message text.  IDs follow Wireshark's ``dicom.*`` expert names where
Wireshark has the condition (so users can search for them), and extend them
where it has none.  Severities and groups follow Wireshark's expert model.
"""

from __future__ import annotations

from enum import IntEnum

from . import events as ev
from ._record import record


class Severity(IntEnum):
    CHAT = 1
    NOTE = 2
    WARNING = 3
    ERROR = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        t = text.strip().lower()
        aliases = {"warn": "warning", "err": "error"}
        t = aliases.get(t, t)
        for s in cls:
            if s.label == t:
                return s
        raise ValueError(f"unknown severity {text!r} (chat, note, warning, error)")


# groups
SEQUENCE = "sequence"  # TCP: gaps, retransmissions, overlaps
PROTOCOL = "protocol"  # PS3.8 state machine and negotiation
MALFORMED = "malformed"  # bytes that break the encoding rules
RESPONSE_CODE = "response code"  # rejections, aborts, DIMSE statuses
REASSEMBLY = "reassembly"  # PDV and object reassembly, capture file damage


@record(frozen=True)
class ExpertDef:
    id: str
    severity: Severity
    group: str
    template: str  # str.format template over the keyword arguments


@record(frozen=True)
class ExpertInfo:
    """One reported condition."""

    id: str
    severity: Severity
    group: str
    message: str
    time: int | None = None  # ns since the epoch
    frame: int | None = None
    association: int | None = None
    capture: str | None = None  # the capture file it was found in

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "severity": self.severity.label,
            "group": self.group,
            "message": self.message,
            "time": None if self.time is None else self.time / 1e9,
            "frame": self.frame,
            "association": self.association,
            "capture": self.capture,
        }


# conditions of the capture file itself (not of one connection): with several
# workers, each reads the whole file, so only worker 0 reports these
CAPTURE_LEVEL = frozenset({"capture.truncated", "capture.damaged", "capture.linktype", "capture.gzip",
                           "ip.fragment", "tcp.flows.full"})

def _d(id, severity, group, template):
    return ExpertDef(id, severity, group, template)


S = Severity
CATALOGUE: dict[str, ExpertDef] = {d.id: d for d in [
    # --- capture file and link layer --------------------------------------
    _d("capture.truncated", S.WARNING, REASSEMBLY,
       "capture file ends inside a record: {present} of {expected} bytes present"),
    _d("capture.damaged", S.ERROR, MALFORMED,
       "damaged record or block header at file offset {offset}: {skipped} bytes skipped"),
    _d("capture.linktype", S.NOTE, MALFORMED, "unsupported link type {linktype}: packets skipped"),
    _d("capture.gzip", S.ERROR, MALFORMED, "{why}: the rest of the file is lost"),
    _d("ip.fragment", S.NOTE, REASSEMBLY,
       "IP fragments are not reassembled (first in frame {first_frame}); their TCP data is lost"),
    # --- TCP ----------------------------------------------------------------
    _d("tcp.gap", S.WARNING, SEQUENCE, "{size} bytes missing from the stream at offset {offset} (lost by the tap)"),
    _d("tcp.gap.unknown", S.WARNING, SEQUENCE, "bytes of unknown size missing from the stream at offset {offset}"),
    _d("tcp.overlap.conflict", S.WARNING, SEQUENCE,
       "overlap with conflicting data: {length} retransmitted bytes at offset {offset} differ from the first copy (first kept)"),
    _d("tcp.seq.jump", S.WARNING, SEQUENCE, "TCP sequence number jumped by {jump} bytes"),
    _d("tcp.ooo.budget", S.WARNING, REASSEMBLY,
       "out-of-order budget of {budget} bytes exhausted: a hole was declared lost"),
    _d("tcp.ooo.segments", S.WARNING, REASSEMBLY,
       "more than {bound} out-of-order segments held: a hole was declared lost"),
    _d("tcp.flows.full", S.WARNING, REASSEMBLY,
       "connection table full ({bound}): the least recently active connections were evicted"),
    # --- PDU framing (core) -------------------------------------------------
    _d("dicom.pdu.invalid", S.ERROR, MALFORMED, "invalid PDU header (type 0x{type:02x}, length {length}): resynchronising"),
    _d("dicom.pdu.resync", S.WARNING, REASSEMBLY, "PDU boundary found again after {skipped} bytes ({pdu})"),
    _d("dicom.pdu.midstream", S.NOTE, REASSEMBLY,
       "capture starts mid-stream: {skipped} bytes before the first PDU boundary ({pdu})"),
    _d("dicom.pdu.over_max", S.WARNING, PROTOCOL,
       "PDU length {length} is larger than the receiver's maximum length {max}"),
    _d("dicom.pdu_length.invalid", S.ERROR, MALFORMED, "Invalid PDU length {length} for {pdu}"),
    _d("dicom.pdv.len.invalid", S.ERROR, MALFORMED, "Invalid PDV length {length} ({why})"),
    _d("dicom.pdv.flags.invalid", S.ERROR, MALFORMED,
       "Invalid Flags: message control header 0x{flags:02x} has reserved bits set"),
    _d("dicom.pdv.header.cut", S.ERROR, MALFORMED, "PDU ends inside a PDV item header ({left} bytes)"),
    _d("dicom.pdu.truncated", S.WARNING, REASSEMBLY,
       "stream ended inside a {pdu}: {missing} bytes missing"),
    _d("dicom.stream.unsynced", S.NOTE, REASSEMBLY,
       "{bytes} bytes of the stream could not be framed into PDUs"),
    _d("dicom.command.too_large", S.ERROR, MALFORMED, "command PDV of {length} bytes cut at the bound"),
    _d("dicom.pdv.ctx.even", S.WARNING, MALFORMED,
       "presentation context ID {id} is even (PS3.8 requires odd IDs)"),
    _d("dicom.pdu.in_gap", S.WARNING, REASSEMBLY, "{pdu} lost bytes to a gap"),
    # --- association (PS3.8) -------------------------------------------------
    _d("dicom.assoc.reject", S.WARNING, RESPONSE_CODE,
       "Association rejected: {result}, {source}: {reason}"),
    _d("dicom.assoc.abort", S.WARNING, RESPONSE_CODE,
       "Association aborted: A-ABORT from the {who} ({source}){reason}"),
    _d("dicom.pctx.rejected", S.NOTE, RESPONSE_CODE,
       "{count} presentation context(s) rejected ({reason}): {contexts}"),
    _d("dicom.no_abstract_syntax", S.ERROR, MALFORMED,
       "No Abstract Syntax provided for presentation context {id}"),
    _d("dicom.multiple_abstract_syntax", S.ERROR, MALFORMED,
       "More than one Abstract Syntax provided for presentation context {id}"),
    _d("dicom.no_transfer_syntax", S.ERROR, MALFORMED,
       "No Transfer Syntax provided for presentation context {id}"),
    _d("dicom.no_abstract_syntax_uid", S.ERROR, MALFORMED,
       "No Abstract Syntax UID found for presentation context {id}"),
    _d("dicom.multiple_transfer_syntax", S.ERROR, MALFORMED,
       "Only one Transfer Syntax allowed in an A-ASSOCIATE-AC (context {id} has {count})"),
    _d("dicom.assoc.item.len.invalid", S.ERROR, MALFORMED,
       "Invalid association item length: item 0x{type:02x} claims {length} bytes, {room} left"),
    _d("dicom.assoc.item.unknown", S.NOTE, MALFORMED, "unknown {where} item 0x{type:02x} ({length} bytes) kept raw"),
    _d("dicom.assoc.pdu.malformed", S.ERROR, MALFORMED, "{pdu} malformed: {why}"),
    _d("dicom.assoc.version", S.WARNING, PROTOCOL, "protocol version 0x{version:04x} (PS3.8 defines version 1)"),
    _d("dicom.ae.unusual", S.NOTE, PROTOCOL, "{which} AE title {ae!r} {why}"),
    _d("dicom.pctx.id.invalid", S.WARNING, MALFORMED,
       "presentation context ID {id} {why}"),
    _d("dicom.pctx.unproposed", S.WARNING, PROTOCOL,
       "A-ASSOCIATE-AC answers presentation context {id}, which the A-ASSOCIATE-RQ did not propose"),
    _d("dicom.pctx.unanswered", S.WARNING, PROTOCOL,
       "A-ASSOCIATE-AC has no answer for {count} proposed presentation context(s): {ids}"),
    _d("dicom.assoc.actx", S.WARNING, PROTOCOL,
       "application context {uid} is not the DICOM application context 1.2.840.10008.3.1.1.1"),
    _d("dicom.assoc.no_accept", S.WARNING, PROTOCOL,
       "A-ASSOCIATE-RQ never answered (no A-ASSOCIATE-AC, -RJ or A-ABORT in the capture)"),
    _d("dicom.assoc.state", S.WARNING, PROTOCOL, "{pdu} unexpected in state {state}: {why}"),
    _d("dicom.assoc.unknown_start", S.NOTE, PROTOCOL,
       "association negotiation not captured: presentation contexts unknown"),
    _d("dicom.assoc.no_release", S.NOTE, PROTOCOL, "association ended without A-RELEASE or A-ABORT ({how})"),
    # --- DIMSE (PS3.7) ------------------------------------------------------
    _d("dicom.pdv.ctx.invalid", S.ERROR, PROTOCOL,
       "Invalid Presentation Context ID {id}: {why}"),
    _d("dicom.data.tag.missing", S.ERROR, MALFORMED,
       "Early termination of tag: {what} ends inside an element"),
    _d("dicom.command.malformed", S.ERROR, MALFORMED, "command set malformed: {why}"),
    _d("dicom.command.unknown", S.WARNING, MALFORMED, "unknown command field 0x{field:04x}"),
    _d("dicom.status_msg", S.WARNING, RESPONSE_CODE, "{command} status 0x{status:04x}: {text}{comment}"),
    _d("dicom.status.failure", S.ERROR, RESPONSE_CODE, "{command} failed, status 0x{status:04x}: {text}{comment}"),
    _d("dicom.status.cancel", S.NOTE, RESPONSE_CODE, "{command} cancelled, status 0x{status:04x}: {text}"),
    _d("dicom.op.unanswered", S.WARNING, RESPONSE_CODE,
       "{command} (message ID {message_id}) was never answered"),
    _d("dicom.op.duplicate_id", S.WARNING, PROTOCOL,
       "{command} reuses message ID {message_id} of an operation still outstanding"),
    _d("dicom.op.unmatched_response", S.NOTE, PROTOCOL,
       "{command} responds to message ID {message_id}, whose request is not in the capture"),
    _d("dicom.message.orphan_data", S.WARNING, PROTOCOL,
       "data set on context {id} without a preceding command"),
    _d("dicom.message.interleaved", S.WARNING, PROTOCOL,
       "a PDV on context {id} while a message on context {other} is incomplete: fragments of "
       "messages are interleaved"),
    _d("dicom.message.missing_data", S.WARNING, PROTOCOL,
       "{command} announces a data set that never came"),
    _d("dicom.object.incomplete", S.WARNING, REASSEMBLY,
       "{what} incomplete: {why}"),
    _d("dicom.object.inflate_cap", S.WARNING, MALFORMED,
       "{what}: deflated data inflates beyond the cap of {cap} bytes (--max-inflate): "
       "decoded only that far"),
    _d("dicom.dataset.depth", S.WARNING, MALFORMED,
       "{what}: sequences nest deeper than {max} levels at offset {offset} (--max-depth): "
       "not decoded past it"),
    _d("export.partial", S.WARNING, REASSEMBLY, "{file} kept incomplete: missing {missing}"),
    _d("export.cap", S.WARNING, REASSEMBLY,
       "export stopped at the cap of {cap} bytes: further objects are not written"),
    _d("dicom.dataset.malformed", S.WARNING, MALFORMED, "data set malformed at offset {offset}: {why}"),
]}

# core expert codes (events.X_*) -> catalogue ID and how to name the arguments
_CORE = {
    ev.X_CAPTURE_TRUNCATED: ("capture.truncated", ("present", "expected")),
    ev.X_CAPTURE_DAMAGED: ("capture.damaged", ("offset", "skipped")),
    ev.X_LINKTYPE_UNSUPPORTED: ("capture.linktype", ("linktype", None)),
    ev.X_IP_FRAGMENT: ("ip.fragment", ("first_frame", None)),
    ev.X_TCP_OVERLAP_CONFLICT: ("tcp.overlap.conflict", ("length", None)),
    ev.X_TCP_SEQ_JUMP: ("tcp.seq.jump", ("jump", None)),
    ev.X_OOO_BUDGET: ("tcp.ooo.budget", ("budget", None)),
    ev.X_FLOW_TABLE_FULL: ("tcp.flows.full", ("bound", None)),
    ev.X_PDU_INVALID: ("dicom.pdu.invalid", ("type", "length")),
    ev.X_RESYNC: ("dicom.pdu.resync", ("skipped", "type")),
    ev.X_MIDSTREAM: ("dicom.pdu.midstream", ("skipped", "type")),
    ev.X_PDU_OVER_MAX: ("dicom.pdu.over_max", ("length", "max")),
    ev.X_PDU_LENGTH_UNEXPECTED: ("dicom.pdu_length.invalid", ("type", "length")),
    ev.X_PDV_TOO_SMALL: ("dicom.pdv.len.invalid", ("length", None)),
    ev.X_PDV_OVERRUN: ("dicom.pdv.len.invalid", ("length", "room")),
    ev.X_PDV_FLAGS_INVALID: ("dicom.pdv.flags.invalid", ("flags", None)),
    ev.X_PDV_HEADER_CUT: ("dicom.pdv.header.cut", ("left", None)),
    ev.X_PDU_TRUNCATED: ("dicom.pdu.truncated", ("type", "missing")),
    ev.X_UNSYNCED_BYTES: ("dicom.stream.unsynced", ("bytes", None)),
    ev.X_COMMAND_TOO_LARGE: ("dicom.command.too_large", ("length", None)),
    ev.X_PDV_CONTEXT_EVEN: ("dicom.pdv.ctx.even", ("id", None)),
    ev.X_PDU_IN_GAP: ("dicom.pdu.in_gap", ("type", None)),
    ev.X_OOO_SEGMENTS: ("tcp.ooo.segments", ("bound", None)),
}

PDU_NAMES = {
    1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF",
    5: "A-RELEASE-RQ", 6: "A-RELEASE-RP", 7: "A-ABORT",
}


def pdu_name(t: int) -> str:
    return PDU_NAMES.get(t, f"PDU type 0x{t:02x}")


def make(expert_id: str, /, *, time=None, frame=None, association=None, **kw) -> ExpertInfo:
    """Build an ExpertInfo from the catalogue.  Unknown IDs are a bug."""
    d = CATALOGUE[expert_id]
    try:
        msg = d.template.format(**kw)
    except (KeyError, ValueError, IndexError):  # a template/argument mismatch is a bug
        msg = d.template + " " + repr(kw)
    return ExpertInfo(d.id, d.severity, d.group, msg, time, frame, association)


def from_core(code: int, a1: int, a2: int, offset: int, *, time=None, frame=None,
              association=None) -> ExpertInfo:
    """Turn a core ``EV_EXPERT`` into an ExpertInfo."""
    id, names = _CORE[code]
    kw = {"offset": offset}
    if names[0]:
        kw[names[0]] = a1
    if names[1]:
        kw[names[1]] = a2
    if "type" in kw:
        kw["pdu"] = pdu_name(kw["type"])
    if code == ev.X_PDV_TOO_SMALL:
        kw["why"] = "too small"
    elif code == ev.X_PDV_OVERRUN:
        kw["why"] = f"too large: {a2} bytes left in the PDU"
    return make(id, time=time, frame=frame, association=association, **kw)
