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


# bidirectional-text controls (U+202A-202E, U+2066-2069) and the other
# invisible format characters that can make a terminal line lie about its content
_FORMAT_CHARS = frozenset(chr(c) for c in (*range(0x200B, 0x2010), *range(0x202A, 0x202F),
                                           *range(0x2066, 0x206A), 0xFEFF))


def safe_text(s) -> str:
    """Wire strings for a terminal: no control characters, no escape sequences
    (C0, DEL, C1 and bidi/format characters are written as ``\\xNN`` or
    ``\\uNNNN``).  Every text output passes wire values through here."""
    if s is None:
        return ""
    s = str(s)
    if s.isprintable() and not _FORMAT_CHARS.intersection(s):
        return s
    return "".join(ch if (ch >= " " and ch != "\x7f" and not 0x80 <= ord(ch) < 0xA0
                          and ch not in _FORMAT_CHARS) else
                   (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}") for ch in s)


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
                           f"{rec.name:<14} {safe_text(info)}\n")
        if self.follow:
            self.out.flush()


def expert_line(info) -> str:
    where = f"frame {info.frame}" if info.frame else "-"
    assoc = f"assoc {info.association}" if info.association is not None else "-"
    t = f"{info.time / 1e9:.6f}" if info.time else "-"
    return f"{info.severity.label:<7} {where:>12} {t:>18} {assoc:>9}  {info.id}: {safe_text(info.message)}"


__all__ = ["PduLister", "pdu_info", "pdu_json", "expert_line", "safe_text", "REDACTED"]


# ------------------------------------------------------------------ tree view
class TreeOptions:
    """``seq_tree``/``tag_tree`` have the meaning of Wireshark's dicom
    preferences: items as nested subtrees (or a flat listing), and each element
    as a subtree of its own fields (tag, VR, length, value)."""

    def __init__(self, seq_tree=True, tag_tree=False, max_len=64, redact=False):
        self.seq_tree = seq_tree
        self.tag_tree = tag_tree
        self.max_len = max_len
        self.redact = redact


def node(label, children=None, **fields):
    d = {"label": label}
    d.update({k: v for k, v in fields.items() if v is not None})
    if children is not None:
        d["children"] = children
    return d


def _uid(u):
    name = uid_name(u)
    return f"{name} ({u})" if name else (u or "")


def _assoc_nodes(a) -> list:
    from .pdu import ITEM_NAMES
    out = [node(f"Protocol Version: {a.protocol_version}", version=a.protocol_version),
           node(f"Called AE Title: {safe_text(a.called_ae_raw.decode('latin-1'))!r}", called_ae=a.called_ae),
           node(f"Calling AE Title: {safe_text(a.calling_ae_raw.decode('latin-1'))!r}", calling_ae=a.calling_ae),
           node(f"Application Context: {_uid(a.application_context)}", uid=a.application_context)]
    for pc in a.contexts_rq:
        kids = [node(f"Abstract Syntax: {_uid(pc.abstract_syntax)}", uid=pc.abstract_syntax)]
        kids += [node(f"Transfer Syntax: {_uid(ts)}", uid=ts) for ts in pc.transfer_syntaxes]
        out.append(node(f"Presentation Context: ID {pc.id}, {_uid(pc.abstract_syntax)}", kids, id=pc.id))
    for pc in a.contexts_ac:
        kids = [node(f"Result: {pc.result_text} ({pc.result})", result=pc.result)]
        if pc.transfer_syntax:
            kids.append(node(f"Transfer Syntax: {_uid(pc.transfer_syntax)}", uid=pc.transfer_syntax))
        out.append(node(f"Presentation Context Reply: ID {pc.id}, {pc.result_text}", kids, id=pc.id))
    ui = a.user_info
    kids = []
    if ui.maximum_length is not None:
        kids.append(node(f"Maximum Length: {ui.maximum_length}", value=ui.maximum_length))
    if ui.implementation_class_uid:
        kids.append(node(f"Implementation Class UID: {ui.implementation_class_uid}"))
    if ui.async_ops_invoked is not None:
        kids.append(node(f"Asynchronous Operations Window: invoked {ui.async_ops_invoked}, "
                         f"performed {ui.async_ops_performed} (0: unlimited)"))
    for r in ui.role_selections:
        kids.append(node(f"SCP/SCU Role Selection: {_uid(r.sop_class_uid)}, SCU role {r.scu_role}, "
                         f"SCP role {r.scp_role}"))
    if ui.implementation_version_name:
        kids.append(node(f"Implementation Version Name: {safe_text(ui.implementation_version_name)}"))
    for e in ui.extended_negotiations:
        kids.append(node(f"SOP Class Extended Negotiation: {_uid(e.sop_class_uid)}, "
                         f"application info {e.application_info.hex(' ')}"))
    for c in ui.common_extended_negotiations:
        rel = [node(f"Related General SOP Class: {_uid(u)}") for u in c.related_general_sop_classes]
        kids.append(node(f"SOP Class Common Extended Negotiation: {_uid(c.sop_class_uid)}, "
                         f"service class {_uid(c.service_class_uid)}", rel))
    if ui.user_identity is not None:
        u = ui.user_identity
        prim = "<redacted>" if u.type != 1 and u.type != 2 else safe_text(u.primary_field.decode("utf-8", "replace"))
        kids.append(node(f"User Identity: {u.type_text}, positive response requested "
                         f"{u.positive_response_requested}, primary field {prim!r}, "
                         f"secondary field {len(u.secondary_field)} bytes"))
    if ui.user_identity_response is not None:
        kids.append(node(f"User Identity Server Response: {len(ui.user_identity_response)} bytes"))
    for t, v in ui.unknown:
        kids.append(node(f"Unknown sub-item 0x{t:02x} ({ITEM_NAMES.get(t, '?')}): {v[:32].hex(' ')}"))
    out.append(node("User Information", kids))
    for t, v in a.unknown_items:
        out.append(node(f"Unknown item 0x{t:02x}: {len(v)} bytes"))
    return out


