"""Wireshark-style display filters (``-Y``) over DICOM PDUs, associations,
operations and expert info.

A filter is parsed and type-checked once (``compile_filter``), before any
capture is read: a syntax error, an unknown field or a value of the wrong type
raises ``FilterError(message, text, position)``.  It is then compiled to
closures, one set per place it is used (``Filter.match_pdu``,
``Filter.select_summary``, ``Filter.match_expert``); nothing is parsed again
per item.  ``fastdicom fields`` lists the fields (``FIELDS``).

Grammar (EBNF; keywords are case-insensitive, field names are not;
whitespace is free)::

    filter   = or_expr EOF ;
    or_expr  = and_expr { ( "or" | "||" ) and_expr } ;
    and_expr = not_expr { ( "and" | "&&" ) not_expr } ;
    not_expr = ( "not" | "!" ) not_expr | primary ;
    primary  = "(" or_expr ")" | FIELD [ relation ] ;      (* bare FIELD: presence *)
    relation = compare value
             | "contains" value
             | ( "matches" | "~" ) STRING
             | [ "not" ] "in" "{" member { [ "," ] member } "}" ;
    member   = value [ ".." value ] ;                      (* a range, ends included *)
    compare  = "==" | "eq" | "any_eq" | "!=" | "ne" | "all_ne"
             | "===" | "all_eq" | "!==" | "~=" | "any_ne"
             | "<" | "lt" | "<=" | "le" | ">" | "gt" | ">=" | "ge" ;
    value    = STRING | LITERAL ;
    STRING   = [ "r" ] '"' { char | escape } '"' ;         (* r"..." keeps backslashes *)
    escape   = "\\" ( '"' | "\\" | "'" | "a" | "b" | "f" | "n" | "r" | "t" | "v"
             | octal{1,3} | "x" hex{1,2} | "u" hex{4} | "U" hex{8} ) ;
    LITERAL  = an unquoted word: 42, 0x00100010, -3, 0.25, 1e-3, 10.0.0.1,
               192.168.0.0/16, ::1, 01:02:ff (bytes) ;

``not`` binds tightest, then ``and``, then ``or``: ``a or b and c`` is
``a or (b and c)``.  A literal is read by the type of the field it is
compared with: a number for (u)int and float fields, a double-quoted string
for string fields, an address (or CIDR network) for ``ip.*``, hex bytes
(``01:02:ff``, or a string) for bytes fields.

Multi-valued fields follow Wireshark 4.0 (wireshark-filter(4)): a PDU may
carry a field several times (every presentation context, every element).
``==``, ``<``, ``contains``, ``matches``, ``in`` and ``!==`` are true when ANY
occurrence satisfies them; ``!=`` (= ``all_ne``) and ``===`` (``all_eq``) when
ALL occurrences do.  So ``a != x`` is ``a and not a == x``: like every
comparison it is false when the field is absent (write ``not a == x`` to
include items without the field); ``a not in {...}`` likewise.

Where fields come from
----------------------
``match_pdu(rec)`` (``pdus``, ``show``): a PDU's own fields (header, association
items, user information, reject/abort, PDVs, and the elements of the command
sets and data sets it completes), its connection (``ip.*``, ``tcp.*``,
``frame.number``: the PDU's first and last frame) and its association
(``dicom.assoc.id/calling/called``).  ``dicom.op.*`` describe the DIMSE
commands the PDU carries: command and message ID on requests and responses,
status and status class on responses (a pending C-FIND-RSP has class
"pending"), latency on the final response.  A PDU with only data set
fragments carries no ``dicom.op.*``.  Every value is known when the PDU is
complete, so streaming and after-the-fact matching agree.

``select_summary(doc)`` (``summary``): works on the JSON document.  Wireshark's
association fields (``dicom.assoc.ae.*``, ``dicom.pctx.*``, ``dicom.userinfo.*``,
``dicom.max_pdu_len``, reject/abort) take the values of the association's
A-ASSOCIATE-RQ and -AC together; ``ip.src``/``tcp.srcport`` are the client
(the requestor), ``ip.dst``/``tcp.dstport`` the server.  The filter is
evaluated per operation (with its association's fields) when it uses
``dicom.op.*`` fields, per expert entry when it uses ``dicom.expert.*``
fields, else per association:

* ``dicom.assoc.called == "PACS"``: those associations, with all their
  operations, objects and expert entries;
* ``dicom.op.status_class == "failure"``: the associations that have a failed
  operation, each with only its failed operations and their objects (and all
  its expert entries);
* in the summary an operation's status is its final one: ``"pending"`` never
  matches there, and an unanswered operation has none (``not dicom.op.status``);
* an association without operations is judged on its own fields
  (``not dicom.op.command == "C-ECHO"`` keeps a rejected association);
* an expert pseudo-field (``dicom.assoc.abort``) tests whether the
  association had such an entry; ``dicom.expert.*`` fields select expert
  entries as ``dicom.op.*`` select operations (entries without an
  association too); op and expert fields are not correlated (an expert entry
  is not tied to one operation).

Counts are recomputed for what was kept (``counts``; the capture's own are in
``counts_unfiltered``), the filter text is stored as ``filter``, and TCP
attempts are kept when the filter matches their endpoints.  With
``--redact`` the filter sees the redacted document.

``match_expert(info, decoder)`` (``expert``): the entry's ``dicom.expert.*``,
``frame.number``, its expert pseudo-field (``dicom.assoc.abort`` selects the
abort entries), and the fields of its association (AE titles, contexts, user
information, reject/abort, endpoints).

A field that can never be present for a command (``dicom.pdu.type`` in
``summary``, ``dicom.op.status`` in ``expert``) is an error before reading
(``Filter.check(command)``), not a silent "matches nothing".

Deliberate differences from Wireshark 4.0
-----------------------------------------
* UID fields (``dicom.actx``, ``dicom.pctx.*.syntax``, ``*.sopclassuid``, and
  ``dicom.tag.value.str`` of UI elements) hold the bare UID, not
  ``Name (UID)``: ``==`` compares UIDs exactly, and ``contains``/``matches``
  match either the UID or its name (``dicom.pctx.abss.syntax contains
  "CT Image"``).
* AE-title fields hold the title without its padding, and a compared
  literal is stripped too: ``dicom.assoc.ae.called == "PACS"``.
* ``matches`` uses Python's ``re`` with search semantics, case-sensitive
  unless the pattern says ``(?i)`` (Wireshark's PCRE is case-insensitive).
* Element fields (``dicom.tag*``) need no ``tag_tree`` preference: they
  exist on the PDU whose PDV completes a command set or data set, decoded
  whole (a data set from the head the decoder keeps, 64 KiB by default;
  nested sequence items included, item and delimiter tags not).  Numeric
  values give every value (Wireshark: the first only); AT values are
  ``dicom.tag.value.32u``.  A data set whose transfer syntax is unknown (no
  negotiation captured) or whose start was not captured has no element
  fields (Wireshark shows "Unparsed data").
* ``dicom.pdv.flags`` is the whole message control header byte (Wireshark
  masks it to its two low bits).
* ``dicom.userinfo.unknown`` is a truly unknown sub-item: fastdicom decodes
  0x57 and 0x59, which Wireshark lists as unknown.  ``*.sopclassuid.len`` is
  the length of the UID without padding.
* Expert pseudo-fields are every ``dicom.*`` ID of fastdicom's expert
  catalogue (``fastdicom fields`` lists them; ``dicom.assoc.reject`` and
  ``dicom.assoc.abort`` as in Wireshark).  On a PDU they are present when the
  PDU's own decoding raises them (reject, abort, negotiation and command-set
  problems, non-success statuses, invalid flags or context IDs); problems the
  framing core finds (``dicom.pdv.len.invalid``...) are in ``fastdicom
  expert``.  ``dicom.status_msg`` keeps the catalogue's meaning (warning
  statuses); failures are ``dicom.status.failure``, cancels
  ``dicom.status.cancel``.
* ``ip.addr``/``ip.src``/``ip.dst`` hold IPv4 and IPv6 addresses alike (no
  ``ipv6.*``); hostnames are not resolved.
* Integer literals are decimal or hexadecimal (``0x``); a decimal with a
  leading zero (``00100010``) is refused as ambiguous instead of being read as
  octal.  No functions, slices, arithmetic or bitwise ``&``; no comparison of
  one field with another.  Each is a clear error.
* Not supplied (an error that says why): ``dicom.data.tag`` (fastdicom never
  shows undecoded bytes as elements) and the PDV reassembly fields
  ``dicom.pdv.fragment*`` and ``dicom.pdv.reassembled.in`` (fastdicom
  reassembles in one pass and keeps no per-fragment frame list; the completed
  length is ``dicom.pdv.reassembled.length``).
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from . import status as ST
from .errors import FilterError
from .expert import CATALOGUE, Severity
from .uids import uid_name

__all__ = ["FIELDS", "Field", "Filter", "FilterError", "UidStr", "compile_filter", "render_fields"]

# field types
UINT, INT, FLOAT, STRING, BYTES, NONE, ADDRESS = "uint", "int", "float", "string", "bytes", "none", "address"
TYPE_WORDS = {UINT: "an unsigned integer", INT: "a signed integer", FLOAT: "a floating-point number",
              STRING: "a string", BYTES: "a byte string", NONE: "a presence-only field",
              ADDRESS: "an IP address"}

# where a filter is used: the commands, and the evaluation context behind each
PDU_CTX, SUMMARY_CTX, EXPERT_CTX = "pdus", "summary", "expert"
COMMAND_CONTEXT = {"pdus": PDU_CTX, "show": PDU_CTX, "summary": SUMMARY_CTX, "expert": EXPERT_CTX}

SEVERITY_RANK = {s.label: int(s) for s in Severity}
STATUS_CLASSES = (ST.SUCCESS, ST.PENDING, ST.WARNING, ST.FAILURE, ST.CANCEL)
MAX_DEPTH = 64  # nesting of parentheses and "not"


class UidStr(str):
    """A UID value: ``contains`` and ``matches`` also try its name."""

    __slots__ = ()


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    description: str
    bits: int = 0  # width of (u)int fields; 0: unbounded
    flavor: str = ""  # uid, ae, severity, status_class, expert_id, command
    wireshark: bool = True  # a field of Wireshark's dicom dissector (else fastdicom's own)
    contexts: tuple = ()  # where it can be present: pdus, summary, expert

    @property
    def type_text(self) -> str:
        return f"{self.type}{self.bits}" if self.bits else self.type


# ------------------------------------------------------------------ getters
# A getter maps an evaluation context to the list of the field's values there
# (empty: absent).  Three kinds of context: _PduCtx, _ExpertCtx, _Row.


class _PduCtx:
    __slots__ = ("rec", "association", "assocs", "rj", "ab", "_el", "_ids", "_items")

    def __init__(self, rec):
        self.rec = rec
        self.association = rec.association
        d = rec.decoded
        t = rec.type
        self.assocs = (d,) if d is not None and t in (1, 2) else ()
        self.rj = d if t == 3 else None
        self.ab = d if t == 7 else None
        self._el = self._ids = self._items = None


class _ExpertCtx:
    __slots__ = ("info", "association", "assocs", "rj", "ab")

    def __init__(self, info, association):
        self.info = info
        self.association = a = association
        if a is None:
            self.assocs, self.rj, self.ab = (), None, None
        else:
            self.assocs = tuple(x for x in (a.rq, a.ac) if x is not None)
            self.rj, self.ab = a.rj, a.abort


def _commands(ctx):
    """Command sets completed by this PDU's PDVs (with a command field)."""
    return [p.command for p in ctx.rec.pdvs
            if p.control & 1 and p.command is not None and p.command.field is not None]


