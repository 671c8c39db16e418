"""DIMSE (PS3.7): command sets, messages and operations.

A DIMSE message is a command set, optionally followed by a data set, each
carried as PDV fragments on one presentation context (PS3.8 Annex E).  The
message control header of each PDV says whether its fragment belongs to a
command (bit 0) and whether it is the last one (bit 1).  Command sets are
always implicit VR little endian (PS3.7 6.3.1)::

    element: group(2, LE) element(2, LE) length(4, LE) value

Assembly is per association, per direction, per context ID, so nothing from
one message or direction can leak into another.
"""

from __future__ import annotations

from . import status as st
from ._pytagwalk import command_elements
from ._record import field, record
from .core import command_values

# PS3.7 E.1-1 / E.2-1: command field values
COMMAND_FIELDS = {
    0x0001: "C-STORE-RQ", 0x8001: "C-STORE-RSP",
    0x0010: "C-GET-RQ", 0x8010: "C-GET-RSP",
    0x0020: "C-FIND-RQ", 0x8020: "C-FIND-RSP",
    0x0021: "C-MOVE-RQ", 0x8021: "C-MOVE-RSP",
    0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP",
    0x0100: "N-EVENT-REPORT-RQ", 0x8100: "N-EVENT-REPORT-RSP",
    0x0110: "N-GET-RQ", 0x8110: "N-GET-RSP",
    0x0120: "N-SET-RQ", 0x8120: "N-SET-RSP",
    0x0130: "N-ACTION-RQ", 0x8130: "N-ACTION-RSP",
    0x0140: "N-CREATE-RQ", 0x8140: "N-CREATE-RSP",
    0x0150: "N-DELETE-RQ", 0x8150: "N-DELETE-RSP",
    0x0FFF: "C-CANCEL-RQ",
}

NO_DATA_SET = 0x0101  # (0000,0800) Command Data Set Type: no data set present

PRIORITIES = {0x0000: "MEDIUM", 0x0001: "HIGH", 0x0002: "LOW"}

# (0000,eeee) elements: attribute name, and how to read the value
_US, _UL, _UI, _AE, _LO, _AT, _SH = "US", "UL", "UI", "AE", "LO", "AT", "SH"
COMMAND_ELEMENTS = {
    0x0000: ("group_length", _UL), 0x0002: ("affected_sop_class_uid", _UI),
    0x0003: ("requested_sop_class_uid", _UI), 0x0100: ("command_field", _US),
    0x0110: ("message_id", _US), 0x0120: ("message_id_being_responded_to", _US),
    0x0600: ("move_destination", _AE), 0x0700: ("priority", _US),
    0x0800: ("command_data_set_type", _US), 0x0900: ("status", _US),
    0x0901: ("offending_element", _AT), 0x0902: ("error_comment", _LO),
    0x0903: ("error_id", _US), 0x1000: ("affected_sop_instance_uid", _UI),
    0x1001: ("requested_sop_instance_uid", _UI), 0x1002: ("event_type_id", _US),
    0x1005: ("attribute_identifier_list", _AT), 0x1008: ("action_type_id", _US),
    0x1020: ("remaining", _US), 0x1021: ("completed", _US), 0x1022: ("failed", _US),
    0x1023: ("warning", _US), 0x1030: ("move_originator_ae", _AE),
    0x1031: ("move_originator_message_id", _US),
}


def command_name(field_value: int | None) -> str:
    if field_value is None:
        return "Command"
    name = COMMAND_FIELDS.get(field_value)
    return name if name is not None else f"Command 0x{field_value:04x}"


def service_of(field_value: int | None) -> str:
    """"C-STORE" for C-STORE-RQ/-RSP; C-CANCEL for C-CANCEL-RQ."""
    service = _SERVICES.get(field_value)
    if service is None:
        service = command_name(field_value)
        for suffix in ("-RQ", "-RSP"):
            if service.endswith(suffix):
                service = service[: -len(suffix)]
                break
        if len(_SERVICES) < 1024:  # (every 16-bit field could be asked for)
            _SERVICES[field_value] = service
    return service


