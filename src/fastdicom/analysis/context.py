"""What every analysis reads: the decoder, the collector, and wording helpers."""

from __future__ import annotations

from .. import redact as R
from ..uids import uid_name
from . import Finding


def fmt_secs(s) -> str:
    if s is None:
        return "?"
    if abs(s) < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if abs(s) < 1:
        return f"{s * 1000:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(n) -> str:
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def quoted(s) -> str:
    """A wire string shown with its exact spaces: 'PACS '."""
    return "'" + ("" if s is None else str(s)) + "'"


def syntax_name(uid) -> str:
    return uid_name(uid) or (uid or "?")


class Context:
    def __init__(self, decoder, collector, redact: bool = False):
        self.decoder = decoder
        self.collector = collector
        self.redact = redact
        self.associations = decoder.associations
        self._cache = {}

    # -- who and where --------------------------------------------------------
    @staticmethod
    def requestor(a) -> str:
        """'CT01 at 10.1.2.3' (the A-ASSOCIATE-RQ's sender)."""
        return f"{a.calling_ae or 'the requestor'} at {a.flow.client_ip}"

    @staticmethod
    def acceptor(a) -> str:
        return f"{a.called_ae or 'the acceptor'} at {a.flow.server}"

    @staticmethod
    def label(a) -> str:
        """'association 3 (GETTER → ARCHIVE)'."""
        return f"association {a.id} ({a.calling_ae or '?'} → {a.called_ae or '?'})"

    @staticmethod
    def side(a, direction: int) -> str:
        """The peer that sent in ``direction``, by role and AE title."""
        if direction == 0:
            return f"the requestor {a.calling_ae or a.flow.client}"
        return f"the acceptor {a.called_ae or a.flow.server}"

    def pdu_frame(self, a, pdu_type: int):
        """Frame of the first PDU of ``pdu_type`` on association ``a`` (None if not kept)."""
        for p in self.collector.pdus.get(a.id, ()):
            if p.type == pdu_type:
                return p.frame
        return a.start_frame if pdu_type == 1 else None

    # -- values ----------------------------------------------------------------
    def value(self, tag: int, text) -> str:
        """A data set value for a finding text: redacted when it identifies a patient."""
        if self.redact and R.is_phi(tag) and text not in (None, ""):
            return R.REDACTED
        return "" if text is None else str(text)

    def raw_value(self, key) -> str:
        """A key's value as on the wire, spaces kept (quoted), or its shape when redacted."""
        raw = key.raw.decode("latin-1").rstrip("\x00")
        if self.redact and R.is_phi(key.tag) and raw.strip():
            lead = len(raw) - len(raw.lstrip(" "))
            trail = len(raw) - len(raw.rstrip(" "))
            return (f"<redacted: {len(raw)} characters, {lead} leading and {trail} trailing "
                    "space(s)>")
        return quoted(raw)

    # -- per operation -----------------------------------------------------------
    def responses(self, op) -> list:
        return self.collector.responses.get(op.index, [])

    def cancel(self, op):
        return self.collector.cancels.get(op.index)

    def identifier(self, transfer):
        if transfer is None:
            return None
        return self.collector.identifiers.get(transfer.index)

    def operations(self, command=None):
        for a in self.associations:
            for op in a.operations:
                if command is None or op.command == command:
                    yield op

    def cached(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # -- building findings ---------------------------------------------------------
    def finding(self, analysis, code, severity, title, explanation, *, assoc=None, frames=(),
                time=None, **data) -> Finding:
        assocs = []
        capture = None
        if assoc is not None:
            objs = assoc if isinstance(assoc, (list, tuple)) else [assoc]
            assocs = [x.id for x in objs]
            capture = objs[0].capture if objs else None
        elif self.decoder.captures:
            capture = self.decoder.captures[-1].name if len(self.decoder.captures) == 1 else None
        if self.redact:
            data = R.redact_document(data)
        return Finding(analysis, code, severity, title, explanation,
                       [f for f in frames if f], assocs, data, time, capture)