def _responses(ctx):
    return [c for c in _commands(ctx) if c.is_response and c.status is not None]


def _op_message_id(cmd):
    return cmd.responded_id if cmd.is_response or cmd.is_cancel else cmd.message_id


def _latency(cmd):
    op = cmd.operation
    if op is not None and op.final is cmd and op.latency is not None:
        return [op.latency]
    return []


def _contexts(ctx):
    for d in ctx.assocs:
        yield from (d.contexts_rq if d.is_request else d.contexts_ac)


def _user_infos(ctx):
    return [d.user_info for d in ctx.assocs if _has_user_info(d.user_info)]


def _has_user_info(ui) -> bool:
    return (ui.maximum_length is not None or bool(ui.implementation_class_uid)
            or bool(ui.implementation_version_name) or ui.async_ops_invoked is not None
            or bool(ui.role_selections) or bool(ui.extended_negotiations)
            or bool(ui.common_extended_negotiations) or ui.user_identity is not None
            or ui.user_identity_response is not None or bool(ui.unknown))


_QR_FIND = frozenset({"1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.2.1", "1.2.840.10008.5.1.4.1.2.3.1"})
_QR = _QR_FIND | {"1.2.840.10008.5.1.4.1.2.1.2", "1.2.840.10008.5.1.4.1.2.1.3",
                  "1.2.840.10008.5.1.4.1.2.2.2", "1.2.840.10008.5.1.4.1.2.2.3",
                  "1.2.840.10008.5.1.4.1.2.3.2", "1.2.840.10008.5.1.4.1.2.3.3"}


def _extneg_byte(index, classes):
    """Byte ``index`` of the service-class application info (PS3.4 C.3.1), for
    the SOP classes Wireshark decodes it for."""
    def values(negs):
        return [info[index] for uid, info in negs if uid in classes and len(info) > index]
    return values


def _decoded_negs(ctx):
    return [(e.sop_class_uid, e.application_info) for ui in _user_infos(ctx) for e in ui.extended_negotiations]


def _identities(ctx):
    return [ui.user_identity for ui in _user_infos(ctx) if ui.user_identity is not None]


def _flow_ips(a, direction=0):
    """(src ip, src port, dst ip, dst port) of a direction of an association's flow."""
    fl = a.flow
    if direction == 0:
        return fl.client_ip, fl.client_port, fl.server_ip, fl.server_port
    return fl.server_ip, fl.server_port, fl.client_ip, fl.client_port


