"""Packet-list and tree views of PDUs (``fastdicom pdus`` and ``fastdicom show``).

Info texts follow Wireshark's Info column (``A-ASSOCIATE request CT01 -->
PACS``, ``P-DATA, C-STORE-RQ ID=3``, ``C-STORE-RSP ID=3 (Success)``, ``PDV
Fragment``) so that people can compare the two side by side; where Wireshark
prints ``(null)`` or drops the message ID, we do not.
"""

from __future__ import annotations

import json

from . import status as ST
from .redact import REDACTED
from .uids import uid_name

PDU_INFO = {5: "A-RELEASE request", 6: "A-RELEASE response"}


def safe_text(s) -> str:
    """Wire strings for a terminal: no control characters, no escape sequences."""
    if s is None:
        return ""
    s = str(s)
    return "".join(ch if (ch >= " " and ch != "\x7f" and not 0x80 <= ord(ch) < 0xA0) else
                   f"\\x{ord(ch):02x}" for ch in s)


def ae_pair(a):
    if a is None:
        return "?", "?"
    return safe_text(a.calling_ae or "?"), safe_text(a.called_ae or "?")


def pdv_description(p) -> str:
    """What one PDV carries, in Wireshark's words."""
    if p.is_command:
        cmd = p.command
        if cmd is None:
            return "Command Fragment" if not p.is_last else "Command"
        return command_info(cmd)
    t = p.transfer
    if not p.last_data:
        return "PDV Fragment"
    cmd = t.command if t is not None else None
    if cmd is not None and cmd.field == 0x0001:  # a C-STORE-RQ data set: name the SOP class
        name = uid_name(cmd.get("affected_sop_class_uid"))
        if name:
            return name
    if cmd is not None:
        return f"{cmd.name}-DATA"
    return "DATA"


def command_info(cmd) -> str:
    if cmd.field is None:
        return "Command"
    if not cmd.is_response:
        return f"{cmd.name} ID={cmd.message_id}"
    s = f"{cmd.name} ID={cmd.responded_id}"
    for key, tag in (("completed", "C"), ("remaining", "R"), ("warning", "W"), ("failed", "F")):
        v = cmd.elements.get(key)
        if v:
            s += f" {tag}={v}"
    status = cmd.status
    if status is not None and ST.status_class(status) != ST.PENDING:
        text = ST.status_text(cmd.service, status)
        comment = cmd.get("error_comment")
        s += f" ({text}{', ' + safe_text(comment) if comment else ''})"
    return s


def pdu_info(rec) -> str:
    a = rec.association
    t = rec.type
    if t == 1:
        calling, called = ae_pair(a)
        if rec.decoded is not None:
            calling, called = safe_text(rec.decoded.calling_ae), safe_text(rec.decoded.called_ae)
        return f"A-ASSOCIATE request {calling} --> {called}"
    if t == 2:
        calling, called = ae_pair(a)
        return f"A-ASSOCIATE accept  {calling} <-- {called}"
    if t == 3:
        calling, called = ae_pair(a)
        rj = rec.decoded
        return f"A-ASSOCIATE reject  {calling} <-- {called} ({rj.reason_text})"
    if t == 7:
        calling, called = ae_pair(a)
        ab = rec.decoded
        arrow = "-->" if rec.direction == 0 else "<--"
        if ab.source == 0:
            return f"ABORT {calling} {arrow} {called}"
        return f"ABORT {calling} {arrow} {called} ({ab.reason_text})"
    if t == 4:
        seen = []
        for p in rec.pdvs:
            d = pdv_description(p)
            if d not in seen:
                seen.append(d)
        return "P-DATA, " + ", ".join(seen) if seen else "P-DATA"
    return PDU_INFO.get(t, f"PDU type 0x{t:02x}")


def pdu_json(rec, base_time=None) -> dict:
    d = {
        "frame": rec.frame_last,
        "frames": [rec.frame_first, rec.frame_last],
        "time": rec.time_last / 1e9,
        "time_first": rec.time_first / 1e9,
        "src": rec.src,
        "dst": rec.dst,
        "type": rec.type,
        "type_name": rec.name,
        "length": rec.length,
        "association": rec.association.id if rec.association is not None else None,
        "info": pdu_info(rec),
        "truncated": rec.truncated,
    }
    if rec.type == 4:
        d["pdvs"] = [{"context_id": p.context_id, "flags": p.control, "length": p.length,
                      "command": p.is_command, "last": p.is_last, "description": pdv_description(p)}
                     for p in rec.pdvs]
    return d


class PduLister:
    """Sink for ``fastdicom pdus``: one line per PDU as it completes."""

    def __init__(self, out, fmt="text", flt=None, redact=False, follow=False):
        self.follow = follow
        self.out = out
        self.fmt = fmt
        self.flt = flt
        self.redact = redact
        self.base = None
        self.count = 0

    def on_pdu(self, rec):
        if self.base is None:
            self.base = rec.time_first
        if self.flt is not None and not self.flt.match_pdu(rec):
            return
        self.count += 1
        if self.fmt == "jsonl":
            self.out.write(json.dumps(pdu_json(rec)) + "\n")
        else:
            frames = str(rec.frame_last) if rec.frame_first == rec.frame_last else \
                f"{rec.frame_first}-{rec.frame_last}"
            rel = (rec.time_last - self.base) / 1e9
            info = pdu_info(rec)
            if rec.truncated:
                info += " [truncated]"
            self.out.write(f"{frames:>11} {rel:12.6f} {rec.src:>21} → {rec.dst:<21} "
                           f"{rec.name:<14} {info}\n")
        if self.follow:
            self.out.flush()


def expert_line(info) -> str:
    where = f"frame {info.frame}" if info.frame else "-"
    assoc = f"assoc {info.association}" if info.association is not None else "-"
    t = f"{info.time / 1e9:.6f}" if info.time else "-"
    return f"{info.severity.label:<7} {where:>12} {t:>18} {assoc:>9}  {info.id}: {safe_text(info.message)}"


__all__ = ["PduLister", "pdu_info", "pdu_json", "expert_line", "safe_text", "REDACTED"]