def _command_field(v):
    from .dimse import command_name
    return command_name(v)


_COMMAND_MEANING = {
    0x00000100: _command_field,
    0x00000700: lambda v: {0: "MEDIUM", 1: "HIGH", 2: "LOW"}.get(v, "?"),
    0x00000800: lambda v: "no data set" if v == 0x0101 else "data set follows",
    0x00000900: lambda v: f"0x{v:04x} {ST.status_text(None, v)}",
}


def _elements_nodes(ds, opts: TreeOptions) -> list:
    from .dataset import Item, format_value
    from .redact import is_phi

    def element_node(e):
        if opts.redact and is_phi(e.tag) and e.vr != "SQ":
            value = REDACTED
        else:
            value = safe_text(format_value(e, opts.max_len))
        length = "<udef>" if e.vl == 0xFFFFFFFF else str(e.vl)
        vr = e.explicit_vr or e.vr or "--"
        name = e.name or ("Private Tag" if e.is_private else "Unknown")
        if e.private_creator:
            name += f" [{safe_text(e.private_creator)}]"
        meaning = _COMMAND_MEANING.get(e.tag)
        if meaning is not None and isinstance(e.value, int):
            value += f" ({meaning(e.value)})"
        label = f"{e.tag_str} {length:>8} {name} [{vr}] {value}".rstrip()
        if e.status:
            label += f"  ! {e.status}"
        fields = {"tag": e.tag, "vr": vr, "length": e.vl, "name": name, "value": value}
        kids = []
        if opts.tag_tree:
            kids += [node(f"Tag: {e.tag_str}"), node(f"VR: {vr}"), node(f"Length: {length}"),
                     node(f"Value: {value}")]
        return label, fields, kids

    # iterative walk: nesting depth is the data's choice
    root = []
    stack = [(iter(ds.elements), root, 0)]
    while stack:
        it, out, depth = stack[-1]
        e = next(it, None)
        if e is None:
            stack.pop()
            continue
        if isinstance(e, Item):
            label = f"Item #{e.index + 1}" + (" (undefined length)" if e.vl == 0xFFFFFFFF else f" ({e.vl} bytes)")
            if opts.seq_tree:
                n = node(label, [])
                out.append(n)
                stack.append((iter(e.elements), n["children"], depth + 1))
            else:
                out.append(node(("  " * depth) + label))
                stack.append((iter(e.elements), out, depth + 1))
            continue
        label, fields, kids = element_node(e)
        if not opts.seq_tree:
            label = ("  " * depth) + label
        n = node(label, kids, **fields)
        out.append(n)
        if e.vr == "SQ" and e.children:
            if opts.seq_tree:
                n.setdefault("children", [])
                stack.append((iter(e.children), n["children"], depth + 1))
            else:
                stack.append((iter(e.children), out, depth + 1))
        elif e.children:  # encapsulated pixel data fragments
            frag = [node(f"Fragment #{k + 1}: {f.length} bytes" + (" (Basic Offset Table)" if k == 0 else ""))
                    for k, f in enumerate(e.children)]
            n.setdefault("children", []).extend(frag)
    return root