_SERVICES: dict = {}  # command field -> service_of() it (two per message)


@record(slots=True)
class Command:
    """A decoded command set (PS3.7 9.3, 10.3)."""

    elements: dict = field(default_factory=dict)  # attribute name -> value
    problems: list = field(default_factory=list)
    # where it was seen (set by the decoder)
    context_id: int | None = None
    direction: int | None = None
    time: int | None = None
    frame: int | None = None
    operation: object = None
    association: object = None
    raw_bytes: bytes | None = None  # the command set as it crossed the wire

    def get(self, name, default=None):
        return self.elements.get(name, default)

    @property
    def raw(self) -> dict:
        """{element number: value bytes}: the known elements and the first
        ``MAX_RAW_ELEMENTS`` others, read again from ``raw_bytes`` (a command
        is kept for the whole run, so it keeps its bytes once, not twice)."""
        out: dict = {}
        b = self.raw_bytes or b""
        for elem, vo, ln in command_elements(b)[0]:
            if elem in COMMAND_ELEMENTS or len(out) < MAX_RAW_ELEMENTS:
                out[elem] = b[vo:vo + ln]
        return out

    @property
    def field(self) -> int | None:
        return self.elements.get("command_field")

    @property
    def name(self) -> str:
        return command_name(self.field)

    @property
    def service(self) -> str:
        return service_of(self.field)

    @property
    def is_response(self) -> bool:
        f = self.field
        return f is not None and bool(f & 0x8000)

    @property
    def is_cancel(self) -> bool:
        return self.field == 0x0FFF

    @property
    def has_data_set(self) -> bool:
        t = self.elements.get("command_data_set_type")
        return t is not None and t != NO_DATA_SET

    @property
    def message_id(self) -> int | None:
        return self.elements.get("message_id")

    @property
    def responded_id(self) -> int | None:
        return self.elements.get("message_id_being_responded_to")

    @property
    def status(self) -> int | None:
        return self.elements.get("status")


MAX_RAW_ELEMENTS = 64  # elements of a command set kept raw beyond the known ones
MAX_KEPT_COMMAND = 64 << 10  # a command set kept whole (raw_bytes) up to this size


def parse_command(buf) -> Command:
    """Decode a command set; problems are collected, never raised."""
    cmd = Command()
    b = bytes(buf)
    n = len(b)
    if n <= MAX_KEPT_COMMAND:  # real ones are a few hundred bytes
        cmd.raw_bytes = b
    # the element walk and values in the core (a binary value of the wrong
    # size is reported; its first value is still used)
    cmd.elements, bad, p, stop = command_values(b, COMMAND_ELEMENTS)
    for elem, ln in bad:
        cmd.problems.append(("dicom.command.malformed", {"why": f"(0000,{elem:04x}) has {ln} bytes"}))
    if stop is not None:
        cmd.problems.append(stop)
    gl = cmd.elements.get("group_length")
    if gl is not None and p == n and b[:4] == b"\x00\x00\x00\x00":
        # (0000,0000) counts the bytes of the elements after it (PS3.7 6.3.1)
        rest = n - 8 - int.from_bytes(b[4:8], "little")
        if gl != rest:
            cmd.problems.append(("dicom.command.malformed", {
                "why": f"Command Group Length (0000,0000) is {gl}, the elements after it take {rest} bytes"}))
    if "command_field" not in cmd.elements:
        cmd.problems.append(("dicom.command.malformed", {"why": "no Command Field (0000,0100)"}))
    elif cmd.field not in COMMAND_FIELDS:
        cmd.problems.append(("dicom.command.unknown", {"field": cmd.field}))
    return cmd


