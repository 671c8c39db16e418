"""Association PDUs and their items, decoded from the bodies the core hands out.

PS3.8 9.3 and Annex D; PS3.7 Annex D.3.3 for the user information sub-items.
Offsets below are into the PDU *body* (after the 6-byte PDU header), Python
indexing.  Decoding never raises: problems are collected as
``(expert_id, kwargs)`` pairs in ``.problems`` for the caller to report.

A-ASSOCIATE-RQ / -AC body (PS3.8 9.3.2, 9.3.3)::

    [0:2]   protocol version (bit 0 set: version 1)
    [2:4]   reserved
    [4:20]  called AE title   (RQ: the acceptor; AC: reserved, echoes the RQ)
    [20:36] calling AE title
    [36:68] reserved
    [68:]   variable items: type(1) reserved(1) length(2, BE) value

Presentation context item, RQ (0x20) / AC (0x21)::

    [0] context ID  [1] reserved  [2] reserved (AC: result/reason)  [3] reserved
    [4:] sub-items: abstract syntax (0x30, RQ only), transfer syntax (0x40)
"""

from __future__ import annotations

from ._record import field, record

DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

ITEM_APPLICATION_CONTEXT = 0x10
ITEM_PRESENTATION_CONTEXT_RQ = 0x20
ITEM_PRESENTATION_CONTEXT_AC = 0x21
ITEM_ABSTRACT_SYNTAX = 0x30
ITEM_TRANSFER_SYNTAX = 0x40
ITEM_USER_INFORMATION = 0x50
SUB_MAXIMUM_LENGTH = 0x51
SUB_IMPLEMENTATION_CLASS_UID = 0x52
SUB_ASYNC_OPERATIONS_WINDOW = 0x53
SUB_ROLE_SELECTION = 0x54
SUB_IMPLEMENTATION_VERSION_NAME = 0x55
SUB_SOP_CLASS_EXTENDED = 0x56
SUB_SOP_CLASS_COMMON_EXTENDED = 0x57
SUB_USER_IDENTITY_RQ = 0x58
SUB_USER_IDENTITY_AC = 0x59

ITEM_NAMES = {
    0x10: "Application Context", 0x20: "Presentation Context",
    0x21: "Presentation Context Reply", 0x30: "Abstract Syntax", 0x40: "Transfer Syntax",
    0x50: "User Information", 0x51: "Maximum Length", 0x52: "Implementation Class UID",
    0x53: "Asynchronous Operations Window", 0x54: "SCP/SCU Role Selection",
    0x55: "Implementation Version Name", 0x56: "SOP Class Extended Negotiation",
    0x57: "SOP Class Common Extended Negotiation", 0x58: "User Identity",
    0x59: "User Identity Server Response",
}

# PS3.8 Table 9-18: presentation context result/reason
PCTX_RESULTS = {
    0: "acceptance", 1: "user-rejection", 2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}