def _pdv_node(p, rec, opts: TreeOptions):
    a = rec.association
    ctx = a.contexts.get(p.context_id) if a is not None else None
    flags = ("Command" if p.is_command else "Data set") + (", Last Fragment" if p.is_last else "")
    if p.control & 0xFC:
        flags += ", reserved bits set"
    where = ""
    if ctx is not None:
        where = f" ({uid_name(ctx.abstract_syntax) or ctx.abstract_syntax or '?'}"
        where += f", {uid_name(ctx.transfer_syntax) or ctx.transfer_syntax})" if ctx.transfer_syntax else ")"
    kids = [node(f"Context: 0x{p.context_id:02x}{where}", context_id=p.context_id),
            node(f"Flags: 0x{p.control:02x} ({flags})", flags=p.control),
            node(f"Length: {p.length}", length=p.length)]
    desc = pdv_description(p)
    if p.is_command and p.command is not None and p.command.raw_bytes is not None:
        from .dataset import decode_command_set
        kids.append(node(command_info(p.command), _elements_nodes(decode_command_set(p.command.raw_bytes), opts)))
    elif p.last_data and p.transfer is not None and p.transfer.head is not None:
        t = p.transfer
        from .dataset import WALK_DEPTH_LIMIT, decode
        ts = t.transfer_syntax or (a.transfer_syntax(t.context_id) if a is not None else None)
        ds = decode(bytes(t.head), ts)
        label = f"{desc}: {t.length} bytes"
        if len(t.head) < t.length:
            label += f" (first {len(t.head)} decoded)"
        if not t.complete:
            label += " [incomplete]"
        if ds.inflate_capped:
            label += f" [inflated only to the first {len(ds.data)} bytes (--max-inflate)]"
        if ds.status == WALK_DEPTH_LIMIT:
            label += f" [sequences nested too deep at offset {ds.status_offset} (--max-depth)]"
        kids.append(node(label, _elements_nodes(ds, opts)))
    return node(f"PDV, {desc}", kids)


def pdu_tree(rec, opts: TreeOptions) -> dict:
    frames = f"{rec.frame_first}" if rec.frame_first == rec.frame_last else f"{rec.frame_first}-{rec.frame_last}"
    head = (f"Frame {frames}: {rec.src} → {rec.dst}, {rec.name} (0x{rec.type:02x}), length {rec.length}"
            + (" [truncated]" if rec.truncated else ""))
    kids = [node(f"PDU Type: {rec.name} (0x{rec.type:02x})", type=rec.type),
            node(f"PDU Length: {rec.length}", length=rec.length)]
    d = rec.decoded
    if rec.type in (1, 2) and d is not None:
        kids += _assoc_nodes(d)
    elif rec.type == 3 and d is not None:
        kids += [node(f"Result: {d.result_text} ({d.result})"), node(f"Source: {d.source_text} ({d.source})"),
                 node(f"Reason: {d.reason_text} ({d.reason})")]
    elif rec.type == 7 and d is not None:
        kids += [node(f"Source: {d.source_text} ({d.source})"), node(f"Reason: {d.reason_text} ({d.reason})")]
    elif rec.type == 4:
        kids += [_pdv_node(p, rec, opts) for p in rec.pdvs]
    return node(head, kids, frame=rec.frame_last, frames=[rec.frame_first, rec.frame_last],
                time=rec.time_last / 1e9, src=rec.src, dst=rec.dst, type=rec.type,
                association=rec.association.id if rec.association is not None else None,
                info=pdu_info(rec))


def render_tree(tree: dict, out, indent="    "):
    stack = [(tree, 0)]
    while stack:
        n, level = stack.pop()
        out.write(f"{indent * level}{safe_text(n['label'])}\n")
        for c in reversed(n.get("children", ())):
            stack.append((c, level + 1))


class TreeShower:
    """Sink for ``fastdicom show``: a detailed tree per PDU, like ``tshark -V``."""

    def __init__(self, out, fmt="text", flt=None, opts: TreeOptions | None = None):
        self.out = out
        self.fmt = fmt
        self.flt = flt
        self.opts = opts or TreeOptions()

    def on_pdu(self, rec):
        if self.flt is not None and not self.flt.match_pdu(rec):
            return
        tree = pdu_tree(rec, self.opts)
        if self.fmt == "json":
            self.out.write(json.dumps(tree) + "\n")
        else:
            render_tree(tree, self.out)
            self.out.write("\n")
