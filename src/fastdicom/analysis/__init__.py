"""Troubleshooting analyses: from what the decoder saw to findings a PACS
engineer can act on.

Each analysis is one module with ``run(ctx) -> list[Finding]``:

    associations   rejections, aborts, unanswered requests, TCP failures, AE titles
    negotiation    presentation contexts, transfer syntaxes, roles, user identity
    find           C-FIND identifiers against their responses
    retrieve       C-MOVE sub-associations and C-GET sub-operations
    performance    latency split, think time, throughput, TCP symptoms
    data           data sets that do not parse, UID and character set problems

The decoder drops data set bytes once its sinks have seen them, so the
``Collector`` sink keeps what the analyses need while the capture streams:
decoded identifiers (C-FIND/C-MOVE/C-GET data sets), data set checks, every
response's time and status, and a bounded list of PDUs per association for
the ladder diagrams.  ``analyze`` then runs every analysis over the decoder's
associations and operations.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from ..expert import Severity

ANALYSES = ("associations", "negotiation", "find", "retrieve", "performance", "data")

IDENTIFIER_SERVICES = frozenset({"C-FIND", "C-MOVE", "C-GET"})
PIXEL_DATA = 0x7FE00010


@dataclass
class Finding:
    """One problem (or notable fact) found by an analysis."""

    analysis: str  # module name, e.g. "find"
    code: str  # stable ID, e.g. "find.trailing_space"
    severity: Severity
    title: str  # one line
    explanation: str  # plain language: what happened, why it matters, what to check
    frames: list = field(default_factory=list)  # evidence frames (of the association's capture)
    associations: list = field(default_factory=list)  # association ids
    data: dict = field(default_factory=dict)  # structured facts for tools
    time: int | None = None  # ns since the epoch, when it happened
    capture: str | None = None  # the capture the frames belong to

    def to_json(self) -> dict:
        return {
            "analysis": self.analysis, "code": self.code, "severity": self.severity.label,
            "capture": self.capture,
            "title": self.title, "explanation": self.explanation,
            "frames": [f for f in self.frames if f], "associations": list(self.associations),
            "time": None if self.time is None else self.time / 1e9, "data": self.data,
        }


@dataclass
class Key:
    """One top-level element of an identifier."""

    tag: int
    vr: str
    keyword: str
    raw: bytes  # value bytes as on the wire (padding included)
    value: object  # decoded text (str or list of str), or None
    status: str | None = None  # decoding problem
    items: int = 0  # sequence items

    @property
    def text(self) -> str:
        v = self.value
        if v is None:
            return ""
        if isinstance(v, list):
            return "\\".join(str(x) for x in v)
        return str(v)

    @property
    def empty(self) -> bool:
        if self.vr == "SQ":
            return self.items == 0
        return not self.raw.strip(b" \x00")


@dataclass
class Identifier:
    """A decoded C-FIND/C-MOVE/C-GET identifier (request or response)."""

    keys: dict  # tag -> Key
    complete: bool
    problems: list
    time: int
    frame: int

    def get(self, tag):
        return self.keys.get(tag)


@dataclass
class Response:
    time: int  # first byte of the response command
    frame: int
    status: int | None
    counters: dict


@dataclass
class ObjectCheck:
    """What the data analysis learnt from one data set's head."""

    transfer: object
    malformed: str | None = None
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    charset: str | None = None
    charset_problems: list = field(default_factory=list)


@dataclass
class PduEvent:
    """One PDU, compactly, for the ladder diagram."""

    type: int
    direction: int
    length: int
    time: int  # first byte
    time_last: int
    frame: int
    info: str


class Collector:
    """Decoder sink that keeps what the analyses need (see the module doc).

    Put it last among the sinks: after it has read a data set's head it drops
    it, as the decoder does when it does not keep PDUs.
    """

    MAX_PDUS_PER_ASSOCIATION = 600

    def __init__(self, check_objects: bool = True):
        self.check_objects = check_objects
        self.identifiers = {}  # transfer index -> Identifier
        self.objects = {}  # transfer index -> ObjectCheck (only data sets with something to say)
        self.object_uids = {}  # transfer index -> (sop class, sop instance) from the data set
        self.responses = {}  # operation index -> [Response]
        # operation index -> [first byte of the request's PDU, of the first response's PDU]:
        # a command completes when its last byte arrives, which can be much later than the
        # first byte of its PDU (a sender that waits for an ACK between header and body)
        self.wire = {}
        self.cancels = {}  # operation index -> (time, frame)
        self.pdus = {}  # association id -> [PduEvent]
        self.pdus_dropped = {}  # association id -> count not kept
        self.traffic_t = array("d")  # PDU end times (s) and sizes, for throughput
        self.traffic_n = array("d")
        self.decoder = None

    def bind(self, decoder):
        self.decoder = decoder

    # -- decoder hooks ---------------------------------------------------------
    def on_pdu(self, rec):
        self.traffic_t.append(rec.time_last / 1e9)
        self.traffic_n.append(rec.length + 6)
        a = rec.association
        if a is None:
            return
        if rec.type == 4:
            for pdv in rec.pdvs:
                cmd = pdv.command
                op = getattr(cmd, "operation", None) if cmd is not None else None
                if op is None or cmd.is_cancel:
                    continue
                w = self.wire.setdefault(op.index, [None, None])
                k = 1 if cmd.is_response else 0
                if w[k] is None:
                    w[k] = rec.time_first
        lst = self.pdus.setdefault(a.id, [])
        if len(lst) >= self.MAX_PDUS_PER_ASSOCIATION:
            self.pdus_dropped[a.id] = self.pdus_dropped.get(a.id, 0) + 1
            return
        from ..show import pdu_info
        try:
            info = pdu_info(rec)
        except Exception:  # a label must never stop the analysis
            info = rec.name
        lst.append(PduEvent(rec.type, rec.direction, rec.length + 6, rec.time_first, rec.time_last,
                            rec.frame_first, info))

    def on_command(self, cmd):
        op = cmd.operation
        if op is None:
            return
        if cmd.is_cancel:
            self.cancels.setdefault(op.index, (cmd.time, cmd.frame))
        elif cmd.is_response:
            counters = {k: cmd.elements[k] for k in ("remaining", "completed", "failed", "warning")
                        if k in cmd.elements}
            self.responses.setdefault(op.index, []).append(
                Response(cmd.time, cmd.frame, cmd.status, counters))

    def on_transfer_end(self, t):
        head = t.head
        if head:
            cmd = t.command
            service = cmd.service if cmd is not None else None
            try:
                if service in IDENTIFIER_SERVICES:
                    self.identifiers[t.index] = decode_identifier(t)
                elif self.check_objects:
                    chk = check_object(t)
                    if chk is not None:
                        self.objects[t.index] = chk
            except Exception as exc:  # never let one data set stop the run
                self.objects[t.index] = ObjectCheck(t, malformed=f"could not be decoded ({exc})")
        if self.decoder is not None and self.decoder.keep_pdus and not self.decoder.keep_pdv_data:
            t.head = None  # as the decoder does without keep_pdus: memory stays flat