@record(eq=False)
class DataSetTransfer:
    """One data set as it crossed the wire: its bytes may stream to sinks,
    only its head is kept (``head_limit``)."""

    association: object
    direction: int  # 0: client to server
    context_id: int
    transfer_syntax: str | None
    command: Command | None
    frame_first: int
    time_first: int
    frame_last: int = 0
    time_last: int = 0
    length: int = 0  # message bytes so far, holes included
    # its first bytes: the first piece as it came (bytes), a bytearray once
    # more pieces are added to it
    head: bytes | bytearray = b""
    missing: list = field(default_factory=list)  # [start, end) holes, end -1: unknown
    started_midway: bool = False
    ended: bool = False
    last_seen: bool = False  # the PDV with the last-fragment bit completed
    incomplete_reasons: list = field(default_factory=list)
    hasher: object = None
    sink_state: dict = field(default_factory=dict)  # per-sink scratch (e.g. export file)
    index: int = 0  # order of appearance in the capture
    # (frame whose processing released its first bytes, latest frame of its
    # connection then): sorting by it, then by index, gives the order of
    # appearance of transfers decoded by several workers (see batch.merge)
    release: tuple = (0, 0)
    operation: object = None
    sop_class_uid: str | None = None  # from the command, else from the data set
    sop_instance_uid: str | None = None

    @property
    def complete(self) -> bool:
        return self.last_seen and not self.missing and not self.started_midway and not self.incomplete_reasons

    @property
    def sha256(self) -> str | None:
        return self.hasher.hexdigest() if self.hasher is not None and self.complete else None

    def mark(self, why: str):
        if why not in self.incomplete_reasons:
            self.incomplete_reasons.append(why)


@record(eq=False, slots=True)
class Operation:
    """A DIMSE operation: a request and its responses (matched by message ID)."""

    association: object
    command: str  # service, e.g. "C-STORE"
    message_id: int | None
    context_id: int
    direction: int  # of the request; 0: the association requestor invoked it
    request: Command | None = None
    affected_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    move_destination: str | None = None
    priority: int | None = None
    request_time: int | None = None
    request_end_time: int | None = None
    request_frame: int | None = None
    first_response_time: int | None = None
    first_response_start: int | None = None
    response_time: int | None = None
    response_frame: int | None = None
    status: int | None = None
    error_comment: str | None = None
    pending_responses: int = 0
    dataset_bytes: int = 0  # request data set
    response_dataset_bytes: int = 0
    command_bytes: int = 0
    counters: dict = field(default_factory=dict)  # remaining/completed/failed/warning (last seen)
    cancel_time: int | None = None
    request_dataset: DataSetTransfer | None = None
    response_datasets: list = field(default_factory=list)
    final: Command | None = None
    final_waits_data: bool = False  # final response announced a data set still to come
    index: int = 0

    @property
    def status_class(self) -> str | None:
        return None if self.status is None else st.status_class(self.status)

    @property
    def status_text(self) -> str | None:
        return None if self.status is None else st.status_text(self.command, self.status)

    @property
    def latency(self) -> float | None:
        if self.request_time is None or self.response_time is None:
            return None
        return (self.response_time - self.request_time) / 1e9


class _CtxState:
    """Assembly state of one presentation context in one direction."""

    __slots__ = ("cmd_buf", "cmd_frame", "cmd_time", "cmd_bad", "pdv_end", "pdv_pos",
                 "pdv_mch", "transfer", "last_command", "awaiting_data", "data_lost")

    def __init__(self):
        self.cmd_buf = None  # bytearray while a command set is being assembled
        self.cmd_frame = 0
        self.cmd_time = 0
        self.cmd_bad = False
        self.pdv_end = -1  # value length of the PDV in progress (-1: none open)
        self.pdv_pos = 0
        self.pdv_mch = 0
        self.transfer = None  # DataSetTransfer in progress
        self.last_command = None  # the command a following data set belongs to
        self.awaiting_data = False
        # why the data set still awaited may have lost its start (bytes were lost
        # after its command), or None
        self.data_lost = None