@lru_cache(maxsize=4096)
def _ip(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ips(*texts):
    return [x for x in map(_ip, texts) if x is not None]


# getters shared by PDU and expert contexts: the decoded association PDUs
_CONTENT = {
    "dicom.assoc.version": lambda c: [d.protocol_version for d in c.assocs],
    "dicom.assoc.ae.called": lambda c: [d.called_ae for d in c.assocs],
    "dicom.assoc.ae.calling": lambda c: [d.calling_ae for d in c.assocs],
    "dicom.assoc.reject.result": lambda c: [c.rj.result] if c.rj is not None else [],
    "dicom.assoc.reject.source": lambda c: [c.rj.source] if c.rj is not None else [],
    "dicom.assoc.reject.reason": lambda c: [c.rj.reason] if c.rj is not None else [],
    "dicom.assoc.abort.source": lambda c: [c.ab.source] if c.ab is not None else [],
    "dicom.assoc.abort.reason": lambda c: [c.ab.reason] if c.ab is not None else [],
    "dicom.actx": lambda c: [UidStr(d.application_context) for d in c.assocs if d.application_context],
    "dicom.pctx.id": lambda c: [pc.id for pc in _contexts(c)],
    "dicom.pctx.result": lambda c: [pc.result for d in c.assocs if not d.is_request for pc in d.contexts_ac],
    "dicom.pctx.abss.syntax": lambda c: [UidStr(pc.abstract_syntax) for d in c.assocs if d.is_request
                                         for pc in d.contexts_rq if pc.abstract_syntax],
    "dicom.pctx.xfer.syntax": lambda c: [UidStr(ts) for d in c.assocs for ts in (
        [t for pc in d.contexts_rq for t in pc.transfer_syntaxes] if d.is_request else
        [pc.transfer_syntax for pc in d.contexts_ac if pc.transfer_syntax])],
    "dicom.userinfo": lambda c: [True for _ in _user_infos(c)],
    "dicom.userinfo.uid": lambda c: [u.implementation_class_uid for u in _user_infos(c)
                                     if u.implementation_class_uid],
    "dicom.userinfo.version": lambda c: [u.implementation_version_name for u in _user_infos(c)
                                         if u.implementation_version_name],
    "dicom.max_pdu_len": lambda c: [u.maximum_length for u in _user_infos(c) if u.maximum_length is not None],
    "dicom.userinfo.asyncneg": lambda c: [True for u in _user_infos(c) if u.async_ops_invoked is not None],
    "dicom.userinfo.asyncneg.maxnumopsinv": lambda c: [u.async_ops_invoked for u in _user_infos(c)
                                                       if u.async_ops_invoked is not None],
    "dicom.userinfo.asyncneg.maxnumopsper": lambda c: [u.async_ops_performed for u in _user_infos(c)
                                                       if u.async_ops_performed is not None],
    "dicom.userinfo.rolesel": lambda c: [True for u in _user_infos(c) for _ in u.role_selections],
    "dicom.userinfo.rolesel.sopclassuid": lambda c: [UidStr(r.sop_class_uid) for u in _user_infos(c)
                                                     for r in u.role_selections],
    "dicom.userinfo.rolesel.sopclassuid.len": lambda c: [len(r.sop_class_uid) for u in _user_infos(c)
                                                         for r in u.role_selections],
    "dicom.userinfo.rolesel.scurole": lambda c: [r.scu_role for u in _user_infos(c) for r in u.role_selections],
    "dicom.userinfo.rolesel.scprole": lambda c: [r.scp_role for u in _user_infos(c) for r in u.role_selections],
    "dicom.userinfo.extneg": lambda c: [True for _ in _decoded_negs(c)],
    "dicom.userinfo.extneg.sopclassuid": lambda c: [UidStr(uid) for uid, _ in _decoded_negs(c)],
    "dicom.userinfo.extneg.sopclassuid.len": lambda c: [len(uid) for uid, _ in _decoded_negs(c)],
    "dicom.userinfo.extneg.relational": lambda c: _extneg_byte(0, _QR)(_decoded_negs(c)),
    "dicom.userinfo.extneg.datetimematching": lambda c: _extneg_byte(1, _QR_FIND)(_decoded_negs(c)),
    "dicom.userinfo.extneg.fuzzymatching": lambda c: _extneg_byte(2, _QR_FIND)(_decoded_negs(c)),
    "dicom.userinfo.extneg.timezone": lambda c: _extneg_byte(3, _QR_FIND)(_decoded_negs(c)),
    "dicom.userinfo.unknown": lambda c: [True for u in _user_infos(c) for _ in u.unknown],
    "dicom.userinfo.data": lambda c: [bytes(v) for u in _user_infos(c) for _, v in u.unknown],
    "dicom.userinfo.user_identify": lambda c: [True for _ in _identities(c)],
    "dicom.userinfo.user_identify.type": lambda c: [i.type for i in _identities(c)],
    "dicom.userinfo.user_identify.response_requested": lambda c: [i.positive_response_requested
                                                                  for i in _identities(c)],
    "dicom.userinfo.user_identify.primary_field_length": lambda c: [len(i.primary_field) for i in _identities(c)],
    "dicom.userinfo.user_identify.primary_field": lambda c: [i.primary_field.decode("utf-8", "replace")
                                                             for i in _identities(c)],
    "dicom.userinfo.user_identify.secondary_field_length": lambda c: [len(i.secondary_field)
                                                                      for i in _identities(c)],
    "dicom.userinfo.user_identify.secondary_field": lambda c: [i.secondary_field.decode("utf-8", "replace")
                                                               for i in _identities(c)],
    "dicom.assoc.id": lambda c: [c.association.id] if c.association is not None else [],
    "dicom.assoc.calling": lambda c: _some(c.association and c.association.calling_ae),
    "dicom.assoc.called": lambda c: _some(c.association and c.association.called_ae),
}


def _some(v):
    return [v] if v is not None and v != "" else []


# --- PDU-only getters ---------------------------------------------------------
def _item_walk(ctx):
    """(types, lengths) of the items and sub-items of an A-ASSOCIATE body."""
    if ctx._items is None:
        types, lens = [], []
        body = ctx.rec.body
        if ctx.rec.type in (1, 2) and body:
            stack = [(68, len(body), 0)]
            while stack and len(types) < 100_000:
                s, e, level = stack.pop()
                p = s
                subs = []
                while p + 4 <= e:
                    t, ln = body[p], (body[p + 2] << 8) | body[p + 3]
                    types.append(t)
                    lens.append(ln)
                    end = min(p + 4 + ln, e)
                    if level == 0 and t in (0x20, 0x21):
                        subs.append((p + 8, end, 1))
                    elif level == 0 and t == 0x50:
                        subs.append((p + 4, end, 1))
                    p += 4 + ln
                stack.extend(reversed(subs))
        ctx._items = (types, lens)
    return ctx._items


def _pdu_experts(ctx):
    """Expert IDs the PDU's own decoding raises (see the module docstring)."""
    if ctx._ids is None:
        rec = ctx.rec
        ids = []
        if rec.type == 3:
            ids.append("dicom.assoc.reject")
        elif rec.type == 7:
            ids.append("dicom.assoc.abort")
        d = rec.decoded
        if d is not None:
            ids.extend(pid for pid, _ in getattr(d, "problems", ()))
        if rec.truncated:
            ids.append("dicom.pdu.truncated")
        a = rec.association
        for p in rec.pdvs:
            if p.control & 0xFC:
                ids.append("dicom.pdv.flags.invalid")
            if a is not None and a.ac is not None:
                c = a.contexts.get(p.context_id)
                if c is None or not c.accepted:
                    ids.append("dicom.pdv.ctx.invalid")
            cmd = p.command if p.control & 1 else None
            if cmd is not None:
                ids.extend(pid for pid, _ in cmd.problems)
                if cmd.is_response and cmd.status is not None:
                    cls = ST.status_class(cmd.status)
                    if cls == ST.WARNING:
                        ids.append("dicom.status_msg")
                    elif cls == ST.FAILURE:
                        ids.append("dicom.status.failure")
                    elif cls == ST.CANCEL:
                        ids.append("dicom.status.cancel")
        ctx._ids = list(dict.fromkeys(i for i in ids if i in CATALOGUE))
    return ctx._ids


# element fields: decoded lazily, once per PDU
_EL_FIELDS = ("dicom.tag", "dicom.tag.vr", "dicom.tag.vl", "dicom.tag.value.str", "dicom.tag.value.16u",
              "dicom.tag.value.16s", "dicom.tag.value.32u", "dicom.tag.value.32s", "dicom.tag.value.byte")
_NUMERIC_FIELD = {"US": "dicom.tag.value.16u", "SS": "dicom.tag.value.16s", "UL": "dicom.tag.value.32u",
                  "AT": "dicom.tag.value.32u", "SL": "dicom.tag.value.32s"}
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NO_ELEMENTS = {f: [] for f in _EL_FIELDS}


def _element_values(buf, syntax, out):
    from .dataset import TEXT_VRS, Binary, decode
    try:
        ds = decode(buf, syntax, max_elements=200_000)
    except Exception:  # a damaged value must never stop a listing
        return
    for e in ds.walk():
        vr = e.vr
        out["dicom.tag"].append(e.tag)
        out["dicom.tag.vr"].append(vr)
        out["dicom.tag.vl"].append(e.vl)
        v = e.value
        if v is None or e.children is not None:
            continue
        if vr in TEXT_VRS:
            if vr == "UI":
                out["dicom.tag.value.str"].extend(UidStr(u) for u in (v if isinstance(v, list) else [v]))
            else:
                out["dicom.tag.value.str"].append("\\".join(v) if isinstance(v, list) else v)
        elif vr in _NUMERIC_FIELD:
            out[_NUMERIC_FIELD[vr]].extend(v if isinstance(v, list) else [v])
        elif vr in _BINARY_VRS or isinstance(v, Binary):
            out["dicom.tag.value.byte"].append(e.raw)


def _elements(ctx):
    if ctx._el is None:
        out = None
        for p in ctx.rec.pdvs:
            buf = syntax = None
            if p.control & 1:
                if p.command is not None and p.command.raw_bytes:
                    buf = p.command.raw_bytes  # implicit VR little endian, group 0000
            elif p.last_data and p.transfer is not None:
                t = p.transfer
                syntax = t.transfer_syntax or t.association.transfer_syntax(t.context_id)
                if syntax and not t.started_midway:
                    if t.head:
                        buf = bytes(t.head)
                    elif p.data is not None and len(p.data) == t.length:  # the whole data set
                        buf = bytes(p.data)
            if buf:
                if out is None:
                    out = {f: [] for f in _EL_FIELDS}
                _element_values(buf, syntax, out)
        ctx._el = out if out is not None else _NO_ELEMENTS
    return ctx._el


def _el_getter(name):
    return lambda c: _elements(c)[name]


def _pdu_ip(c, which):
    a = c.association
    if a is None:
        return []
    sip, sport, dip, dport = _flow_ips(a, c.rec.direction)
    return {"src": _ips(sip), "dst": _ips(dip), "addr": _ips(sip, dip),
            "srcport": [sport], "dstport": [dport], "port": [sport, dport]}[which]


_PDU_ONLY = {
    "dicom": lambda c: [True],
    "dicom.pdu.type": lambda c: [c.rec.type],
    "dicom.pdu.len": lambda c: [c.rec.length],
    "dicom.assoc.item.type": lambda c: _item_walk(c)[0],
    "dicom.assoc.item.len": lambda c: _item_walk(c)[1],
    "dicom.pdv.len": lambda c: [p.length for p in c.rec.pdvs],
    "dicom.pdv.ctx": lambda c: [p.context_id for p in c.rec.pdvs],
    "dicom.pdv.flags": lambda c: [p.control for p in c.rec.pdvs],
    "dicom.pdv.reassembled.length": lambda c: (
        [len(p.command.raw_bytes or b"") for p in c.rec.pdvs if p.control & 1 and p.command is not None]
        + [p.transfer.length for p in c.rec.pdvs
           if not p.control & 1 and p.last_data and p.transfer is not None]),
    "dicom.op.command": lambda c: [cmd.service for cmd in _commands(c)],
    "dicom.op.message_id": lambda c: [m for m in map(_op_message_id, _commands(c)) if m is not None],
    "dicom.op.status": lambda c: [cmd.status for cmd in _responses(c)],
    "dicom.op.status_class": lambda c: [ST.status_class(cmd.status) for cmd in _responses(c)],
    "dicom.op.latency": lambda c: [x for cmd in _responses(c) for x in _latency(cmd)],
    "dicom.expert.id": lambda c: _pdu_experts(c),
    "dicom.expert.severity": lambda c: [CATALOGUE[i].severity.label for i in _pdu_experts(c)],
    "frame.number": lambda c: sorted({c.rec.frame_first, c.rec.frame_last}),
    "ip.addr": lambda c: _pdu_ip(c, "addr"),
    "ip.src": lambda c: _pdu_ip(c, "src"),
    "ip.dst": lambda c: _pdu_ip(c, "dst"),
    "tcp.port": lambda c: _pdu_ip(c, "port"),
    "tcp.srcport": lambda c: _pdu_ip(c, "srcport"),
    "tcp.dstport": lambda c: _pdu_ip(c, "dstport"),
}
_PDU_ONLY.update({name: _el_getter(name) for name in _EL_FIELDS})


# --- expert-context getters -----------------------------------------------------
def _expert_ip(c, which):
    a = c.association
    if a is None:
        return []
    sip, sport, dip, dport = _flow_ips(a, 0)
    return {"src": _ips(sip), "dst": _ips(dip), "addr": _ips(sip, dip),
            "srcport": [sport], "dstport": [dport], "port": [sport, dport]}[which]


_EXPERT_ONLY = {
    "dicom": lambda c: [True] if c.association is not None else [],
    "dicom.expert.id": lambda c: [c.info.id],
    "dicom.expert.severity": lambda c: [c.info.severity.label],
    "frame.number": lambda c: [c.info.frame] if c.info.frame else [],
    "ip.addr": lambda c: _expert_ip(c, "addr"),
    "ip.src": lambda c: _expert_ip(c, "src"),
    "ip.dst": lambda c: _expert_ip(c, "dst"),
    "tcp.port": lambda c: _expert_ip(c, "port"),
    "tcp.srcport": lambda c: _expert_ip(c, "srcport"),
    "tcp.dstport": lambda c: _expert_ip(c, "dstport"),
}


# --- summary rows (the JSON document) ------------------------------------------------
def _split_endpoint(text):
    """"10.0.0.1:104" / "[::1]:104" -> (ip_address or None, port or None)."""
    if not text:
        return None, None
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return _ip(host), int(port)
    except ValueError:
        return _ip(host), None


class _AssocView:
    """What rows of one association share, computed once."""

    __slots__ = ("a", "uis", "ctxs", "ids", "client", "server")

    def __init__(self, a, expert_ids):
        self.a = a
        ui = a.get("user_info") or {}
        self.uis = [u for u in (ui.get("requestor"), ui.get("acceptor")) if u]
        self.ctxs = a.get("contexts") or []
        ids = set(expert_ids)
        if a.get("reject"):
            ids.add("dicom.assoc.reject")
        if a.get("abort"):
            ids.add("dicom.assoc.abort")
        self.ids = ids
        self.client = _split_endpoint(a.get("client"))
        self.server = _split_endpoint(a.get("server"))


class _Row:
    __slots__ = ("v", "op", "ex", "client", "server")

    def __init__(self, view, op=None, ex=None, attempt=None):
        self.v = view
        self.op = op
        self.ex = ex
        if view is not None:
            self.client, self.server = view.client, view.server
        elif attempt is not None:
            self.client = _split_endpoint(attempt.get("client"))
            self.server = _split_endpoint(attempt.get("server"))
        else:
            self.client = self.server = (None, None)


def _a(r, key):
    return _some(r.v.a.get(key)) if r.v is not None else []


def _sub(r, part, key):
    if r.v is None:
        return []
    d = r.v.a.get(part)
    return _some(d.get(key)) if d else []


def _ui_rows(r, key):
    return [x for u in (r.v.uis if r.v is not None else ()) for x in (u.get(key) or ())]


def _ui_vals(r, key, sub=None):
    out = []
    for u in (r.v.uis if r.v is not None else ()):
        v = u.get(key)
        if sub is not None and isinstance(v, dict):
            v = v.get(sub)
        if v is not None and v != "":
            out.append(v)
    return out


def _json_negs(r):
    out = []
    for e in _ui_rows(r, "extended_negotiations"):
        try:
            info = bytes.fromhex(e.get("application_info") or "")
        except ValueError:
            info = b""
        out.append((e.get("sop_class_uid") or "", info))
    return out


def _json_identities(r):
    return [u["user_identity"] for u in (r.v.uis if r.v is not None else ()) if u.get("user_identity")]


def _row_ip(r, which):
    cip, cport = r.client
    sip, sport = r.server
    return {"src": [cip], "dst": [sip], "addr": [cip, sip], "srcport": [cport], "dstport": [sport],
            "port": [cport, sport]}[which]


def _row_getter_ip(which):
    return lambda r: [x for x in _row_ip(r, which) if x is not None]


def _op(r, key):
    return _some(r.op.get(key)) if r.op is not None else []


def _pseudo_row(name):
    def get(r):
        if r.v is not None:
            return [True] if name in r.v.ids else []
        return [True] if r.ex is not None and r.ex.get("id") == name else []
    return get


_ROW = {
    "dicom": lambda r: [True] if r.v is not None else [],
    "dicom.assoc.id": lambda r: _a(r, "id"),
    "dicom.assoc.calling": lambda r: _a(r, "calling_ae"),
    "dicom.assoc.called": lambda r: _a(r, "called_ae"),
    "dicom.assoc.ae.calling": lambda r: _a(r, "calling_ae"),
    "dicom.assoc.ae.called": lambda r: _a(r, "called_ae"),
    "dicom.assoc.reject.result": lambda r: _sub(r, "reject", "result"),
    "dicom.assoc.reject.source": lambda r: _sub(r, "reject", "source"),
    "dicom.assoc.reject.reason": lambda r: _sub(r, "reject", "reason"),
    "dicom.assoc.abort.source": lambda r: _sub(r, "abort", "source"),
    "dicom.assoc.abort.reason": lambda r: _sub(r, "abort", "reason"),
    "dicom.pctx.id": lambda r: [c["id"] for c in (r.v.ctxs if r.v else ())],
    "dicom.pctx.result": lambda r: [c["result_code"] for c in (r.v.ctxs if r.v else ())
                                    if c.get("result_code") is not None],
    "dicom.pctx.abss.syntax": lambda r: [UidStr(c["abstract_syntax"]) for c in (r.v.ctxs if r.v else ())
                                         if c.get("abstract_syntax")],
    "dicom.pctx.xfer.syntax": lambda r: [UidStr(t) for c in (r.v.ctxs if r.v else ()) for t in
                                         (c.get("proposed_transfer_syntaxes") or [])
                                         + ([c["transfer_syntax"]] if c.get("transfer_syntax") else [])],
    "dicom.userinfo": lambda r: [True for _ in (r.v.uis if r.v else ())],
    "dicom.userinfo.uid": lambda r: _ui_vals(r, "implementation_class_uid"),
    "dicom.userinfo.version": lambda r: _ui_vals(r, "implementation_version_name"),
    "dicom.max_pdu_len": lambda r: _ui_vals(r, "maximum_length"),
    "dicom.userinfo.asyncneg": lambda r: [True for _ in _ui_vals(r, "async_operations_window")],
    "dicom.userinfo.asyncneg.maxnumopsinv": lambda r: _ui_vals(r, "async_operations_window", "invoked"),
    "dicom.userinfo.asyncneg.maxnumopsper": lambda r: _ui_vals(r, "async_operations_window", "performed"),
    "dicom.userinfo.rolesel": lambda r: [True for _ in _ui_rows(r, "role_selections")],
    "dicom.userinfo.rolesel.sopclassuid": lambda r: [UidStr(x["sop_class_uid"])
                                                     for x in _ui_rows(r, "role_selections")],
    "dicom.userinfo.rolesel.sopclassuid.len": lambda r: [len(x["sop_class_uid"])
                                                         for x in _ui_rows(r, "role_selections")],
    "dicom.userinfo.rolesel.scurole": lambda r: [x["scu_role"] for x in _ui_rows(r, "role_selections")],
    "dicom.userinfo.rolesel.scprole": lambda r: [x["scp_role"] for x in _ui_rows(r, "role_selections")],
    "dicom.userinfo.extneg": lambda r: [True for _ in _json_negs(r)],
    "dicom.userinfo.extneg.sopclassuid": lambda r: [UidStr(u) for u, _ in _json_negs(r)],
    "dicom.userinfo.extneg.sopclassuid.len": lambda r: [len(u) for u, _ in _json_negs(r)],
    "dicom.userinfo.extneg.relational": lambda r: _extneg_byte(0, _QR)(_json_negs(r)),
    "dicom.userinfo.extneg.datetimematching": lambda r: _extneg_byte(1, _QR_FIND)(_json_negs(r)),
    "dicom.userinfo.extneg.fuzzymatching": lambda r: _extneg_byte(2, _QR_FIND)(_json_negs(r)),
    "dicom.userinfo.extneg.timezone": lambda r: _extneg_byte(3, _QR_FIND)(_json_negs(r)),
    "dicom.userinfo.unknown": lambda r: [True for _ in _ui_rows(r, "unknown_items")],
    "dicom.userinfo.data": lambda r: [bytes.fromhex(x.get("data") or "") for x in _ui_rows(r, "unknown_items")],
    "dicom.userinfo.user_identify": lambda r: [True for _ in _json_identities(r)],
    "dicom.userinfo.user_identify.type": lambda r: [i["type"] for i in _json_identities(r)],
    "dicom.userinfo.user_identify.response_requested": lambda r: [
        int(bool(i.get("positive_response_requested"))) for i in _json_identities(r)],
    "dicom.userinfo.user_identify.primary_field": lambda r: [i["primary_field"] for i in _json_identities(r)
                                                             if i.get("primary_field") is not None],
    "dicom.userinfo.user_identify.secondary_field_length": lambda r: [
        i["secondary_field_length"] for i in _json_identities(r) if i.get("secondary_field_length") is not None],
    "dicom.op.command": lambda r: _op(r, "command"),
    "dicom.op.message_id": lambda r: _op(r, "message_id"),
    "dicom.op.status": lambda r: _op(r, "status"),
    "dicom.op.status_class": lambda r: _op(r, "status_class"),
    "dicom.op.latency": lambda r: _op(r, "latency"),
    "dicom.expert.id": lambda r: [r.ex["id"]] if r.ex is not None else [],
    "dicom.expert.severity": lambda r: [r.ex["severity"]] if r.ex is not None else [],
    "ip.addr": _row_getter_ip("addr"),
    "ip.src": _row_getter_ip("src"),
    "ip.dst": _row_getter_ip("dst"),
    "tcp.port": _row_getter_ip("port"),
    "tcp.srcport": _row_getter_ip("srcport"),
    "tcp.dstport": _row_getter_ip("dstport"),
}


# ------------------------------------------------------------------ registry
# (name, type, bits, flavor, wireshark, description)
_DEFS = [
    ("dicom", NONE, 0, "", True, "the DICOM protocol: any DICOM PDU or association"),
    ("dicom.pdu.type", UINT, 8, "", True, "PDU type (1 A-ASSOCIATE-RQ ... 7 A-ABORT)"),
    ("dicom.pdu.len", UINT, 32, "", True, "PDU length (bytes after the 6-byte header)"),
    ("dicom.assoc.version", UINT, 16, "", True, "protocol version of an A-ASSOCIATE-RQ/AC"),
    ("dicom.assoc.ae.called", STRING, 0, "ae", True, "called AE title (A-ASSOCIATE-RQ/AC), without padding"),
    ("dicom.assoc.ae.calling", STRING, 0, "ae", True, "calling AE title (A-ASSOCIATE-RQ/AC), without padding"),
    ("dicom.assoc.reject.result", UINT, 8, "", True, "A-ASSOCIATE-RJ result (1 permanent, 2 transient)"),
    ("dicom.assoc.reject.source", UINT, 8, "", True, "A-ASSOCIATE-RJ source (1 user, 2 ACSE, 3 presentation)"),
    ("dicom.assoc.reject.reason", UINT, 8, "", True, "A-ASSOCIATE-RJ reason/diagnostic"),
    ("dicom.assoc.abort.source", UINT, 8, "", True, "A-ABORT source (0 user, 2 provider)"),
    ("dicom.assoc.abort.reason", UINT, 8, "", True, "A-ABORT reason/diagnostic"),
    ("dicom.assoc.item.type", UINT, 8, "", True, "type of an association item or sub-item (0x10 ... 0x59)"),
    ("dicom.assoc.item.len", UINT, 16, "", True, "length of an association item or sub-item"),
    ("dicom.actx", STRING, 0, "uid", True, "application context name (UID)"),
    ("dicom.pctx.id", UINT, 8, "", True, "presentation context ID (A-ASSOCIATE-RQ and -AC)"),
    ("dicom.pctx.result", UINT, 8, "", True, "presentation context result (0 accepted, 1-4 rejected)"),
    ("dicom.pctx.abss.syntax", STRING, 0, "uid", True, "abstract syntax (SOP class UID) of a proposed context"),
    ("dicom.pctx.xfer.syntax", STRING, 0, "uid", True, "transfer syntax proposed or accepted"),
    ("dicom.userinfo", NONE, 0, "", True, "user information item"),
    ("dicom.userinfo.uid", STRING, 0, "", True, "implementation class UID"),
    ("dicom.userinfo.version", STRING, 0, "", True, "implementation version name"),
    ("dicom.userinfo.extneg", NONE, 0, "", True, "SOP class extended negotiation sub-item"),
    ("dicom.userinfo.extneg.sopclassuid.len", UINT, 16, "", True, "SOP class UID length of an extended negotiation"),
    ("dicom.userinfo.extneg.sopclassuid", STRING, 0, "uid", True, "SOP class UID of an extended negotiation"),
    ("dicom.userinfo.extneg.relational", UINT, 8, "", True, "relational queries (Q/R FIND, MOVE, GET)"),
    ("dicom.userinfo.extneg.datetimematching", UINT, 8, "", True, "combined date-time matching (Q/R FIND)"),
    ("dicom.userinfo.extneg.fuzzymatching", UINT, 8, "", True, "fuzzy semantic person name matching (Q/R FIND)"),
    ("dicom.userinfo.extneg.timezone", UINT, 8, "", True, "timezone query adjustment (Q/R FIND)"),
    ("dicom.userinfo.rolesel", NONE, 0, "", True, "SCP/SCU role selection sub-item"),
    ("dicom.userinfo.rolesel.sopclassuid.len", UINT, 16, "", True, "SOP class UID length of a role selection"),
    ("dicom.userinfo.rolesel.sopclassuid", STRING, 0, "uid", True, "SOP class UID of a role selection"),
    ("dicom.userinfo.rolesel.scurole", UINT, 8, "", True, "SCU role of a role selection (0 or 1)"),
    ("dicom.userinfo.rolesel.scprole", UINT, 8, "", True, "SCP role of a role selection (0 or 1)"),
    ("dicom.userinfo.asyncneg", NONE, 0, "", True, "asynchronous operations window sub-item"),
    ("dicom.userinfo.asyncneg.maxnumopsinv", UINT, 16, "", True, "maximum number of operations invoked"),
    ("dicom.userinfo.asyncneg.maxnumopsper", UINT, 16, "", True, "maximum number of operations performed"),
    ("dicom.userinfo.unknown", NONE, 0, "", True, "unknown user information sub-item"),
    ("dicom.userinfo.data", BYTES, 0, "", True, "value of an unknown user information sub-item"),
    ("dicom.userinfo.user_identify", NONE, 0, "", True, "user identity sub-item"),
    ("dicom.userinfo.user_identify.type", UINT, 8, "", True, "user identity type (1 username ... 5 JWT)"),
    ("dicom.userinfo.user_identify.response_requested", UINT, 8, "", True, "user identity: positive response requested (0 or 1)"),
    ("dicom.userinfo.user_identify.primary_field_length", UINT, 16, "", True, "user identity primary field length"),
    ("dicom.userinfo.user_identify.primary_field", STRING, 0, "", True, "user identity primary field (user name, ticket...)"),
    ("dicom.userinfo.user_identify.secondary_field_length", UINT, 16, "", True, "user identity secondary field length"),
    ("dicom.userinfo.user_identify.secondary_field", STRING, 0, "", True, "user identity secondary field (passcode)"),
    ("dicom.max_pdu_len", UINT, 32, "", True, "maximum length (PDU size the sender can receive)"),
    ("dicom.pdv.len", UINT, 32, "", True, "PDV item length (value and 2 header bytes)"),
    ("dicom.pdv.ctx", UINT, 8, "", True, "PDV presentation context ID"),
    ("dicom.pdv.flags", UINT, 8, "", True, "PDV message control header (bit 0 command, bit 1 last)"),
    ("dicom.pdv.reassembled.length", UINT, 32, "", True, "length of the command or data set this PDV completes"),
    ("dicom.tag", UINT, 32, "", True, "element tag, (group << 16) | element, e.g. 0x00100010"),
    ("dicom.tag.vr", STRING, 0, "", True, "element VR (dictionary VR in implicit syntax)"),
    ("dicom.tag.vl", UINT, 32, "", True, "element value length (0xffffffff undefined)"),
    ("dicom.tag.value.str", STRING, 0, "", True, "value of a text element (UI: the UID; contains/matches try its name)"),
    ("dicom.tag.value.16s", INT, 16, "", True, "values of an SS element"),
    ("dicom.tag.value.16u", UINT, 16, "", True, "values of a US element"),
    ("dicom.tag.value.32s", INT, 32, "", True, "values of an SL element"),
    ("dicom.tag.value.32u", UINT, 32, "", True, "values of a UL element; AT values as (group << 16) | element"),
    ("dicom.tag.value.byte", BYTES, 0, "", True, "value of a binary element (OB OW OD OF OL OV UN)"),
    # fastdicom's own
    ("dicom.op.command", STRING, 0, "command", False, 'DIMSE service of an operation, e.g. "C-STORE"'),
    ("dicom.op.message_id", UINT, 16, "", False, "message ID of an operation"),
    ("dicom.op.status", UINT, 16, "", False, "DIMSE status of a response (0x0000 success, 0xa700 ...)"),
    ("dicom.op.status_class", STRING, 0, "status_class", False,
     "status class: success, pending, warning, failure, cancel"),
    ("dicom.op.latency", FLOAT, 0, "", False, "seconds from the request to the final response"),
    ("dicom.assoc.id", UINT, 0, "", False, "association number (as in the summary)"),
    ("dicom.assoc.calling", STRING, 0, "ae", False, "calling AE title of the association (every PDU of it)"),
    ("dicom.assoc.called", STRING, 0, "ae", False, "called AE title of the association (every PDU of it)"),
    ("dicom.expert.severity", STRING, 0, "severity", False, "expert info severity: chat < note < warning < error"),
    ("dicom.expert.id", STRING, 0, "expert_id", False, 'expert info ID, e.g. "dicom.assoc.abort"'),
    ("ip.addr", ADDRESS, 0, "", False, "source or destination IP address (IPv4 or IPv6)"),
    ("ip.src", ADDRESS, 0, "", False, "source IP address (association: the client)"),
    ("ip.dst", ADDRESS, 0, "", False, "destination IP address (association: the server)"),
    ("tcp.port", UINT, 16, "", False, "source or destination TCP port"),
    ("tcp.srcport", UINT, 16, "", False, "source TCP port (association: the client's)"),
    ("tcp.dstport", UINT, 16, "", False, "destination TCP port (association: the server's)"),
    ("frame.number", UINT, 32, "", False, "frame number (a PDU: its first and last frame)"),
]

_GETTERS = {PDU_CTX: {**_CONTENT, **_PDU_ONLY}, EXPERT_CTX: {**_CONTENT, **_EXPERT_ONLY}, SUMMARY_CTX: dict(_ROW)}


def _pseudo_pdu(name):
    return lambda c: [True] if name in _pdu_experts(c) else []


def _pseudo_expert(name):
    return lambda c: [True] if c.info.id == name else []


def _build_fields():
    fields = {}
    for name, typ, bits, flavor, ws, desc in _DEFS:
        ctxs = tuple(k for k in (PDU_CTX, SUMMARY_CTX, EXPERT_CTX) if name in _GETTERS[k])
        fields[name] = Field(name, typ, desc, bits, flavor, ws, ctxs)
    for eid, d in CATALOGUE.items():
        if not eid.startswith("dicom.") or eid in fields:
            continue
        _GETTERS[PDU_CTX][eid] = _pseudo_pdu(eid)
        _GETTERS[EXPERT_CTX][eid] = _pseudo_expert(eid)
        _GETTERS[SUMMARY_CTX][eid] = _pseudo_row(eid)
        text = re.sub(r"\{[^}]*\}", "…", d.template)
        fields[eid] = Field(eid, NONE, f"expert info ({d.severity.label}): {text}", 0, "expert",
                            eid in _WIRESHARK_EXPERTS, (PDU_CTX, SUMMARY_CTX, EXPERT_CTX))
    return fields


_WIRESHARK_EXPERTS = frozenset({
    "dicom.assoc.reject", "dicom.assoc.abort", "dicom.no_abstract_syntax", "dicom.multiple_abstract_syntax",
    "dicom.no_transfer_syntax", "dicom.no_abstract_syntax_uid", "dicom.multiple_transfer_syntax",
    "dicom.assoc.item.len.invalid", "dicom.pdv.ctx.invalid", "dicom.pdv.flags.invalid", "dicom.status_msg",
    "dicom.data.tag.missing", "dicom.pdv.len.invalid", "dicom.pdu_length.invalid"})

FIELDS: dict[str, Field] = _build_fields()

# Wireshark fields fastdicom cannot supply, and why
NOT_SUPPLIED = {
    "dicom.data.tag": "fastdicom never shows undecoded bytes as elements",
    "dicom.pdv.fragments": "PDVs are reassembled in one pass; no per-fragment list is kept",
    "dicom.pdv.fragment": "PDVs are reassembled in one pass; no per-fragment list is kept",
    "dicom.pdv.fragment.overlap": "PDV fragments cannot overlap once TCP is reassembled",
    "dicom.pdv.fragment.overlap.conflicts": "PDV fragments cannot overlap once TCP is reassembled",
    "dicom.pdv.fragment.multiple_tails": "PDV fragments cannot overlap once TCP is reassembled",
    "dicom.pdv.fragment.too_long_fragment": "PDV fragments cannot overlap once TCP is reassembled",
    "dicom.pdv.fragment.error": "PDVs are reassembled in one pass; no per-fragment list is kept",
    "dicom.pdv.fragment_count": "PDVs are reassembled in one pass; no per-fragment list is kept",
    "dicom.pdv.reassembled.in": "it needs a second pass (use dicom.pdv.reassembled.length on the last PDV)",
}

_OP_FIELDS = frozenset(n for n in FIELDS if n.startswith("dicom.op."))
_EXPERT_FIELDS = frozenset({"dicom.expert.id", "dicom.expert.severity"})
_COMMANDS = frozenset({"C-STORE", "C-GET", "C-FIND", "C-MOVE", "C-ECHO", "C-CANCEL", "N-EVENT-REPORT",
                       "N-GET", "N-SET", "N-ACTION", "N-CREATE", "N-DELETE"})


# -------------------------------------------------------------------- lexer
@dataclass(frozen=True)
class _Tok:
    kind: str  # "word", "str", "op", "eof"
    text: str  # source text (the decoded value for "str")
    pos: int
    raw: str = ""  # source text of a string, quotes included

    def shown(self) -> str:
        if self.kind == "eof":
            return "end of filter"
        return self.raw if self.kind == "str" else f'"{self.text}"'


_PUNCT = ("===", "!==", "==", "!=", "~=", "<=", ">=", "&&", "||", "..", "<", ">", "!", "~",
          "(", ")", "{", "}", ",", "[", "]", "=", "&", "|", "^")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-/+")
_SIMPLE_ESC = {'"': '"', "\\": "\\", "'": "'", "a": "\a", "b": "\b", "f": "\f", "n": "\n",
               "r": "\r", "t": "\t", "v": "\v"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _lex(text: str) -> list:
    toks = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"' or (ch == "r" and i + 1 < n and text[i + 1] == '"'):
            tok, i = _lex_string(text, i)
            toks.append(tok)
            continue
        if ch == "'":
            raise FilterError("single quotes are not string delimiters: use double quotes", text, i)
        for p in _PUNCT:
            if text.startswith(p, i):
                toks.append(_Tok("op", p, i))
                i += len(p)
                break
        else:
            if ch not in _WORD:
                raise FilterError(f"unexpected character {ch!r}", text, i)
            j = i
            while j < n and text[j] in _WORD and not text.startswith("..", j):
                j += 1
            toks.append(_Tok("word", text[i:j], i))
            i = j
    toks.append(_Tok("eof", "", n))
    return toks


def _lex_string(text, start):
    raw = text[start] == "r"
    i = start + 2 if raw else start + 1
    n = len(text)
    out = []
    while True:
        if i >= n:
            raise FilterError('unterminated string: missing closing "', text, start)
        ch = text[i]
        if ch == '"':
            return _Tok("str", "".join(out), start, text[start:i + 1]), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            raise FilterError('unterminated string: missing closing "', text, start)
        e = text[i + 1]
        if raw:  # backslashes are kept; \" does not end the string
            out.append("\\" + e)
            i += 2
        elif e in _SIMPLE_ESC:
            out.append(_SIMPLE_ESC[e])
            i += 2
        elif e in "01234567":
            j = i + 1
            while j < n and j < i + 4 and text[j] in "01234567":
                j += 1
            out.append(chr(int(text[i + 1:j], 8)))
            i = j
        elif e in "xuU":
            want = {"x": 2, "u": 4, "U": 8}[e]
            j = i + 2
            while j < n and j < i + 2 + want and text[j] in _HEX:
                j += 1
            if j == i + 2 or (e != "x" and j - i - 2 != want):
                raise FilterError(f"invalid escape \\{e}: expected {want} hex digits", text, i)
            code = int(text[i + 2:j], 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise FilterError(f"invalid escape {text[i:j]}: not a character", text, i)
            out.append(chr(code))
            i = j
        else:
            raise FilterError(f"invalid escape \\{e} (use \\\\ for a backslash)", text, i)


# ------------------------------------------------------------------- parser
_COMPARE = {"==": "==", "eq": "==", "any_eq": "==", "!=": "!=", "ne": "!=", "all_ne": "!=",
            "===": "===", "all_eq": "===", "!==": "!==", "~=": "!==", "any_ne": "!==",
            "<": "<", "lt": "<", "<=": "<=", "le": "<=", ">": ">", "gt": ">", ">=": ">=", "ge": ">="}
_KEYWORDS = frozenset(_COMPARE) | {"and", "or", "not", "contains", "matches", "in"}
_ORDERING = frozenset({"<", "<=", ">", ">="})
_EQUALITY = frozenset({"==", "!=", "===", "!=="})


def _kw(tok) -> str | None:
    """The keyword or operator a token stands for (None: a field or value)."""
    if tok.kind == "op":
        return {"&&": "and", "||": "or", "!": "not", "~": "matches"}.get(tok.text, tok.text)
    if tok.kind == "word":
        w = tok.text.lower()
        if w in _KEYWORDS:
            return w
    return None


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = _lex(text)
        self.i = 0
        self.depth = 0
        self.used = []  # (Field, position)

    def peek(self, k=0):
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self):
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def fail(self, message, pos):
        raise FilterError(message, self.text, pos)

    def parse(self):
        node = self.or_expr(None)
        t = self.peek()
        if t.kind != "eof":
            if t.kind == "op" and t.text == ")":
                self.fail('unbalanced ")": no "(" to close', t.pos)
            self.fail(f'expected "and", "or" or end of filter, found {t.shown()}', t.pos)
        return node

    def or_expr(self, after):
        items = [self.and_expr(after)]
        while _kw(self.peek()) == "or":
            op = self.take()
            items.append(self.and_expr(op))
        return items[0] if len(items) == 1 else ("or", items)

    def and_expr(self, after):
        items = [self.not_expr(after)]
        while _kw(self.peek()) == "and":
            op = self.take()
            items.append(self.not_expr(op))
        return items[0] if len(items) == 1 else ("and", items)

    def not_expr(self, after):
        t = self.peek()
        if _kw(t) == "not":
            self.take()
            self.enter(t)
            node = ("not", self.not_expr(t))
            self.depth -= 1
            return node
        return self.primary(after)

    def enter(self, tok):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"filter nested too deeply (more than {MAX_DEPTH} levels)", tok.pos)

    def primary(self, after):
        t = self.peek()
        where = f' after "{after.text}"' if after is not None else ""
        if t.kind == "op" and t.text == "(":
            self.take()
            self.enter(t)
            node = self.or_expr(t)
            close = self.peek()
            if not (close.kind == "op" and close.text == ")"):
                self.fail(f'expected ")" to close the "(" at position {t.pos}, found {close.shown()}', close.pos)
            self.take()
            self.depth -= 1
            return node
        if t.kind != "word" or _kw(t) is not None:
            self.fail(f"expected a field name{where}, found {t.shown()}", t.pos)
        return self.test()

    def field(self, tok) -> Field:
        name = tok.text
        f = FIELDS.get(name)
        if f is not None:
            return f
        nxt = self.peek()  # the token after the name
        if nxt.kind == "op" and nxt.text == "(":
            self.fail(f'unknown function "{name}": filters have no functions', tok.pos)
        if name in NOT_SUPPLIED:
            self.fail(f'field "{name}" is not supplied by fastdicom: {NOT_SUPPLIED[name]}', tok.pos)
        if name[:1].isdigit() or name[:1] in "-.:":
            self.fail(f"expected a field name, found {tok.shown()}", tok.pos)
        self.fail(f'unknown field "{name}"{_suggest(name, FIELDS)}', tok.pos)

    def test(self):
        ftok = self.take()
        f = self.field(ftok)
        self.used.append((f, ftok.pos))
        t = self.peek()
        k = _kw(t)
        negate = False
        if k == "not" and _kw(self.peek(1)) == "in":
            self.take()
            t, k, negate = self.peek(), "in", True
        if k is None or k in ("and", "or", "not") or (t.kind == "op" and t.text == ")"):
            if k is None and t.kind != "eof" and not (t.kind == "op" and t.text == ")"):
                self.bad_operator(t, f)
            return ("has", f)
        if k in ("contains", "matches", "in") or k in _COMPARE:
            op = self.take()
            if f.type == NONE:
                self.fail(f"{f.name} is a presence-only field: it cannot be compared "
                          f'(write just "{f.name}" to test that it is present)', op.pos)
            if k == "in":
                return ("in", f, self.members(f, op), negate, ftok.pos)
            if k == "matches":
                return ("cmp", f, "matches", self.regex(f, op), ftok.pos)
            if k == "contains":
                if f.type not in (STRING, BYTES):
                    self.fail(f'"contains" needs a string or bytes field: {f.name} is {TYPE_WORDS[f.type]}',
                              op.pos)
                return ("cmp", f, "contains", self.value(f, "contains", op), ftok.pos)
            cmp = _COMPARE[k]
            return ("cmp", f, cmp, self.value(f, cmp, op), ftok.pos)
        self.bad_operator(t, f)

    def bad_operator(self, t, f):
        hint = {"=": ' (use "==")', "&": ": bitwise operators are not supported",
                "|": ' (use "||" or "or")', "[": ": slices are not supported",
                "^": ": not supported"}.get(t.text if t.kind == "op" else "", "")
        if hint:
            self.fail(f'unknown operator "{t.text}"{hint}', t.pos)
        self.fail(f"expected an operator (==, !=, <, >, contains, matches, in), \"and\", \"or\" "
                  f"or end of filter after {f.name}, found {t.shown()}", t.pos)

    def value(self, f, op, op_tok):
        t = self.take()
        if t.kind == "eof" or (t.kind == "op") or (t.kind == "word" and _kw(t) is not None):
            self.fail(f'expected a value after "{op_tok.text}", found {t.shown()}', t.pos)
        if t.kind == "word" and t.text in FIELDS:
            self.fail(f"comparing a field with another field ({t.text}) is not supported", t.pos)
        return _convert(f, op, t, self.text)

    def regex(self, f, op_tok):
        if f.type != STRING:
            self.fail(f'"matches" needs a string field: {f.name} is {TYPE_WORDS[f.type]}', op_tok.pos)
        t = self.take()
        if t.kind != "str":
            if t.kind == "eof" or t.kind == "op":
                self.fail(f'expected a quoted regular expression after "{op_tok.text}", found {t.shown()}',
                          t.pos)
            self.fail(f'"matches" needs a double-quoted regular expression, found {t.shown()}', t.pos)
        try:
            return re.compile(t.text)
        except re.error as e:
            self.fail(f"invalid regular expression: {e.msg}", t.pos + (e.pos or 0) + 1 if e.pos is not None
                      else t.pos)
        except (RecursionError, OverflowError, ValueError) as e:
            self.fail(f"invalid regular expression: {e}", t.pos)

    def members(self, f, in_tok):
        t = self.take()
        if not (t.kind == "op" and t.text == "{"):
            self.fail(f'expected "{{" after "{in_tok.text}", found {t.shown()}', t.pos)
        open_tok = t
        items = []
        while True:
            t = self.peek()
            if t.kind == "op" and t.text == "}":
                if not items:
                    self.fail("expected a value in the set, found \"}\"", t.pos)
                self.take()
                return items
            if t.kind == "op" and t.text == "," and items:
                self.take()
                t = self.peek()
            if t.kind == "eof":
                self.fail(f'expected "}}" to close the set opened at position {open_tok.pos}, '
                          f"found end of filter", t.pos)
            if t.kind != "word" and t.kind != "str":
                self.fail(f"expected a value in the set, found {t.shown()}", t.pos)
            lo = self.value(f, "==", in_tok if not items else open_tok)
            dots = self.peek()
            if dots.kind == "op" and dots.text == "..":
                self.take()
                if f.type not in (UINT, INT, FLOAT, STRING, BYTES, ADDRESS) or f.flavor in ("expert_id",
                                                                                              "command"):
                    self.fail(f"a range needs an ordered field: {f.name} is {TYPE_WORDS[f.type]}", dots.pos)
                hi = self.value(f, "<=", dots)
                if isinstance(lo, _Net) or isinstance(hi, _Net):
                    self.fail("a range of addresses takes single addresses, not networks", dots.pos)
                items.append(("range", lo, hi))
            else:
                items.append(("eq", lo))


def _suggest(name, names) -> str:
    longer = [n for n in names if n.startswith(name + ".")]
    if longer:
        return f" (did you mean {longer[0]}?)"
    cands = [n for n in names if not name.startswith(n + ".")]  # never a mere prefix of the input
    near = difflib.get_close_matches(name, cands, n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


# ------------------------------------------------------------ literal values
class _Net:
    """A CIDR network literal for ip.* fields (== / != / in test membership)."""

    __slots__ = ("net",)

    def __init__(self, net):
        self.net = net

    def __contains__(self, ip):
        return ip.version == self.net.version and ip in self.net


_INT_RE = re.compile(r"-?(0[xX][0-9a-fA-F]+|[0-9]+)\Z")
_FLOAT_RE = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")
_BYTES_RE = re.compile(r"[0-9a-fA-F]{2}([:.\-][0-9a-fA-F]{2})*\Z")


def _convert(f: Field, op: str, t: _Tok, text: str):
    """A literal token as a value of field ``f``; FilterError if it is not one."""
    def fail(msg):
        raise FilterError(msg, text, t.pos)

    shown = t.shown() if t.kind == "str" else t.text
    if f.type in (UINT, INT):
        if t.kind == "str":
            fail(f"{f.name} is {TYPE_WORDS[f.type]} field: expected a number, found {shown}")
        if not _INT_RE.match(t.text):
            fail(f'{f.name} is {TYPE_WORDS[f.type]} field: "{t.text}" is not an integer '
                 f"(decimal, or hexadecimal with 0x)")
        digits = t.text.lstrip("-")
        if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX":
            fail(f'ambiguous number "{t.text}": write 0x{digits} for hexadecimal '
                 f'or {int(digits)} for decimal')
        v = int(t.text, 0) if not t.text.startswith("-") else -int(digits, 0)
        if f.type == UINT and v < 0:
            fail(f"{f.name} is unsigned: {t.text} is negative")
        if f.bits:
            lo, hi = ((0, (1 << f.bits) - 1) if f.type == UINT else (-(1 << (f.bits - 1)), (1 << (f.bits - 1)) - 1))
            if not lo <= v <= hi:
                fail(f"{t.text} is out of range for {f.name} ({f.type_text}: {lo} to {hi})")
        return v
    if f.type == FLOAT:
        if t.kind == "str" or not _FLOAT_RE.match(t.text):
            fail(f"{f.name} is {TYPE_WORDS[f.type]} field: expected a number, found {shown}")
        return float(t.text)
    if f.type == ADDRESS:
        try:
            if "/" in t.text:
                if op in _ORDERING:
                    fail(f'a network ("{t.text}") can only be tested with ==, != or in')
                return _Net(ipaddress.ip_network(t.text, strict=False))
            return ipaddress.ip_address(t.text)
        except ValueError:
            fail(f'{f.name} is an IP address field: "{t.text}" is not an IPv4 or IPv6 address '
                 f"(names are not resolved)")
    if f.type == BYTES:
        if t.kind == "str":
            return t.text.encode("utf-8", "surrogatepass")
        if _BYTES_RE.match(t.text):
            return bytes.fromhex(re.sub(r"[:.\-]", "", t.text))
        if _INT_RE.match(t.text) and t.text.lower().startswith("0x") and int(t.text, 16) <= 0xFF:
            return bytes([int(t.text, 16)])
        fail(f'{f.name} is a bytes field: "{t.text}" is not a byte string (e.g. 01:02:ff or "text")')
    # string fields
    if t.kind != "str":
        fail(f'{f.name} is a string field: expected a double-quoted string, found {t.text} '
             f'(write "{t.text}")')
    v = t.text
    fl = f.flavor
    if fl == "ae":
        v = v.strip(" \x00")
    elif fl == "severity" and op != "contains":
        try:
            v = Severity.parse(v).label
        except ValueError:
            fail(f"unknown severity {shown} (chat, note, warning, error)")
    elif fl == "status_class" and (op in _EQUALITY or op in _ORDERING) and v not in STATUS_CLASSES:
        fail(f"unknown status class {shown} (success, pending, warning, failure, cancel)")
    elif fl == "expert_id" and op in _EQUALITY and v not in CATALOGUE:
        fail(f"unknown expert info ID {shown}{_suggest(v, CATALOGUE)}")
    elif fl == "command" and op in _EQUALITY and v not in _COMMANDS \
            and not re.fullmatch(r"Command 0x[0-9a-f]{4}", v):
        base = re.sub(r"-(RQ|RSP)\Z", "", v)
        hint = f" (did you mean {base}? dicom.op.command holds the service)" if base in _COMMANDS \
            else _suggest(v, _COMMANDS)
        fail(f"unknown DIMSE command {shown}{hint}")
    return v


# ----------------------------------------------------------------- compiler
def _absent(_ctx):
    return ()


def _eq_pred(lit):
    if isinstance(lit, _Net):
        return lambda v: v in lit
    if isinstance(lit, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return lambda v: v == lit
    return lambda v: v == lit


def _plain_order(op, lit):
    return {"<": lambda v: v < lit, "<=": lambda v: v <= lit,
            ">": lambda v: v > lit, ">=": lambda v: v >= lit}[op]


def _ordered(op, lit):
    if isinstance(lit, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        ver = lit.version
        cmp = _plain_order(op, lit)
        return lambda v: v.version == ver and cmp(v)
    return _plain_order(op, lit)


def _in_range(lo, hi):
    if isinstance(lo, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return lambda v: v.version == lo.version == hi.version and lo <= v <= hi
    return lambda v: lo <= v <= hi


def _member_pred(items):
    singles = set()
    preds = []
    for it in items:
        if it[0] == "eq" and not isinstance(it[1], _Net):
            singles.add(it[1])
        elif it[0] == "eq":
            preds.append(_eq_pred(it[1]))
        else:
            preds.append(_in_range(it[1], it[2]))
    if not preds:
        return singles.__contains__
    return lambda v: v in singles or any(p(v) for p in preds)


def _any(get, pred):
    def f(ctx):
        for v in get(ctx):
            if pred(v):
                return True
        return False
    return f


def _all(get, pred):
    def f(ctx):
        vals = get(ctx)
        if not vals:
            return False
        for v in vals:
            if not pred(v):
                return False
        return True
    return f


def _severity_getter(get):
    return lambda ctx: [SEVERITY_RANK[v] for v in get(ctx)]


def _compile(node, getters):
    kind = node[0]
    if kind in ("or", "and"):
        fs = [_compile(n, getters) for n in node[1]]
        if kind == "or":
            def f_or(ctx):
                for g in fs:
                    if g(ctx):
                        return True
                return False
            return f_or

        def f_and(ctx):
            for g in fs:
                if not g(ctx):
                    return False
            return True
        return f_and
    if kind == "not":
        g = _compile(node[1], getters)
        return lambda ctx: not g(ctx)
    f = node[1]
    get = getters.get(f.name, _absent)
    if kind == "has":
        return lambda ctx: bool(get(ctx))
    if f.flavor == "severity":  # compare by rank
        if kind == "in":
            items = [(it[0],) + tuple(SEVERITY_RANK[x] for x in it[1:]) for it in node[2]]
            node = ("in", f, items, node[3], node[4])
        elif node[2] not in ("contains", "matches"):
            node = ("cmp", f, node[2], SEVERITY_RANK[node[3]], node[4])
        if node[0] == "in" or node[2] not in ("contains", "matches"):
            get = _severity_getter(get)
    if kind == "in":
        pred = _member_pred(node[2])
        if node[3]:  # not in: present, and no occurrence in the set
            return _all(get, lambda v: not pred(v))
        return _any(get, pred)
    op, lit = node[2], node[3]
    if op == "contains":
        if isinstance(lit, str):
            def pred(v):
                return lit in v or (type(v) is UidStr and lit in uid_name(v))
        else:
            def pred(v):
                return lit in v
        return _any(get, pred)
    if op == "matches":
        search = lit.search

        def pred(v):
            return search(v) is not None or (type(v) is UidStr and search(uid_name(v)) is not None)
        return _any(get, pred)
    if op in _ORDERING:
        return _any(get, _ordered(op, lit))
    eq = _eq_pred(lit)
    if op == "==":
        return _any(get, eq)
    if op == "===":
        return _all(get, eq)
    ne = (lambda v: not eq(v))
    if op == "!=":
        return _all(get, ne)
    return _any(get, ne)  # !==


def _fields_of(node, out):
    if node[0] in ("or", "and"):
        for n in node[1]:
            _fields_of(n, out)
    elif node[0] == "not":
        _fields_of(node[1], out)
    else:
        out.add(node[1].name)
    return out


# ------------------------------------------------------------------- Filter
class Filter:
    """A compiled display filter (see the module docstring)."""

    def __init__(self, text, node, used):
        self.text = text
        self.used = used  # [(Field, position)]
        self.fields = frozenset(f.name for f, _ in used)
        self.uses_op = bool(self.fields & _OP_FIELDS)
        self.uses_expert = bool(self.fields & _EXPERT_FIELDS)
        self._pdu = _compile(node, _GETTERS[PDU_CTX])
        self._expert = _compile(node, _GETTERS[EXPERT_CTX])
        self._row = _compile(node, _GETTERS[SUMMARY_CTX])

    def __repr__(self):
        return f"Filter({self.text!r})"

    def check(self, command: str) -> "Filter":
        """FilterError for a field that can never be present for ``command``."""
        ctx = COMMAND_CONTEXT.get(command)
        if ctx is None:
            return self
        for f, pos in self.used:
            if ctx not in f.contexts:
                where = " or ".join(f"'fastdicom {c}'" for c in f.contexts) or "nowhere"
                raise FilterError(f"{f.name} is not available in 'fastdicom {command}' "
                                  f"(it is in {where})", self.text, pos)
        return self

    # ---------------------------------------------------------------- PDUs
    def match_pdu(self, rec) -> bool:
        return self._pdu(_PduCtx(rec))

    # -------------------------------------------------------------- expert
    def match_expert(self, info, decoder) -> bool:
        a = None
        if info.association is not None and decoder is not None:
            assocs = decoder.associations
            if 0 <= info.association < len(assocs):
                a = assocs[info.association]
        return self._expert(_ExpertCtx(info, a))

    # ------------------------------------------------------------- summary
    def select_summary(self, doc: dict) -> dict:
        ev = self._row
        by_assoc = {}
        for i, e in enumerate(doc.get("expert") or ()):
            by_assoc.setdefault(e.get("association"), []).append(i)
        expert = doc.get("expert") or []
        kept_assocs, kept_experts, kept_ops = [], set(), {}
        for a in doc.get("associations") or ():
            eidx = by_assoc.get(a.get("id"), [])
            view = _AssocView(a, [expert[i].get("id") for i in eidx])
            ops = a.get("operations") or []
            if not (self.uses_op or self.uses_expert):
                if not ev(_Row(view)):
                    continue
                sel_ops, sel_ex = ops, eidx
            else:
                sel_ops = [op for op in ops if ev(_Row(view, op=op))] if self.uses_op else ops
                sel_ex = [i for i in eidx if ev(_Row(view, ex=expert[i]))] if self.uses_expert else eidx
                judged = (self.uses_op and ops) or (self.uses_expert and eidx)
                hit = ((self.uses_op and bool(sel_ops)) or (self.uses_expert and bool(sel_ex))) if judged \
                    else ev(_Row(view))
                if not hit:
                    continue
            kept_ops[a.get("id")] = sel_ops
            kept_experts.update(sel_ex)
            kept_assocs.append(dict(a, operations=list(sel_ops)))
        if self.uses_expert:  # entries without an association, judged alone
            kept_experts.update(i for i in by_assoc.get(None, []) if ev(_Row(None, ex=expert[i])))
        objects = [o for o in doc.get("objects") or () if o.get("association") in kept_ops]
        if self.uses_op:
            objects = _objects_of_ops(objects, kept_ops, doc.get("associations") or ())
        attempts = [t for t in doc.get("tcp_attempts") or () if ev(_Row(None, attempt=t))]
        out = dict(doc)
        out["filter"] = self.text
        out["associations"] = kept_assocs
        out["objects"] = objects
        out["expert"] = [e for i, e in enumerate(expert) if i in kept_experts]
        out["tcp_attempts"] = attempts
        out["counts_unfiltered"] = doc.get("counts")
        out["counts"] = _counts(doc.get("counts") or {}, kept_assocs, objects, out["expert"])
        return out


def _op_key(service, message_id, invoker, assoc):
    return (assoc, service, message_id, invoker)


def _objects_of_ops(objects, kept_ops, assocs):
    """The objects that belong to kept operations: same association, service,
    message ID and invoking side, and the latest such request before them."""
    all_ops = {}
    for a in assocs:
        for op in a.get("operations") or ():
            inv = 0 if op.get("invoked_by") == "requestor" else 1
            key = _op_key(op.get("command"), op.get("message_id"), inv, a.get("id"))
            start = op.get("request_frame") or op.get("response_frame") or 0
            all_ops.setdefault(key, []).append((start, id(op)))
    kept_ids = {id(op) for ops in kept_ops.values() for op in ops}
    out = []
    for o in objects:
        cmd = o.get("command") or ""
        m = re.fullmatch(r"(.*)-(RQ|RSP)", cmd)
        if not m:
            continue
        direction = 0 if o.get("direction") == "client_to_server" else 1
        inv = direction if m.group(2) == "RQ" else 1 - direction
        cands = all_ops.get(_op_key(m.group(1), o.get("message_id"), inv, o.get("association")), [])
        frame = o.get("frame_first") or 0
        best = None
        for start, oid in cands:
            if start <= frame and (best is None or start >= best[0]):
                best = (start, oid)
        if best is None and cands:
            best = cands[0]
        if best is not None and best[1] in kept_ids:
            out.append(o)
    return out


def _counts(orig, assocs, objects, expert):
    from collections import Counter
    ops = Counter()
    for a in assocs:
        for op in a["operations"]:
            ops[(op.get("command"), op.get("status_class") or "unanswered")] += 1
    nested = {}
    for (cmd, cls), n in sorted(ops.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        nested.setdefault(cmd, {})[cls] = n
    c = dict(orig)
    c.update({
        "associations": len(assocs),
        "operations": sum(ops.values()),
        "operations_by_command": nested,
        "objects": len(objects),
        "objects_complete": sum(1 for o in objects if o.get("complete")),
        "pdus": sum(sum((a.get("pdus") or {}).values()) for a in assocs),
        "expert_by_severity": dict(Counter(e.get("severity") for e in expert)),
    })
    return c


def compile_filter(text: str, command: str | None = None) -> Filter:
    """Parse and type-check ``text``; with ``command``, also check that its
    fields can be present there.  Raises FilterError."""
    if not isinstance(text, str):
        raise FilterError("a filter must be text", "", 0)
    p = _Parser(text)
    node = p.parse()
    flt = Filter(text, node, p.used)
    if command is not None:
        flt.check(command)
    return flt


# ------------------------------------------------------------ fastdicom fields
def _where(f):
    return ",".join(f.contexts)


def render_fields(fmt: str = "text", word: str | None = None) -> str:
    """The field registry as a plain-text table or JSON."""
    rows = [f for f in FIELDS.values() if not word or word.lower() in f.name.lower()]
    if fmt == "json":
        return json.dumps([{"name": f.name, "type": f.type, "bits": f.bits or None,
                            "wireshark": f.wireshark, "available_in": list(f.contexts),
                            "description": f.description} for f in rows], indent=1) + "\n"
    if not rows:
        return ""
    wn = max(len("name"), *(len(f.name) for f in rows))
    wt = max(len("type"), *(len(f.type_text) for f in rows))
    ww = max(len("available in"), *(len(_where(f)) for f in rows))
    lines = [f"{'name':<{wn}}  {'type':<{wt}}  {'available in':<{ww}}  description"]
    for f in rows:
        mark = "" if f.wireshark else " [fastdicom]"
        lines.append(f"{f.name:<{wn}}  {f.type_text:<{wt}}  {_where(f):<{ww}}  {f.description}{mark}")
    return "\n".join(lines) + "\n"