def _transfer_syntax(t):
    return t.transfer_syntax or t.association.transfer_syntax(t.context_id)


def _whole(t) -> bool:
    return t.head is not None and len(t.head) >= t.length and not t.missing and not t.started_midway


def decode_identifier(t) -> Identifier:
    from .. import dataset as D
    ds = D.decode(bytes(t.head), _transfer_syntax(t))
    keys = {}
    for e in ds.elements:
        if e.vr == "SQ":
            keys[e.tag] = Key(e.tag, "SQ", e.keyword, b"", None, e.status, len(e.items))
        else:
            raw = e.raw
            val = e.value if isinstance(e.value, (str, list)) else (
                None if e.value is None else D.format_value(e, 0))
            keys[e.tag] = Key(e.tag, e.vr, e.keyword, raw, val, e.status)
    whole = _whole(t)
    return Identifier(keys, whole and ds.complete, list(ds.problems), t.time_first, t.frame_first)


def check_object(t) -> ObjectCheck | None:
    """Parse a data set's head up to its pixel data; keep only what matters."""
    from .. import dataset as D
    ds = D.decode(bytes(t.head), _transfer_syntax(t), stop_tag=PIXEL_DATA)
    chk = ObjectCheck(t)
    whole = _whole(t)
    if ds.status == D.WALK_MALFORMED or (whole and not ds.complete):
        chk.malformed = ds.status_text
        if ds.problems:
            chk.malformed += ": " + "; ".join(str(p) for p in ds.problems[:3])
    for tag, attr in ((0x00080016, "sop_class_uid"), (0x00080018, "sop_instance_uid")):
        e = ds.get(tag)
        if e is not None and isinstance(e.value, str):
            setattr(chk, attr, e.value)
    cs = ds.get(0x00080005)
    if cs is not None:
        chk.charset = cs.value if isinstance(cs.value, str) else "\\".join(cs.value or [])
    for e in ds.walk():
        if e.status and ("decode" in e.status or "character set" in e.status):
            chk.charset_problems.append((e.tag, e.keyword or e.tag_str, e.status))
    cmd = t.command
    mismatch = False
    if cmd is not None and not cmd.is_response:
        cc = cmd.get("affected_sop_class_uid")
        ci = cmd.get("affected_sop_instance_uid")
        mismatch = ((cc and chk.sop_class_uid and cc != chk.sop_class_uid)
                    or (ci and chk.sop_instance_uid and ci != chk.sop_instance_uid))
    if chk.malformed or chk.charset_problems or mismatch:
        return chk
    return None


@dataclass
class Result:
    """Everything the analyses produced: findings plus the tables they built
    (the report draws from these)."""

    findings: list
    context: object

    def by_severity(self) -> dict:
        out = {}
        for f in self.findings:
            out[f.severity.label] = out.get(f.severity.label, 0) + 1
        return out

    def to_json(self) -> dict:
        from .. import redact as R
        doc = {"findings": [f.to_json() for f in self.findings],
               "findings_by_severity": self.by_severity()}
        return R.redact_document(doc) if self.context.redact else doc


def analyze(decoder, collector: Collector, redact: bool = False, only=None) -> Result:
    """Run the analyses (``only``: names from ANALYSES) over a finished decoder."""
    import importlib

    from .context import Context
    ctx = Context(decoder, collector, redact)
    findings = []
    for name in ANALYSES:
        if only and name not in only:
            continue
        mod = importlib.import_module(f"{__name__}.{name}")
        findings.extend(mod.run(ctx))
    findings.sort(key=lambda f: (-int(f.severity), f.time if f.time is not None else 0))
    return Result(findings, ctx)


__all__ = ["ANALYSES", "Collector", "Finding", "Result", "analyze"]