class MessageAssembler:
    """Turns the PDV pieces of one direction of one association into command
    sets and data set transfers, per presentation context (PS3.8 E.2).

    ``handler`` receives ``command(assembler, ctx, cmd, nbytes, frame0, time0,
    frame1, time1)``, ``transfer_start(transfer)``, ``data(transfer, offset,
    bytes)``, ``transfer_end(transfer)``, ``missing_data(assembler, ctx,
    cmd, frame, time)`` (``cmd`` announced a data set, but the next command on
    its context, or the end, came first) and ``interleaved(assembler, ctx,
    other, frame, time)`` (a PDV on ``ctx`` while the message on ``other`` is
    half sent: a message's fragments go out before any other message's,
    PS3.8 Annex E; once per direction).  Holes in a PDV (lost by the tap)
    are recorded in ``transfer.missing``; nothing is ever spliced over them.
    """

    MAX_COMMAND = 1 << 20

    def __init__(self, association, direction: int, handler, head_limit: int = 65536,
                 hash_data: bool = True):
        self.association = association
        self.direction = direction
        self.handler = handler
        self.head_limit = head_limit
        self.hash_data = hash_data
        self.ctx = {}
        self.last_ctx = None  # context of the previous PDV
        self.interleaving_seen = False

    def piece(self, ctx_id, mch, pdv_len, offset, length, data, frame, time):
        if ctx_id != self.last_ctx:
            if self.last_ctx is not None and not self.interleaving_seen and self._half_sent(self.last_ctx):
                self.interleaving_seen = True
                self.handler.interleaved(self, ctx_id, self.last_ctx, frame, time)
            self.last_ctx = ctx_id
        s = self.ctx.get(ctx_id)
        if s is None:
            s = self.ctx[ctx_id] = _CtxState()
        vlen = pdv_len - 2
        is_cmd = mch & 1
        if offset == 0 or s.pdv_end < 0:
            if s.pdv_end >= 0 and s.pdv_pos < s.pdv_end:
                # a new PDV while the previous one never reached its end
                self._pdv_cut(s, "a PDV fragment lost its tail")
            s.pdv_end = vlen
            s.pdv_pos = 0
            s.pdv_mch = mch
            if offset and not is_cmd:
                # a PDV whose start the tap lost while the framer kept the PDU
                # boundaries: what it held before ``offset`` is a hole (below),
                # in the transfer it belongs to
                self._data_piece(s, ctx_id, b"", 0, frame, time)
        elif offset < s.pdv_pos:
            return
        lost_start = offset > s.pdv_pos
        if lost_start:
            self._hole(s, is_cmd, s.pdv_pos, offset)
            s.pdv_pos = offset
        if is_cmd:
            self._command_piece(s, ctx_id, data, length, frame, time)
            if lost_start:
                s.cmd_bad = True
        else:
            self._data_piece(s, ctx_id, data, length, frame, time)
        s.pdv_pos = offset + length
        if s.pdv_pos >= s.pdv_end:
            s.pdv_end = -1
            if mch & 2:
                if is_cmd:
                    self._command_done(s, ctx_id, frame, time)
                else:
                    self._transfer_done(s, True)

    def _half_sent(self, ctx_id) -> bool:
        """A message on this context has begun and not ended (damage aside)."""
        o = self.ctx[ctx_id]
        if o.cmd_buf is not None:
            return not o.cmd_bad
        t = o.transfer
        return t is not None and not t.ended and not t.incomplete_reasons and not t.missing

    # commands ---------------------------------------------------------------
    def _command_piece(self, s, ctx_id, data, length, frame, time):
        if s.transfer is not None and not s.transfer.ended:
            s.transfer.mark("the next command arrived before its last fragment")
            self._transfer_done(s, False)
        if s.cmd_buf is None:
            if s.awaiting_data:
                s.awaiting_data = False
                self.handler.missing_data(self, ctx_id, s.last_command, frame, time)
            s.data_lost = None
            s.cmd_buf = bytearray()
            s.cmd_frame = frame
            s.cmd_time = time
            s.cmd_bad = False
        if len(data) < length:
            s.cmd_bad = True
        if len(s.cmd_buf) < self.MAX_COMMAND:
            s.cmd_buf += data

    def _command_done(self, s, ctx_id, frame, time):
        buf = s.cmd_buf if s.cmd_buf is not None else bytearray()
        bad = s.cmd_bad
        s.cmd_buf = None
        cmd = parse_command(buf)
        if cmd.raw_bytes is None:
            cmd.problems.append(("dicom.command.malformed", {
                "why": f"a command set of {len(buf)} bytes (not kept whole past {MAX_KEPT_COMMAND})"}))
        if bad:
            cmd.problems.append(("dicom.object.incomplete",
                                 {"what": f"{cmd.name} command set", "why": "bytes were lost by the tap"}))
        s.last_command = cmd
        s.awaiting_data = cmd.has_data_set
        self.handler.command(self, ctx_id, cmd, len(buf), s.cmd_frame, s.cmd_time, frame, time)

    # data sets --------------------------------------------------------------
    def _data_piece(self, s, ctx_id, data, length, frame, time):
        if s.cmd_buf is not None:
            # data before the command's last fragment: that command is broken
            s.cmd_buf = None
        t = s.transfer
        if t is None or t.ended:
            cmd = s.last_command if s.awaiting_data else None
            t = DataSetTransfer(self.association, self.direction, ctx_id,
                                self.handler.transfer_syntax(self.association, ctx_id),
                                cmd, frame, time)
            # no announcing command (capture started inside this data set, or a
            # protocol error) or a lost start: it can never be shown whole
            t.started_midway = cmd is None or s.pdv_pos > 0
            if cmd is not None and s.data_lost:
                # its first PDVs may have been in the bytes lost after the command
                t.mark(s.data_lost)
            s.data_lost = None
            if self.hash_data:
                t.hasher = new_hasher()
            s.transfer = t
            s.awaiting_data = False
            self.handler.transfer_start(t)
        n = len(data)
        if n:
            head = t.head
            room = self.head_limit - len(head)
            if room > 0:
                piece = data if n <= room else data[:room]
                if not head:
                    t.head = piece  # no copy: most heads are one piece (the summary's, cut short)
                else:
                    if type(head) is not bytearray:
                        head = t.head = bytearray(head)
                    head += piece
            if t.hasher is not None:
                t.hasher.update(data)
            self.handler.data(t, t.length, data)
        if n < length:
            # the engine kept only the head of this data set (summary mode)
            t.hasher = None
        t.length += length
        t.frame_last = frame
        t.time_last = time

    def _transfer_done(self, s, last_seen):
        t = s.transfer
        if t is None or t.ended:
            return
        t.ended = True
        t.last_seen = last_seen
        self.handler.transfer_end(t)

    # damage ---------------------------------------------------------------
    def _hole(self, s, is_cmd, start, end):
        if is_cmd:
            s.cmd_bad = True
        elif s.transfer is not None and not s.transfer.ended:
            t = s.transfer
            t.missing.append((t.length, t.length + (end - start)))
            t.length += end - start
            t.hasher = None

    def _pdv_cut(self, s, why):
        if s.pdv_mch & 1:
            s.cmd_bad = True
        elif s.transfer is not None and not s.transfer.ended:
            lost = s.pdv_end - s.pdv_pos
            t = s.transfer
            t.missing.append((t.length, t.length + lost))
            t.length += lost
            t.hasher = None
            t.mark(why)
        s.pdv_end = -1

    def damage(self, why: str):
        """Something was lost in this direction where we cannot tell which
        message it belonged to: every message in progress is suspect."""
        for s in self.ctx.values():
            if s.cmd_buf is not None:
                s.cmd_bad = True
            if s.transfer is not None and not s.transfer.ended:
                s.transfer.mark(why)
                s.transfer.hasher = None
            elif s.awaiting_data:
                s.data_lost = why

    def close(self, why: str, frame=None, time=None):
        """The association or connection ended: end whatever is still open."""
        for ctx_id, s in self.ctx.items():
            if s.pdv_end >= 0 and s.pdv_pos < s.pdv_end:
                self._pdv_cut(s, why)
            s.cmd_buf = None
            if s.transfer is not None and not s.transfer.ended:
                s.transfer.mark(why)
                self._transfer_done(s, False)
            if s.awaiting_data:
                s.awaiting_data = False
                self.handler.missing_data(self, ctx_id, s.last_command, frame, time)


def new_hasher():
    import hashlib  # only with --hash and for exports: not at start-up

    return hashlib.sha256()