# PS3.8 Table 9-21: A-ASSOCIATE-RJ
RJ_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
RJ_SOURCES = {
    1: "DICOM UL service-user",
    2: "DICOM UL service-provider (ACSE related function)",
    3: "DICOM UL service-provider (Presentation related function)",
}
RJ_REASONS = {
    1: {1: "no-reason-given", 2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized", 7: "called-AE-title-not-recognized"},
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {1: "temporary-congestion", 2: "local-limit-exceeded"},
}

# PS3.8 Table 9-26: A-ABORT
ABORT_SOURCES = {
    0: "DICOM UL service-user (initiated abort)",
    1: "reserved",
    2: "DICOM UL service-provider (initiated abort)",
}
ABORT_REASONS = {
    0: "reason-not-specified", 1: "unrecognized-PDU", 2: "unexpected-PDU",
    4: "unrecognized-PDU parameter", 5: "unexpected-PDU parameter",
    6: "invalid-PDU-parameter value",
}

USER_IDENTITY_TYPES = {
    1: "Username", 2: "Username and passcode", 3: "Kerberos Service ticket",
    4: "SAML Assertion", 5: "JSON Web Token (JWT)",
}


def _u16(b, p):
    return (b[p] << 8) | b[p + 1]


def _u32(b, p):
    return int.from_bytes(b[p:p + 4], "big")


def uid_text(raw: bytes) -> str:
    """A UID from an item value: ASCII, trailing NUL/space padding removed."""
    return raw.decode("ascii", "replace").rstrip("\x00 ")


def ae_text(raw: bytes) -> str:
    """An AE title field with its insignificant leading/trailing spaces removed."""
    return raw.decode("ascii", "replace").strip(" \x00")


def ae_problem(raw: bytes) -> str | None:
    """Why an AE title field is unusual (PS3.5 AE: 16 chars, no backslash or
    control characters, spaces insignificant), or None."""
    text = raw.decode("latin-1")
    if not text.strip(" \x00"):
        return "is empty"
    if "\x00" in text:
        return "is padded with NUL characters instead of spaces"
    if text.startswith(" "):
        return "has leading spaces"
    if raw.translate(None, _AE_CHARACTERS):  # what is left is not allowed
        return "contains characters not allowed in an AE title"
    return None


# the characters of an AE title (PS3.5 6.2): printable ASCII but the backslash
_AE_CHARACTERS = bytes(c for c in range(0x20, 0x7F) if c != 0x5C)


@record
class PresentationContextRQ:
    id: int
    abstract_syntax: str | None
    transfer_syntaxes: list[str] = field(default_factory=list)


@record
class PresentationContextAC:
    id: int
    result: int
    transfer_syntax: str | None

    @property
    def result_text(self) -> str:
        return PCTX_RESULTS.get(self.result, f"reserved ({self.result})")


@record
class RoleSelection:
    sop_class_uid: str
    scu_role: int
    scp_role: int


# Query/Retrieve service class application information (PS3.4 C.5.1.1.1,
# C.5.2.1.1, C.5.3.1.1): the meaning of each byte, for the SOP classes whose
# extended negotiation Wireshark also decodes
_QR_FIND_OPTIONS = ("relational_queries", "combined_date_time_matching",
                    "fuzzy_semantic_matching_of_person_names", "timezone_query_adjustment")
_QR_RETRIEVE_OPTIONS = ("relational_retrieval",)
QR_EXTENDED_NEGOTIATION = {
    **{f"1.2.840.10008.5.1.4.1.2.{m}.1": _QR_FIND_OPTIONS for m in (1, 2, 3)},
    **{f"1.2.840.10008.5.1.4.1.2.{m}.{k}": _QR_RETRIEVE_OPTIONS for m in (1, 2, 3) for k in (2, 3)},
}


@record
class ExtendedNegotiation:
    sop_class_uid: str
    application_info: bytes

    @property
    def options(self) -> dict | None:
        """The Query/Retrieve options the application information bytes set
        (1: supported, 0: not), or None for other SOP classes."""
        names = QR_EXTENDED_NEGOTIATION.get(self.sop_class_uid)
        if names is None:
            return None
        return {n: v for n, v in zip(names, self.application_info)}


@record
class CommonExtendedNegotiation:
    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: list[str]


@record
class UserIdentityRQ:
    type: int
    positive_response_requested: int
    primary_field: bytes
    secondary_field: bytes

    @property
    def type_text(self) -> str:
        return USER_IDENTITY_TYPES.get(self.type, f"type {self.type}")


@record
class UserInformation:
    maximum_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_ops_invoked: int | None = None
    async_ops_performed: int | None = None
    role_selections: list[RoleSelection] = field(default_factory=list)
    extended_negotiations: list[ExtendedNegotiation] = field(default_factory=list)
    common_extended_negotiations: list[CommonExtendedNegotiation] = field(default_factory=list)
    user_identity: UserIdentityRQ | None = None
    user_identity_response: bytes | None = None
    unknown: list[tuple[int, bytes]] = field(default_factory=list)

    def to_json(self, redact=False) -> dict:
        d = {
            "maximum_length": self.maximum_length,
            "implementation_class_uid": self.implementation_class_uid,
            "implementation_version_name": self.implementation_version_name,
        }
        if self.async_ops_invoked is not None:
            d["async_operations_window"] = {
                "invoked": self.async_ops_invoked, "performed": self.async_ops_performed}
        if self.role_selections:
            d["role_selections"] = [
                {"sop_class_uid": r.sop_class_uid, "scu_role": r.scu_role, "scp_role": r.scp_role}
                for r in self.role_selections]
        if self.extended_negotiations:
            d["extended_negotiations"] = []
            for e in self.extended_negotiations:
                x = {"sop_class_uid": e.sop_class_uid, "application_info": e.application_info.hex()}
                if e.options is not None:
                    x["options"] = e.options
                d["extended_negotiations"].append(x)
        if self.common_extended_negotiations:
            d["common_extended_negotiations"] = [
                {"sop_class_uid": c.sop_class_uid, "service_class_uid": c.service_class_uid,
                 "related_general_sop_classes": c.related_general_sop_classes}
                for c in self.common_extended_negotiations]
        if self.user_identity is not None:
            u = self.user_identity
            # only a user name is shown; a Kerberos ticket, SAML assertion or
            # JWT is a credential like the passcode: only its length is
            if u.type not in (1, 2):
                primary = None
            elif redact:
                primary = "<redacted>"
            else:
                primary = u.primary_field.decode("utf-8", "replace")
            d["user_identity"] = {
                "type": u.type, "type_text": u.type_text,
                "positive_response_requested": bool(u.positive_response_requested),
                "primary_field": primary,
                "primary_field_length": len(u.primary_field),
                "secondary_field_length": len(u.secondary_field),
            }
        if self.user_identity_response is not None:
            d["user_identity_response_length"] = len(self.user_identity_response)
        if self.unknown:
            d["unknown_items"] = [{"type": t, "data": v.hex()} for t, v in self.unknown]
        return d


@record
class AAssociate:
    """A-ASSOCIATE-RQ (``is_request``) or -AC."""

    is_request: bool
    protocol_version: int
    called_ae_raw: bytes
    calling_ae_raw: bytes
    application_context: str | None = None
    contexts_rq: list[PresentationContextRQ] = field(default_factory=list)
    contexts_ac: list[PresentationContextAC] = field(default_factory=list)
    user_info: UserInformation = field(default_factory=UserInformation)
    unknown_items: list[tuple[int, bytes]] = field(default_factory=list)
    problems: list = field(default_factory=list)

    @property
    def called_ae(self) -> str:
        return ae_text(self.called_ae_raw)

    @property
    def calling_ae(self) -> str:
        return ae_text(self.calling_ae_raw)


@record
class AAssociateRJ:
    result: int
    source: int
    reason: int
    problems: list = field(default_factory=list)

    @property
    def result_text(self) -> str:
        return RJ_RESULTS.get(self.result, f"reserved ({self.result})")

    @property
    def source_text(self) -> str:
        return RJ_SOURCES.get(self.source, f"reserved ({self.source})")

    @property
    def reason_text(self) -> str:
        return RJ_REASONS.get(self.source, {}).get(self.reason, f"reserved ({self.reason})")

    def to_json(self) -> dict:
        return {"result": self.result, "result_text": self.result_text,
                "source": self.source, "source_text": self.source_text,
                "reason": self.reason, "reason_text": self.reason_text}


@record
class AAbort:
    source: int
    reason: int
    problems: list = field(default_factory=list)

    @property
    def source_text(self) -> str:
        return ABORT_SOURCES.get(self.source, f"reserved ({self.source})")

    @property
    def reason_text(self) -> str:
        if self.source != 2:
            return "not significant (service-user abort)" if self.source == 0 else "reserved"
        return ABORT_REASONS.get(self.reason, f"reserved ({self.reason})")

    @property
    def by(self) -> str:
        return {0: "service-user", 2: "service-provider"}.get(self.source, "reserved source")

    def to_json(self) -> dict:
        return {"source": self.source, "source_text": self.source_text,
                "reason": self.reason, "reason_text": self.reason_text}


def _items(b: bytes, start: int, end: int, where: str, problems: list, cut_ok: bool = False):
    """Yield (type, value_start, value_end, cut) of the items in b[start:end].

    ``cut`` is True for an item that runs past ``end``: what is there is
    yielded, and flagged, unless ``cut_ok`` (the region ends where the
    capture cut the PDU, so a cut item is expected, not malformed)."""
    p = start
    while p < end:
        if end - p < 4:
            if not cut_ok:
                problems.append(("dicom.assoc.pdu.malformed",
                                 {"pdu": where, "why": f"{end - p} stray bytes after the last item"}))
            return
        t = b[p]
        ln = _u16(b, p + 2)
        if p + 4 + ln > end:
            if not cut_ok:
                problems.append(("dicom.assoc.item.len.invalid", {"type": t, "length": ln, "room": end - p - 4}))
            yield t, p + 4, end, True  # decode what is there
            return
        yield t, p + 4, p + 4 + ln, False
        p += 4 + ln


def decode_associate(body: bytes, is_request: bool, truncated: bool = False) -> AAssociate:
    """Decode an A-ASSOCIATE-RQ/AC body (see the module docstring).

    ``truncated``: the capture cut the PDU (the core says so): the items it
    cut are not reported as malformed, and a value cut short (a UID) is not
    kept, since its end is unknown; what came whole is decoded."""
    name = "A-ASSOCIATE-RQ" if is_request else "A-ASSOCIATE-AC"
    problems: list = []
    if len(body) < 68:
        a = AAssociate(is_request, _u16(body, 0) if len(body) >= 2 else 0,
                       bytes(body[4:20]).ljust(16), bytes(body[20:36]).ljust(16), problems=problems)
        if not truncated:
            problems.append(("dicom.assoc.pdu.malformed",
                             {"pdu": name, "why": f"{len(body)} bytes, shorter than the 68-byte fixed part"}))
        return a
    a = AAssociate(is_request, _u16(body, 0), bytes(body[4:20]), bytes(body[20:36]), problems=problems)
    if not a.protocol_version & 1:
        problems.append(("dicom.assoc.version", {"version": a.protocol_version}))
    n_actx = 0
    for t, s, e, cut in _items(body, 68, len(body), name, problems, truncated):
        lost = cut and truncated  # this item was cut by the capture
        if e == s and t in (0x10, 0x20, 0x21, 0x50):
            if not lost:
                problems.append(("dicom.assoc.item.len.invalid", {"type": t, "length": 0, "room": len(body) - s}))
            continue
        if t == ITEM_APPLICATION_CONTEXT:
            if not lost:
                a.application_context = uid_text(body[s:e])
                n_actx += 1
        elif t == ITEM_PRESENTATION_CONTEXT_RQ and is_request:
            if len(a.contexts_rq) > MAX_CONTEXTS:  # counted, not decoded (see _bound)
                a.contexts_rq.append(None)
            elif not (lost and e - s < 4):  # a context whose header the capture cut is dropped
                a.contexts_rq.append(_decode_pctx_rq(body, s, e, problems, lost))
        elif t == ITEM_PRESENTATION_CONTEXT_AC and not is_request:
            if len(a.contexts_ac) > MAX_CONTEXTS:
                a.contexts_ac.append(None)
            elif not (lost and e - s < 4):
                a.contexts_ac.append(_decode_pctx_ac(body, s, e, problems, lost))
        elif t == ITEM_USER_INFORMATION:
            _decode_user_info(body, s, e, a.user_info, problems, lost)
        elif not lost:
            a.unknown_items.append((t, bytes(body[s:min(e, s + MAX_RAW)])))
            problems.append(("dicom.assoc.item.unknown", {"where": name, "type": t, "length": e - s}))
    if n_actx == 0 and not truncated:
        problems.append(("dicom.assoc.pdu.malformed", {"pdu": name, "why": "no application context item"}))
    _bound(a, name, problems)
    return a


# What one A-ASSOCIATE keeps, whatever its 1 MiB may hold: an association keeps
# its decoded RQ and AC for the whole run, so a hostile PDU of tiny items must
# not turn into hundreds of thousands of objects (PS3.8 allows 128 contexts)
MAX_CONTEXTS = 256  # presentation context items (one-byte IDs)
MAX_TRANSFER_SYNTAXES = 64  # per presentation context
MAX_SUB_ITEMS = 256  # role selections, extended negotiations, related classes
MAX_UNKNOWN = 16  # unknown items kept raw, each cut to MAX_RAW bytes
MAX_RAW = 1024
MAX_PROBLEMS = 64  # problems reported for one PDU


def _bound(a: AAssociate, name: str, problems: list) -> None:
    cut = []

    def keep(lst, limit, what):
        if len(lst) > limit:
            cut.append(f"{len(lst) - limit} {what}")
            del lst[limit:]

    keep(a.contexts_rq, MAX_CONTEXTS, "presentation context items")
    keep(a.contexts_ac, MAX_CONTEXTS, "presentation context reply items")
    for pc in a.contexts_rq:
        keep(pc.transfer_syntaxes, MAX_TRANSFER_SYNTAXES, f"transfer syntaxes of context {pc.id}")
    ui = a.user_info
    keep(ui.role_selections, MAX_SUB_ITEMS, "role selection sub-items")
    keep(ui.extended_negotiations, MAX_SUB_ITEMS, "extended negotiation sub-items")
    keep(ui.common_extended_negotiations, MAX_SUB_ITEMS, "common extended negotiation sub-items")
    for c in ui.common_extended_negotiations:
        keep(c.related_general_sop_classes, MAX_SUB_ITEMS, "related general SOP classes")
    keep(a.unknown_items, MAX_UNKNOWN, "unknown items")
    keep(ui.unknown, MAX_UNKNOWN, "unknown user information sub-items")
    if len(problems) > MAX_PROBLEMS:
        extra = len(problems) - MAX_PROBLEMS
        del problems[MAX_PROBLEMS:]
        cut.append(f"{extra} more problems")
    if cut:
        problems.append(("dicom.assoc.pdu.malformed",
                         {"pdu": name, "why": "not kept: " + ", ".join(cut[:4])
                          + (f" and {len(cut) - 4} more" if len(cut) > 4 else "")}))


def _decode_pctx_rq(b, s, e, problems, lost=False) -> PresentationContextRQ:
    """``lost``: the capture cut this item; its missing parts are not reported."""
    if e - s < 4:
        problems.append(("dicom.assoc.item.len.invalid", {"type": 0x20, "length": e - s, "room": e - s}))
        return PresentationContextRQ(b[s] if e > s else 0, None)
    pc = PresentationContextRQ(b[s], None)
    n_abs = 0
    for t, vs, ve, cut in _items(b, s + 4, e, "presentation context", problems, lost):
        if cut and lost:
            break  # a UID cut short: its end is unknown
        if t == ITEM_ABSTRACT_SYNTAX:
            n_abs += 1
            if n_abs == 1:
                pc.abstract_syntax = uid_text(b[vs:ve]) or None
        elif t == ITEM_TRANSFER_SYNTAX:
            pc.transfer_syntaxes.append(uid_text(b[vs:ve]))
        else:
            problems.append(("dicom.assoc.item.unknown",
                             {"where": "presentation context", "type": t, "length": ve - vs}))
    if n_abs == 0:
        if not lost:
            problems.append(("dicom.no_abstract_syntax", {"id": pc.id}))
    elif n_abs > 1:
        problems.append(("dicom.multiple_abstract_syntax", {"id": pc.id}))
    elif pc.abstract_syntax is None:
        problems.append(("dicom.no_abstract_syntax_uid", {"id": pc.id}))
    if not pc.transfer_syntaxes and not lost:
        problems.append(("dicom.no_transfer_syntax", {"id": pc.id}))
    return pc


def _decode_pctx_ac(b, s, e, problems, lost=False) -> PresentationContextAC:
    """``lost``: the capture cut this item; its missing parts are not reported."""
    if e - s < 4:
        problems.append(("dicom.assoc.item.len.invalid", {"type": 0x21, "length": e - s, "room": e - s}))
        return PresentationContextAC(b[s] if e > s else 0, 2, None)
    pc = PresentationContextAC(b[s], b[s + 2], None)
    n_ts = 0
    for t, vs, ve, cut in _items(b, s + 4, e, "presentation context reply", problems, lost):
        if cut and lost:
            break
        if t == ITEM_TRANSFER_SYNTAX:
            n_ts += 1
            pc.transfer_syntax = uid_text(b[vs:ve]) or None
        else:
            problems.append(("dicom.assoc.item.unknown",
                             {"where": "presentation context reply", "type": t, "length": ve - vs}))
    if n_ts > 1:
        problems.append(("dicom.multiple_transfer_syntax", {"id": pc.id, "count": n_ts}))
    if pc.result == 0 and not pc.transfer_syntax and not lost:
        problems.append(("dicom.no_transfer_syntax", {"id": pc.id}))
    return pc


def _lv_uid(b, p, end):
    """A u16 length-prefixed UID at b[p]: (uid, next offset, whole).  ``uid``
    is None when not even the length fits; ``whole`` is False when the UID
    runs past ``end`` (what is there is returned)."""
    if p + 2 > end:
        return None, end, False
    ln = _u16(b, p)
    if p + 2 + ln > end:
        return uid_text(b[p + 2:end]), end, False
    return uid_text(b[p + 2:p + 2 + ln]), p + 2 + ln, True


def _decode_user_info(b, s, e, ui: UserInformation, problems, lost=False):
    """``lost``: the capture cut this item; the sub-item it cut is dropped."""
    for t, vs, ve, cut in _items(b, s, e, "user information", problems, lost):
        if cut and lost:
            break
        n = ve - vs
        short = False
        if t == SUB_MAXIMUM_LENGTH:
            if n >= 4:
                ui.maximum_length = _u32(b, vs)
            short = n != 4
        elif t == SUB_IMPLEMENTATION_CLASS_UID:
            ui.implementation_class_uid = uid_text(b[vs:ve])
        elif t == SUB_IMPLEMENTATION_VERSION_NAME:
            ui.implementation_version_name = bytes(b[vs:ve]).decode("ascii", "replace").rstrip("\x00 ")
        elif t == SUB_ASYNC_OPERATIONS_WINDOW:
            if n >= 4:
                ui.async_ops_invoked = _u16(b, vs)
                ui.async_ops_performed = _u16(b, vs + 2)
            short = n != 4
        elif t == SUB_ROLE_SELECTION:
            uid, q, whole = _lv_uid(b, vs, ve)
            if whole and q + 2 <= ve:
                ui.role_selections.append(RoleSelection(uid, b[q], b[q + 1]))
            short = not whole or q + 2 != ve
        elif t == SUB_SOP_CLASS_EXTENDED:
            uid, q, whole = _lv_uid(b, vs, ve)
            if uid is not None:
                ui.extended_negotiations.append(ExtendedNegotiation(uid, bytes(b[q:ve])))
            short = not whole
        elif t == SUB_SOP_CLASS_COMMON_EXTENDED:
            # PS3.7 D.3.3.6: SOP class UID, service class UID, then the
            # related general SOP class identification (length, then
            # length-prefixed UIDs), which ends the sub-item
            sop, q, whole_sop = _lv_uid(b, vs, ve)
            svc, q, whole_svc = _lv_uid(b, q, ve)
            related = []
            short = not (whole_sop and whole_svc)
            if q + 2 <= ve:
                rl = _u16(b, q)
                q += 2
                short = short or q + rl != ve
                rend = min(ve, q + rl)
                while q < rend:
                    r, q, whole = _lv_uid(b, q, rend)
                    if r is None or not whole:
                        short = True
                        break
                    related.append(r)
            else:
                short = True
            ui.common_extended_negotiations.append(CommonExtendedNegotiation(sop or "", svc or "", related))
        elif t == SUB_USER_IDENTITY_RQ:
            if n >= 4:
                ut, pos = b[vs], b[vs + 1]
                pl = _u16(b, vs + 2)
                prim = bytes(b[vs + 4:min(ve, vs + 4 + pl)])
                q = vs + 4 + pl
                sec = b""
                if q + 2 <= ve:
                    sl = _u16(b, q)
                    sec = bytes(b[q + 2:min(ve, q + 2 + sl)])
                    short = q + 2 + sl != ve
                else:
                    short = True
                ui.user_identity = UserIdentityRQ(ut, pos, prim, sec)
            else:
                short = True
        elif t == SUB_USER_IDENTITY_AC:
            if n >= 2:
                rl = _u16(b, vs)
                ui.user_identity_response = bytes(b[vs + 2:min(ve, vs + 2 + rl)])
            short = n < 2 or 2 + _u16(b, vs) != n
        else:
            ui.unknown.append((t, bytes(b[vs:min(ve, vs + MAX_RAW)])))
            problems.append(("dicom.assoc.item.unknown", {"where": "user information", "type": t, "length": n}))
        if short:
            problems.append(("dicom.assoc.pdu.malformed", {
                "pdu": "user information", "why": f"{ITEM_NAMES.get(t, hex(t))} sub-item of {n} bytes is malformed"}))


def decode_reject(body: bytes, truncated: bool = False) -> AAssociateRJ:
    """A-ASSOCIATE-RJ body: reserved(1) result(1) source(1) reason/diag.(1)."""
    if len(body) < 4:
        rj = AAssociateRJ(0, 0, 0)
        if not truncated:
            rj.problems.append(("dicom.assoc.pdu.malformed",
                                {"pdu": "A-ASSOCIATE-RJ", "why": f"{len(body)}-byte body"}))
        return rj
    return AAssociateRJ(body[1], body[2], body[3])


def decode_abort(body: bytes, truncated: bool = False) -> AAbort:
    """A-ABORT body: reserved(2) source(1) reason/diag.(1)."""
    if len(body) < 4:
        ab = AAbort(0, 0)
        if not truncated:
            ab.problems.append(("dicom.assoc.pdu.malformed", {"pdu": "A-ABORT", "why": f"{len(body)}-byte body"}))
        return ab
    return AAbort(body[2], body[3])
