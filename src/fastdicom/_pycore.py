"""Pure-Python twin of the Cython core (``_core.pyx``).

Same API, same events, same results; written for clarity, not speed.  Select it
with ``FASTDICOM_PURE_PYTHON=1``.  The differential tests feed both twins the
same bytes and compare every event.

Data flow (one way)::

    capture bytes --feed()--> records (pcap / pcapng)
        --> link, IP and TCP headers --> connection table (canonical 4-tuple)
        --> per direction: segment ordering (first copy wins, gaps declared)
        --> PDU framing (PS3.8 9.3) and PDV splitting --> events

Theory of operation of a direction's framer
-------------------------------------------
A direction is either *in sync* (it knows where the next PDU header starts) or
*searching*.  In sync it reads a 6-byte PDU header, then either buffers the
body (association PDUs, bounded) or walks the PDV items of a P-DATA-TF body,
handing their values out in pieces without ever holding a whole PDU.  An
implausible header, or a gap it cannot step over, sends it searching: it then
scans the following bytes for a position where a well-formed PDU begins (see
``check_candidate``).  A gap that falls inside one PDV value is stepped over:
lengths say where the next header is, and the hole is reported, never filled.
"""

from __future__ import annotations

import socket
from array import array
from collections import OrderedDict, deque

from ._pytagwalk import VR_CLASS, VRK_INVALID, VRK_SHORT, VRK_SQ
from .errors import CaptureFormatError
from .events import *  # noqa: F401,F403  (event kinds, flags, expert codes)
from .events import (
    ATTEMPT_NO_DATA, ATTEMPT_REFUSED, ATTEMPT_UNANSWERED, END_EOF, END_EVICTED,
    END_FIN, END_IDLE, END_REUSED, END_RST, EV_EXPERT, EV_FLOW, EV_FLOW_END,
    EV_GAP, EV_PDATA, EV_PDATA_RUN, EV_PDU, EV_TCP_ATTEMPT, PF_FINAL, PF_TRUNCATED,
    X_CAPTURE_DAMAGED, X_CAPTURE_TRUNCATED, X_COMMAND_TOO_LARGE,
    X_FLOW_TABLE_FULL, X_IP_FRAGMENT, X_LINKTYPE_UNSUPPORTED, X_MIDSTREAM,
    X_OOO_BUDGET, X_OOO_SEGMENTS, X_PDU_IN_GAP, X_PDU_INVALID,
    X_PDU_LENGTH_UNEXPECTED, X_PDU_OVER_MAX, X_PDU_TRUNCATED,
    X_PDV_CONTEXT_EVEN, X_PDV_FLAGS_INVALID, X_PDV_HEADER_CUT, X_PDV_OVERRUN,
    X_PDV_TOO_SMALL, X_RESYNC, X_TCP_OVERLAP_CONFLICT, X_TCP_SEQ_JUMP,
    X_UNSYNCED_BYTES,
)

IMPLEMENTATION = "python"

DEFAULT_PORTS = (104, 11112)

# --- bounds and constants shared with _core.pyx (keep in step) -------------
SYNC_WINDOW = 256 * 1024  # bytes a searching framer looks ahead to verify a candidate
MAX_PIECES = 4096  # PDV pieces held before an EV_PDATA is flushed
MAX_OOO_SEGMENTS = 4096  # out-of-order segments held per direction
MAX_ASSOC_SYNC = 1 << 20  # largest association PDU a search accepts
MAX_FIXED_PDU = 1024  # largest length tolerated for RJ/RELEASE/ABORT (normally 4)
PCAP_MAX_RECORD = 262144  # a record longer than max(snaplen, this) is damaged
PCAPNG_MAX_BLOCK = 64 << 20
MAX_RESYNC_SECONDS = 7 * 86400  # a resynchronised pcap record must be near in time
COMMAND_GROUP_LENGTH = b"\x00\x00\x00\x00\x04\x00\x00\x00"  # (0000,0000) UL, 4 bytes

# candidate verdicts
C_REJECT, C_NEED, C_ACCEPT, C_TENTATIVE = 0, 1, 2, 3

# framer states
S_HDR, S_BODY, S_PDV_HDR, S_PDV_DATA, S_SKIP, S_SYNC, S_PROBE, S_TENT, S_DEAD = range(9)

# flow states
F_LIVE, F_CLOSED, F_IGNORED = 0, 1, 2

# TCP flags
TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10

# capture formats
FMT_UNKNOWN, FMT_PCAP, FMT_PCAPNG = 0, 1, 2


def _u16be(b, p):
    return (b[p] << 8) | b[p + 1]


def _u32be(b, p):
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]


# partition: the cost of a packet in payload bytes, and the connections whose
# owner is remembered (past it, owners are hashed)
PARTITION_PACKET_WEIGHT = 256
MAX_PARTITION_KEYS = 1 << 17


def fnv1a64(data) -> int:
    """64-bit FNV-1a; partitions connections between workers (same in both twins)."""
    h = 0xCBF29CE484222325
    for c in data:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def format_ip(ipver: int, raw: bytes) -> str:
    if ipver == 4:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def _ae_ok(b, p) -> bool:
    """A 16-byte AE title field: printable ISO 646 or NUL padding, not blank."""
    seen = False
    for k in range(p, p + 16):
        c = b[k]
        if c == 0 or c == 0x20:
            continue
        if c < 0x21 or c > 0x7E:
            return False
        seen = True
    return seen


def _plain_piece(piece, pdu_len) -> bool:
    """The one piece of a P-DATA-TF that holds one whole PDV, a middle
    fragment of a data set (control header 0), none of whose bytes were
    handed out: the PDUs an EV_PDATA_RUN gathers (PDU length = 4-byte item
    length + the item)."""
    _ctx, mch, pdv_len, off, plen, data = piece
    return mch == 0 and off == 0 and plen > 0 and plen == pdv_len - 2 and pdu_len == pdv_len + 4 and not data


# --------------------------------------- data set heads cut (trim_heads)
AC_NONE, AC_KNOWN, AC_UNSURE = 0, 1, 2  # _Flow.ac_state (see Engine._heads_pdu)
_TS_CODES = {b"1.2.840.10008.1.2": 1, b"1.2.840.10008.1.2.1": 2, b"1.2.840.10008.1.2.2": 3}


def _item_end(b, p, n) -> int:
    """Where the item or sub-item at ``b[p]`` ends (type, reserved byte,
    2-byte big-endian length, value: PS3.8 9.3), or -1 when it runs past ``n``."""
    if p + 4 > n:
        return -1
    e = p + 4 + _u16be(b, p + 2)
    return e if e <= n else -1


def ac_transfer_syntaxes(body):
    """What an A-ASSOCIATE-AC body (after the 6-byte PDU header) accepts:
    {context ID: 1 + walk syntax (0 implicit VR LE, 1 explicit VR LE, 2
    explicit VR BE)} for each context accepted (result 0) with exactly one
    transfer syntax sub-item, one of the three uncompressed ones (trailing
    NUL/space padding aside), no other sub-item, and answered once.  None
    unless every item and sub-item lies whole inside its parent and there
    are at most 256 presentation context items (``pdu.MAX_CONTEXTS``): the
    decoder's ``pdu.decode_associate`` then reads the same transfer syntax
    for every context this gives one."""
    body = bytes(body)
    n = len(body)
    if n < 68:
        return None
    out = {}
    seen = set()
    items = 0
    p = 68
    while p < n:
        e = _item_end(body, p, n)
        if e < 0:
            return None
        if body[p] == 0x21:
            items += 1
            s = p + 4
            if items > 256 or e - s < 4:
                return None
            cid = body[s]
            q = s + 4
            n_ts = 0
            code = 0
            plain = True
            while q < e:
                qe = _item_end(body, q, e)
                if qe < 0:
                    return None
                if body[q] == 0x40:
                    n_ts += 1
                    code = _TS_CODES.get(body[q + 4:qe].rstrip(b"\0 "), 0)
                else:
                    plain = False
                q = qe
            if cid not in seen and body[s + 2] == 0 and n_ts == 1 and plain and code:
                out[cid] = code
            else:
                out.pop(cid, None)
            seen.add(cid)
        p = e
    return out


def data_set_head_cut(head, syntax, limit) -> int:
    """Where the head of a data set may end, or -1.  ``head`` holds its first
    bytes, ``syntax`` is its walk syntax (0 implicit VR LE, 1 explicit VR LE,
    2 explicit VR BE), ``limit`` the bytes of each data set handed out::

        top-level elements of defined length ... | (7FE0,0010) header | value ...
        0                                        X                    cut   X+hdr+vl > limit

    The cut is the value offset of a top-level Pixel Data element (not an
    explicit SQ) whose value runs past ``limit``, reached over elements of
    defined length only.  Every walk of the head (``walk_dataset``: the
    decoder's depth check, the summary's leading values) then stops at X,
    cut there short of its value, whether the head ends at the cut or at
    ``limit``, and does the same as before X: no decision of the walk before
    X reads a byte at or past the cut (the one that peeks past an element's
    header, for a private sequence in implicit VR, only looks inside the
    element's value).  So the bytes past the cut need not be handed out."""
    b = head
    n = len(b)
    big = syntax == 2
    order = "big" if big else "little"
    p = 0
    while True:
        vrk = VRK_INVALID
        if syntax == 0:
            if p + 8 > n:
                return -1
            vl = int.from_bytes(b[p + 4:p + 8], "little")
            vo = p + 8
        else:
            if p + 6 > n:
                return -1
            vrk = VR_CLASS.get((b[p + 4] << 8) | b[p + 5], VRK_INVALID)
            if vrk == VRK_INVALID:
                return -1
            if vrk == VRK_SHORT:
                if p + 8 > n:
                    return -1
                vl = int.from_bytes(b[p + 6:p + 8], order)
                vo = p + 8
            else:
                if p + 12 > n:
                    return -1
                vl = int.from_bytes(b[p + 8:p + 12], order)
                vo = p + 12
        tag = (int.from_bytes(b[p:p + 2], order) << 16) | int.from_bytes(b[p + 2:p + 4], order)
        if vl == 0xFFFFFFFF or (tag >> 16) == 0xFFFE:
            return -1
        end = vo + vl
        if end <= n:
            p = end
            continue
        if tag == 0x7FE00010 and end > limit and (syntax == 0 or vrk != VRK_SQ):
            return vo
        return -1


def _pdu_header_plausible(t, L, sync_max) -> bool:
    """The weak check applied to the PDU that follows a candidate."""
    if t == 4:
        return 6 <= L <= sync_max
    if t == 1 or t == 2:
        return 68 <= L <= MAX_ASSOC_SYNC
    if 3 <= t <= 7:
        return L == 4
    return False


def check_candidate(b, p: int, n: int, sync_max: int):
    """Does a PDU plausibly start at ``b[p]``?  Returns ``(verdict, length)``.

    ``C_ACCEPT``: strong evidence (an A-ASSOCIATE with sane fixed fields, a
    fixed-size PDU with valid field values, a P-DATA whose first PDV is a
    command set starting with (0000,0000), or a P-DATA whose PDVs tile it
    exactly and which is followed by another plausible PDU header).
    ``C_NEED``: not enough bytes yet; ``C_TENTATIVE``: a P-DATA too long to
    verify inside the window, whose first PDV fills it (skip it and look at
    what follows).
    """
    avail = n - p
    if avail < 1:
        return C_NEED, 0
    t = b[p]
    if t < 1 or t > 7:
        return C_REJECT, 0
    if avail < 2:
        return C_NEED, 0
    if b[p + 1] != 0:
        return C_REJECT, 0
    if avail < 6:
        return C_NEED, 0
    L = _u32be(b, p + 2)
    if t == 1 or t == 2:
        # PS3.8 9.3.2: version(2) reserved(2) called(16) calling(16) reserved(32) items
        if L < 72 or L > MAX_ASSOC_SYNC:
            return C_REJECT, 0
        if avail < 78:
            return C_NEED, 0
        if _u16be(b, p + 6) != 1:
            return C_REJECT, 0
        if not (_ae_ok(b, p + 10) and _ae_ok(b, p + 26)):
            return C_REJECT, 0
        il = _u16be(b, p + 76)
        if b[p + 74] != 0x10 or b[p + 75] != 0 or il < 1 or il > 64:
            return C_REJECT, 0
        return C_ACCEPT, L
    if t == 4:
        if L < 6 or L > sync_max:
            return C_REJECT, 0
        if avail < 12:
            return C_NEED, 0
        pl = _u32be(b, p + 6)
        ctx = b[p + 10]
        mch = b[p + 11]
        if pl < 2 or pl + 4 > L or not (ctx & 1) or mch > 3:
            return C_REJECT, 0
        if (mch & 1) and pl >= 10:
            if avail < 20:
                return C_NEED, 0
            if bytes(b[p + 12:p + 20]) == COMMAND_GROUP_LENGTH:
                return C_ACCEPT, L
        end = p + 6 + L
        if end + 6 > n:
            if 12 + L > SYNC_WINDOW:
                # too long to verify: believed (and skipped) only if its first PDV
                # fills it, as in the large PDUs of real peers; anything else is
                # most likely pixel data that looks like a header, and skipping
                # its claimed length would hide the real PDUs behind it
                return (C_TENTATIVE, L) if pl + 4 == L else (C_REJECT, 0)
            return C_NEED, 0
        q = p + 6
        while q < end:  # the PDV items must tile the PDU exactly
            if end - q < 6:
                return C_REJECT, 0
            pl = _u32be(b, q)
            if pl < 2 or q + 4 + pl > end or not (b[q + 4] & 1) or b[q + 5] > 3:
                return C_REJECT, 0
            q += 4 + pl
        t2 = b[end]
        if b[end + 1] != 0 or not _pdu_header_plausible(t2, _u32be(b, end + 2), sync_max):
            return C_REJECT, 0
        return C_ACCEPT, L
    # RJ, RELEASE RQ/RP, ABORT: fixed 4-byte bodies (PS3.8 9.3.4, 9.3.6-9.3.8)
    if L != 4:
        return C_REJECT, 0
    if avail < 10:
        return C_NEED, 0
    x0, x1, x2, x3 = b[p + 6], b[p + 7], b[p + 8], b[p + 9]
    if t == 3:
        ok = x0 == 0 and x1 in (1, 2) and x2 in (1, 2, 3) and 1 <= x3 <= 7
    elif t == 7:
        ok = x0 == 0 and x1 == 0 and x2 in (0, 1, 2) and x3 <= 6
    else:
        ok = x0 == 0 and x1 == 0 and x2 == 0 and x3 == 0
    return (C_ACCEPT, L) if ok else (C_REJECT, 0)


def parse_max_length(body) -> int:
    """Maximum Length (user information sub-item 0x51) of an A-ASSOCIATE-RQ/AC
    body, or -1.  Only what the framer needs to bound P-DATA lengths."""
    n = len(body)
    p = 68
    while p + 4 <= n:
        it = body[p]
        il = _u16be(body, p + 2)
        if it == 0x50:
            q = p + 4
            end = min(p + 4 + il, n)
            while q + 4 <= end:
                st = body[q]
                sl = _u16be(body, q + 2)
                if st == 0x51 and sl == 4 and q + 8 <= end:
                    return _u32be(body, q + 4)
                q += 4 + sl
            return -1
        p += 4 + il
    return -1


class _Dir:
    """One direction of a connection: segment ordering plus the PDU framer."""

    __slots__ = (
        # TCP
        "started", "syn", "next_seq", "offset", "fin_off", "eof", "ooo",
        "ooo_bytes", "ooo_since", "hist", "hist_from", "bytes", "retrans",
        "ooo_count", "zero_window", "payload",
        # framer
        "st", "foff", "rbuf", "rbuf_off", "rmarks", "scan", "skipped", "heur",
        "lost", "synced", "tent_rem", "hbuf", "pdu_type", "pdu_len", "pdu_rem",
        "pdu_off", "f0", "f1", "t0", "t1", "pbuf", "skip_rem", "damaged",
        "pdv_ctx", "pdv_mch", "pdv_len", "pdv_pos", "pdv_rem", "piece_off",
        "store_limit", "msg_base", "overrun", "dbuf", "pieces", "pieces_bytes",
        "msg_off", "msg_cut", "max_len",
    )

    def __init__(self):
        self.started = False
        self.syn = False
        self.next_seq = 0
        self.offset = 0
        self.fin_off = -1
        self.eof = False
        self.ooo = []  # sorted, non-overlapping [off, data, frame, ts]
        self.ooo_bytes = 0
        self.ooo_since = 0
        self.hist = None
        self.hist_from = 0
        self.bytes = 0
        self.retrans = 0
        self.ooo_count = 0
        self.zero_window = 0
        self.payload = False
        self.st = S_SYNC
        self.foff = 0
        self.rbuf = bytearray()
        self.rbuf_off = 0
        self.rmarks = []  # (index in rbuf, frame, ts)
        self.scan = 0
        self.skipped = 0
        self.heur = 0
        self.lost = False
        self.synced = False
        self.tent_rem = 0
        self.hbuf = bytearray()
        self.pdu_type = 0
        self.pdu_len = 0
        self.pdu_rem = 0
        self.pdu_off = 0
        self.f0 = self.f1 = self.t0 = self.t1 = 0
        self.pbuf = bytearray()
        self.skip_rem = 0
        self.damaged = False
        self.pdv_ctx = self.pdv_mch = self.pdv_len = 0
        self.pdv_pos = self.pdv_rem = self.piece_off = 0
        self.store_limit = -1
        self.msg_base = 0
        self.overrun = False
        self.dbuf = bytearray()
        self.pieces = []
        self.pieces_bytes = 0
        self.msg_off = {}  # data set bytes so far per presentation context
        self.msg_cut = {}  # where its head was cut (Engine.trim_heads)
        self.max_len = 0


class _Flow:
    __slots__ = (
        "id", "key", "ipver", "ip", "port", "is_port", "state", "confirmed",
        "client", "syn_side", "synack_side", "isn", "syn_ts", "synack_ts",
        "ack_ts", "last_ts", "last_frame", "dirs", "heuristic_only", "run_at",
        "ac_state", "ctx_syntax",
    )

    def __init__(self, fid, key, ipver, ip_a, port_a, ip_b, port_b, is_port):
        self.id = fid
        self.key = key
        self.ipver = ipver
        self.ip = (ip_a, ip_b)
        self.port = (port_a, port_b)
        self.is_port = is_port
        self.heuristic_only = not is_port
        self.state = F_LIVE
        self.confirmed = False
        self.client = -1
        self.syn_side = -1
        self.synack_side = -1
        self.isn = -1
        self.syn_ts = -1
        self.synack_ts = -1
        self.ack_ts = -1
        self.last_ts = 0
        self.last_frame = 0  # frame of its latest packet (the LRU order)
        # its EV_PDATA_RUN being added to: its list in the events not yet
        # handed out (None: none); any other event of the connection ends it
        self.run_at = None
        # Engine.trim_heads: AC_KNOWN when its one A-ASSOCIATE-AC gave
        # ``ctx_syntax`` ({context ID: 1 + walk syntax})
        self.ac_state = AC_NONE
        self.ctx_syntax = None
        self.dirs = (_Dir(), _Dir())


class Engine:
    """Streaming analyser core: capture bytes in, events out (see ``events``).

    Parameters
    ----------
    ports : iterable of int
        TCP ports always decoded as DICOM (PS3.8 port 104 and 11112 by default).
    heuristic : bool
        Also recognise DICOM on any other port from the traffic itself.
    ooo_budget : int
        Bytes of out-of-order data held across all connections; past it the
        oldest hole is declared lost.
    data_limit : int
        Bytes of each data set message handed out (-1: all).  Command sets are
        always handed out whole (up to ``max_command``).
    chunk_size : int
        Largest PDV piece; a longer PDV value is handed out in several pieces.
    max_assoc_pdu : int
        Largest A-ASSOCIATE-RQ/AC accepted.
    max_command : int
        Largest command PDV value handed out.
    max_pdu : int
        Largest P-DATA-TF length accepted as plausible (0xFFFFFFFF: any).
    max_flows : int
        Connections tracked at once; the least recently active is evicted.
    idle_timeout : int
        Nanoseconds of capture time after which a silent connection is closed.
    heuristic_window : int
        Bytes examined per direction before the heuristic gives up on a
        connection that is not on a DICOM port.
    sync_max_pdu : int
        Largest P-DATA-TF a resynchronising framer will accept as a candidate.
    partition : (int, int)
        ``(k, n)``: only the connections that worker k of n owns.  Every
        worker sees every packet and decides the same owners: a connection
        that may carry DICOM (on a DICOM port, or any with the heuristic)
        goes, at its first packet, to the worker with the least load so far
        (payload bytes plus ``PARTITION_PACKET_WEIGHT`` per packet of the
        connections it owns; ties to the lowest k), and keeps that owner for
        the rest of the capture.  Past ``MAX_PARTITION_KEYS`` connections
        the owner of a new one is the ``fnv1a64`` hash of its key modulo n;
        worker 0 counts the packets of connections that cannot carry DICOM.
    history : int
        Bytes of delivered data kept per direction to check retransmissions.
    pdata_runs : bool
        Gather a connection's plain P-DATA-TF PDUs (``_plain_piece``) into
        EV_PDATA_RUN events instead of one EV_PDATA each.
    trim_heads : bool
        With a ``data_limit`` above 0: hand out of a data set only the bytes
        before its Pixel Data value, when that value runs past the limit
        (``data_set_head_cut``), for the transfer syntax that the
        connection's one A-ASSOCIATE-AC accepted for its context
        (``ac_transfer_syntaxes``).  Any walk of the head gives the same
        then; the summary's heads are a few KB instead of ``data_limit``.
    """

    implementation = IMPLEMENTATION

    def __init__(self, ports=DEFAULT_PORTS, heuristic=True, ooo_budget=64 << 20,
                 data_limit=-1, chunk_size=1 << 20, max_assoc_pdu=1 << 20,
                 max_command=1 << 20, max_pdu=0xFFFFFFFF, max_flows=100_000,
                 idle_timeout=600 * 10**9, heuristic_window=1 << 20,
                 sync_max_pdu=64 << 20, partition=(0, 1), history=16384, pdata_runs=False,
                 trim_heads=False):
        self.pdata_runs = bool(pdata_runs)
        self.trim_heads = bool(trim_heads) and int(data_limit) > 0
        self.ports = frozenset(int(p) for p in ports)
        self.heuristic = bool(heuristic)
        self.ooo_budget = int(ooo_budget)
        self.data_limit = int(data_limit)
        self.chunk_size = max(1, int(chunk_size))
        self.max_assoc_pdu = int(max_assoc_pdu)
        self.max_command = int(max_command)
        self.max_pdu = int(max_pdu)
        self.max_flows = max(1, int(max_flows))
        self.idle_timeout = int(idle_timeout)
        self.heuristic_window = int(heuristic_window)
        self.sync_max_pdu = int(sync_max_pdu)
        self.part_k, self.part_n = int(partition[0]), max(1, int(partition[1]))
        self._owners = {}  # key -> worker, for every connection seen (see ``partition``)
        self._part_load = [0] * self.part_n
        self.history = int(history)

        self._events = []
        self._runs = []  # places in _events of the EV_PDATA_RUN lists being added to
        self._buf = bytearray()
        self._pos = 0  # parse position in _buf
        self._foff = 0  # file offset of _buf[0]
        self._fmt = FMT_UNKNOWN
        self._big = False
        self._nano = False
        self._snaplen = 0
        self._linktype = 0
        self._ifaces = []  # pcapng: (linktype, units per second as (num, shift) , offset_s)
        self._damaged = False  # searching for the next good record/block
        self._damage_at = 0
        self._last_ts_sec = -1
        self._frame = 0
        self._ts = 0
        self._finished = False
        self._at_eof = False

        self._flows = OrderedDict()  # key -> _Flow, least recently active first
        self._next_id = 0
        self._ooo_total = 0
        self._next_sweep = None
        self._linktypes_warned = set()
        self._frag_warned = False
        self._table_full_warned = False
        self.counters = {
            "records": 0, "bytes": 0, "non_ip": 0, "non_tcp": 0,
            "ip_fragments": 0, "unsupported_link": 0, "tcp_packets": 0,
            "dicom_packets": 0, "other_tcp_packets": 0, "partition_skipped": 0,
            "flows": 0, "dicom_flows": 0, "truncated_records": 0,
            "damaged_records": 0, "gaps": 0, "gap_bytes": 0, "pdus": 0,
            "retransmissions": 0, "ooo_segments": 0, "overlap_conflicts": 0,
            "evicted_flows": 0, "ooo_forced": 0,
        }

    # ----------------------------------------------------------------- API
    def feed(self, data) -> None:
        """Consume capture bytes (any chunking).  Raises CaptureFormatError
        if the input is not a capture at all."""
        if self._finished:
            raise ValueError("feed() after finish()")
        try:
            self._buf += data
        except BufferError:
            # a memoryview of the records walked last time is still alive: a
            # frame that holds it outlived the walk (a sampling profiler, such
            # as a Dask worker's, keeps the frames it takes): a new buffer
            self._buf = self._buf + data
        self.counters["bytes"] += len(data)
        self._parse(False)
        if self._pos:
            try:
                del self._buf[:self._pos]
            except BufferError:  # as above
                self._buf = self._buf[self._pos:]
            self._foff += self._pos
            self._pos = 0

    def finish(self) -> None:
        """End of input: report a truncated tail, flush every connection."""
        if self._finished:
            return
        self._parse(True)
        rest = len(self._buf) - self._pos
        if rest > 0:
            self.counters["truncated_records"] += 1
            self._cap_expert(X_CAPTURE_TRUNCATED, self._foff + self._pos, rest,
                         self._need_at_end)
        self._buf = bytearray()
        self._pos = 0
        self._at_eof = True  # what is released now comes after the last frame
        for fl in list(self._flows.values()):
            self._end_flow(fl, END_EOF, self._frame, self._ts, remove=True)
        self._finished = True

    def pop_events(self) -> list:
        ev = self._events
        self._events = []
        if self._runs:  # the runs can no longer grow: tuples, as the other events
            for k in self._runs:
                r = ev[k]
                ev[k] = tuple(r[:12]) + (r[12].tobytes(),)
                r[0] = None  # (its connection's run_at may still point to it)
            self._runs = []
        return ev

    def stats(self) -> dict:
        c = dict(self.counters)
        c["frames"] = self._frame
        c["open_flows"] = len(self._flows)
        c["ooo_bytes"] = self._ooo_total
        c["format"] = ("unknown", "pcap", "pcapng")[self._fmt]
        return c

    # ------------------------------------------------------- capture files
    _need_at_end = 0

    def _parse(self, eof: bool) -> None:
        buf = self._buf
        while True:
            n = len(buf)
            p = self._pos
            if self._fmt == FMT_UNKNOWN:
                if n - p < 4:
                    self._need_at_end = 24
                    return
                m = bytes(buf[p:p + 4])
                if m in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1",
                         b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
                    if n - p < 24:
                        self._need_at_end = 24
                        return
                    self._big = m[0] == 0xA1
                    self._nano = m in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
                    self._snaplen = int.from_bytes(buf[p + 16:p + 20], "big" if self._big else "little")
                    self._linktype = int.from_bytes(buf[p + 20:p + 24], "big" if self._big else "little") & 0xFFFF
                    self._fmt = FMT_PCAP
                    self._pos = p + 24
                    continue
                if m == b"\x0a\x0d\x0d\x0a":
                    self._fmt = FMT_PCAPNG
                    continue
                if m[:2] == b"\x1f\x8b":
                    raise CaptureFormatError("gzip-compressed data: decompress before feeding the core")
                raise CaptureFormatError("not a pcap or pcapng capture (magic %s)" % m.hex())
            if self._fmt == FMT_PCAP:
                if not self._pcap_step(eof):
                    return
            else:
                if not self._pcapng_step(eof):
                    return

    def _rd32(self, b, p, big):
        return int.from_bytes(b[p:p + 4], "big" if big else "little")

    def _pcap_plausible(self, b, p):
        big = self._big
        sec = self._rd32(b, p, big)
        frac = self._rd32(b, p + 4, big)
        incl = self._rd32(b, p + 8, big)
        orig = self._rd32(b, p + 12, big)
        limit = max(self._snaplen, PCAP_MAX_RECORD)
        if frac >= (1000000000 if self._nano else 1000000):
            return False
        if incl > limit or orig < incl or orig > 4 * limit:
            return False
        if self._last_ts_sec >= 0 and abs(sec - self._last_ts_sec) > MAX_RESYNC_SECONDS:
            return False
        return True

    def _pcap_follows(self, b, q, sec) -> bool:
        """The record header at ``b[q]`` is sane and near ``sec`` in time."""
        big = self._big
        frac = self._rd32(b, q + 4, big)
        incl = self._rd32(b, q + 8, big)
        if frac >= (1000000000 if self._nano else 1000000) or incl > max(self._snaplen, PCAP_MAX_RECORD):
            return False
        return abs(self._rd32(b, q, big) - sec) <= MAX_RESYNC_SECONDS

    def _pcap_step(self, eof) -> bool:
        """Process one pcap record (or one resync step); False when more data is needed."""
        buf = self._buf
        n = len(buf)
        p = self._pos
        big = self._big
        limit = max(self._snaplen, PCAP_MAX_RECORD)
        if self._damaged:
            # look for a record header that is plausible and followed by another
            q = p
            while q + 16 <= n:
                if self._pcap_plausible(buf, q):
                    incl = self._rd32(buf, q + 8, big)
                    nxt = q + 16 + incl
                    if nxt + 16 <= n:
                        if self._pcap_plausible(buf, nxt):
                            break
                    elif eof and nxt == n:
                        break
                    else:
                        if not eof:
                            self._pos = q
                            self._need_at_end = 16
                            return False
                q += 1
            else:
                if not eof:
                    self._pos = q
                    return False
                # nothing good until the end (already counted when the damage was found)
                self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                                 n - (self._damage_at - self._foff))
                self._pos = n
                self._damaged = False
                return False
            self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                             (self._foff + q) - self._damage_at)
            self._damaged = False
            self._pos = q
            return True
        if n - p < 16:
            self._need_at_end = 16
            return False
        incl = self._rd32(buf, p + 8, big)
        orig = self._rd32(buf, p + 12, big)
        frac = self._rd32(buf, p + 4, big)
        if incl > limit or frac >= (1000000000 if self._nano else 1000000):
            self.counters["damaged_records"] += 1
            self._damaged = True
            self._damage_at = self._foff + p
            self._pos = p + 1
            return True
        if n - p < 16 + incl:
            self._need_at_end = 16 + incl
            return False
        sec = self._rd32(buf, p, big)
        if ((self._last_ts_sec >= 0 and abs(sec - self._last_ts_sec) > MAX_RESYNC_SECONDS)
                or orig < incl or orig > 4 * limit):
            # a suspicious header (a time jump, or lengths that disagree, as when a
            # damaged length left us inside a packet): believed only if the record
            # after it looks right, in time with this one
            nxt = p + 16 + incl
            if nxt + 16 <= n:
                ok = self._pcap_follows(buf, nxt, sec)
            elif eof:
                ok = nxt == n
            else:
                self._need_at_end = 16 + incl + 16
                return False
            if not ok:
                self.counters["damaged_records"] += 1
                self._damaged = True
                self._damage_at = self._foff + p
                self._pos = p + 1
                return True
        ts = sec * 1000000000 + (frac if self._nano else frac * 1000)
        self._last_ts_sec = sec
        self._pos = p + 16 + incl
        self._record(self._linktype, ts, memoryview(buf)[p + 16:p + 16 + incl], max(orig, incl))
        return True

    def _pcapng_step(self, eof) -> bool:
        buf = self._buf
        n = len(buf)
        p = self._pos
        if self._damaged:
            q = p
            while q + 12 <= n:
                r = self._block_ok(buf, q, n)
                if r == 1:
                    break
                if r == 2:  # need more data to decide
                    if not eof:
                        self._pos = q
                        return False
                q += 4
            else:
                if not eof:
                    self._pos = q
                    return False
                self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                                 self._foff + n - self._damage_at)
                self._pos = n
                self._damaged = False
                return False
            self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                             self._foff + q - self._damage_at)
            self._damaged = False
            self._pos = q
            return True
        if n - p < 12:
            self._need_at_end = 12
            return False
        btype = self._rd32(buf, p, self._big)
        if btype == 0x0A0D0D0A:
            bom = bytes(buf[p + 8:p + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                big = False
            elif bom == b"\x1a\x2b\x3c\x4d":
                big = True
            else:
                return self._damage(p)
            blen = self._rd32(buf, p + 4, big)
        else:
            big = self._big
            blen = self._rd32(buf, p + 4, big)
        if blen < 12 or blen % 4 or blen > PCAPNG_MAX_BLOCK:
            return self._damage(p)
        if n - p < blen:
            self._need_at_end = blen
            return False
        if self._rd32(buf, p + blen - 4, big) != blen:
            return self._damage(p)
        self._pos = p + blen
        body = p + 8
        bend = p + blen - 4
        if btype == 0x0A0D0D0A:
            self._big = big
            self._ifaces = []
        elif btype == 1:  # Interface Description Block
            if bend - body >= 8:
                lt = int.from_bytes(buf[body:body + 2], "big" if big else "little")
                resol = (6, False)
                tsoff = 0
                q = body + 8
                while q + 4 <= bend:
                    code = int.from_bytes(buf[q:q + 2], "big" if big else "little")
                    olen = int.from_bytes(buf[q + 2:q + 4], "big" if big else "little")
                    if code == 0:
                        break
                    if q + 4 + olen > bend:
                        break
                    if code == 9 and olen >= 1:
                        v = buf[q + 4]
                        resol = (v & 0x7F, bool(v & 0x80))
                    elif code == 14 and olen >= 8:
                        tsoff = int.from_bytes(buf[q + 4:q + 12], "big" if big else "little", signed=True)
                    q += 4 + ((olen + 3) & ~3)
                self._ifaces.append((lt, resol, tsoff))
        elif btype == 6 or btype == 2:  # Enhanced Packet Block / obsolete Packet Block
            if bend - body >= 20:
                if btype == 6:
                    ifid = self._rd32(buf, body, big)
                else:
                    ifid = int.from_bytes(buf[body:body + 2], "big" if big else "little")
                hi = self._rd32(buf, body + 4, big)
                lo = self._rd32(buf, body + 8, big)
                cap = self._rd32(buf, body + 12, big)
                orig = self._rd32(buf, body + 16, big)
                if cap > bend - (body + 20):
                    return self._damage(p)
                if ifid < len(self._ifaces):
                    lt, resol, tsoff = self._ifaces[ifid]
                    ts = self._ts_ng((hi << 32) | lo, resol, tsoff)
                    self._record(lt, ts, memoryview(buf)[body + 20:body + 20 + cap], max(orig, cap))
                else:
                    self._frame += 1
                    self.counters["records"] += 1
                    self.counters["unsupported_link"] += 1
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if bend - body >= 4:
                orig = self._rd32(buf, body, big)
                cap = min(orig, bend - body - 4)
                if self._ifaces:
                    lt = self._ifaces[0][0]
                    self._record(lt, self._ts, memoryview(buf)[body + 4:body + 4 + cap], max(orig, cap))
                else:
                    self._frame += 1
                    self.counters["records"] += 1
                    self.counters["unsupported_link"] += 1
        return True

    def _damage(self, p) -> bool:
        self.counters["damaged_records"] += 1
        self._damaged = True
        self._damage_at = self._foff + p
        self._pos = p + 4
        return True

    _KNOWN_BLOCKS = (0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 7, 9, 10, 0xBAD, 0x40000BAD)

    def _block_ok(self, b, q, n) -> int:
        """Resync test for pcapng: 1 good block here, 0 not, 2 need more data."""
        btype = self._rd32(b, q, self._big)
        if btype not in self._KNOWN_BLOCKS:
            return 0
        big = self._big
        if btype == 0x0A0D0D0A:
            bom = bytes(b[q + 8:q + 12])
            if bom == b"\x4d\x3c\x2b\x1a":
                big = False
            elif bom == b"\x1a\x2b\x3c\x4d":
                big = True
            else:
                return 0
        blen = self._rd32(b, q + 4, big)
        if blen < 12 or blen % 4 or blen > PCAPNG_MAX_BLOCK:
            return 0
        if q + blen > n:
            return 2
        return 1 if self._rd32(b, q + blen - 4, big) == blen else 0

    @staticmethod
    def _ts_ng(t, resol, tsoff):
        v, pow2 = resol
        if pow2:
            ns = (t * 1000000000) >> v
        elif v <= 9:
            ns = t * 10 ** (9 - v)
        else:
            ns = t // 10 ** (v - 9)
        # nanoseconds as a signed 64-bit count, as in _core.pyx: saturate what a
        # hostile resolution or offset pushes past it (beyond the year 2262)
        return min(max(ns + tsoff * 1000000000, -(1 << 63)), (1 << 63) - 1)

    # ------------------------------------------------ link, IP, TCP headers
    def _record(self, linktype, ts, data, wirelen) -> None:
        self._frame += 1
        self.counters["records"] += 1
        self._ts = ts
        frame = self._frame
        n = len(data)
        if linktype == 1:  # Ethernet
            if n < 14:
                self.counters["non_ip"] += 1
                return
            et = _u16be(data, 12)
            off = 14
            while et in (0x8100, 0x88A8, 0x9100, 0x9200):
                if n < off + 4:
                    self.counters["non_ip"] += 1
                    return
                et = _u16be(data, off + 2)
                off += 4
        elif linktype == 113:  # Linux cooked v1
            if n < 16:
                self.counters["non_ip"] += 1
                return
            et = _u16be(data, 14)
            off = 16
            while et in (0x8100, 0x88A8) and n >= off + 4:
                et = _u16be(data, off + 2)
                off += 4
        elif linktype == 276:  # Linux cooked v2
            if n < 20:
                self.counters["non_ip"] += 1
                return
            et = _u16be(data, 0)
            off = 20
        elif linktype in (12, 14, 101, 228, 229):  # raw IP
            if n < 1:
                self.counters["non_ip"] += 1
                return
            v = data[0] >> 4
            et = 0x0800 if v == 4 else 0x86DD if v == 6 else 0
            off = 0
        elif linktype == 0 or linktype == 108:  # BSD loopback: 4-byte family
            if n < 4:
                self.counters["non_ip"] += 1
                return
            if linktype == 108:
                fam = _u32be(data, 0)
            else:  # host byte order of the capturing machine: accept both
                fam = _u32be(data, 0)
                if fam > 0xFFFF:
                    fam = data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)
            et = 0x0800 if fam == 2 else 0x86DD if fam in (10, 24, 28, 30) else 0
            off = 4
        else:
            self.counters["unsupported_link"] += 1
            if linktype not in self._linktypes_warned:
                self._linktypes_warned.add(linktype)
                self._cap_expert(X_LINKTYPE_UNSUPPORTED, 0, linktype, 0)
            return
        if et == 0x0800:
            if n < off + 20 or (data[off] >> 4) != 4:
                self.counters["non_ip"] += 1
                return
            ihl = (data[off] & 0x0F) * 4
            tot = _u16be(data, off + 2)
            if ihl < 20 or tot < ihl or n < off + ihl:
                self.counters["non_ip"] += 1
                return
            if data[off + 9] != 6:
                self.counters["non_tcp"] += 1
                return
            fo = _u16be(data, off + 6)
            if fo & 0x3FFF:  # MF set or a non-zero fragment offset
                self.counters["ip_fragments"] += 1
                if not self._frag_warned:
                    self._frag_warned = True
                    self._cap_expert(X_IP_FRAGMENT, 0, frame, 0)
                return
            src = bytes(data[off + 12:off + 16]) + bytes(12)
            dst = bytes(data[off + 16:off + 20]) + bytes(12)
            ipver = 4
            t = off + ihl
            ip_end = off + tot
        elif et == 0x86DD:
            if n < off + 40 or (data[off] >> 4) != 6:
                self.counters["non_ip"] += 1
                return
            plen = _u16be(data, off + 4)
            nh = data[off + 6]
            src = bytes(data[off + 8:off + 24])
            dst = bytes(data[off + 24:off + 40])
            ipver = 6
            t = off + 40
            ip_end = t + plen if plen else off + max(n, wirelen) - off
            while nh in (0, 43, 44, 51, 60):
                if n < t + 8:
                    self.counters["non_ip"] += 1
                    return
                if nh == 44:
                    if (_u16be(data, t + 2) & 0xFFF9) != 0:  # a real fragment
                        self.counters["ip_fragments"] += 1
                        if not self._frag_warned:
                            self._frag_warned = True
                            self._cap_expert(X_IP_FRAGMENT, 0, frame, 0)
                        return
                    nh = data[t]
                    t += 8
                elif nh == 51:
                    nh, t = data[t], t + (data[t + 1] + 2) * 4
                else:
                    nh, t = data[t], t + (data[t + 1] + 1) * 8
            if nh != 6:
                self.counters["non_tcp"] += 1
                return
        else:
            self.counters["non_ip"] += 1
            return
        # TCP, RFC 9293 3.1
        if n < t + 20:
            self.counters["non_tcp"] += 1
            return
        doff = (data[t + 12] >> 4) * 4
        if doff < 20:
            self.counters["non_tcp"] += 1
            return
        self.counters["tcp_packets"] += 1
        sport = _u16be(data, t)
        dport = _u16be(data, t + 2)
        seq = _u32be(data, t + 4)
        flags = data[t + 13]
        win = _u16be(data, t + 14)
        pstart = t + doff
        # the wire length of the payload comes from IP; the captured part may be shorter
        wire_ip_end = ip_end
        true_len = max(0, wire_ip_end - pstart)
        cap_end = min(n, wire_ip_end)
        payload = data[pstart:cap_end] if cap_end > pstart else data[0:0]
        self._tcp(ipver, src, dst, sport, dport, seq, flags, win, payload, true_len, frame, ts)

    # ---------------------------------------------------------- connections
    def _owner(self, key: bytes) -> int:
        """The worker that owns this connection (see ``partition``): every
        worker calls this for the same packets and so decides alike."""
        owner = self._owners.get(key)
        if owner is None:
            if len(self._owners) >= MAX_PARTITION_KEYS:
                return fnv1a64(key) % self.part_n
            loads = self._part_load
            owner = self._owners[key] = loads.index(min(loads))
        return owner

    def _tcp(self, ipver, src, dst, sport, dport, seq, flags, win, payload, true_len, frame, ts):
        if (src, sport) <= (dst, dport):
            side = 0
            key = bytes((ipver,)) + src + sport.to_bytes(2, "big") + dst + dport.to_bytes(2, "big")
            ipa, pa, ipb, pb = src, sport, dst, dport
        else:
            side = 1
            key = bytes((ipver,)) + dst + dport.to_bytes(2, "big") + src + sport.to_bytes(2, "big")
            ipa, pa, ipb, pb = dst, dport, src, sport
        if self._next_sweep is None:
            self._next_sweep = ts + max(10**9, self.idle_timeout // 4)
        elif ts >= self._next_sweep:
            self._sweep(frame, ts)
        fl = self._flows.get(key)
        if fl is None:
            is_port = pa in self.ports or pb in self.ports
            if self.part_n > 1:
                if is_port or self.heuristic:
                    owner = self._owner(key)
                    self._part_load[owner] += true_len + PARTITION_PACKET_WEIGHT
                else:
                    owner = 0  # never a connection: worker 0 counts its packets
                if owner != self.part_k:
                    self.counters["partition_skipped"] += 1
                    return
            if not is_port and not self.heuristic:
                self.counters["other_tcp_packets"] += 1
                return
            fl = self._new_flow(key, ipver, ipa, pa, ipb, pb, is_port, frame, ts)
        else:
            self._flows.move_to_end(key)
            if self.part_n > 1:
                self._part_load[self.part_k] += true_len + PARTITION_PACKET_WEIGHT
            if flags & TH_SYN and not flags & TH_ACK and fl.state != F_IGNORED and (
                    fl.state == F_CLOSED or (fl.isn >= 0 and fl.isn != seq)
                    or (fl.syn_side < 0 and (fl.dirs[0].payload or fl.dirs[1].payload))):
                # a new connection on the same addresses and ports
                self._end_flow(fl, END_REUSED, frame, ts, remove=True)
                fl = self._new_flow(key, ipver, ipa, pa, ipb, pb, fl.is_port, frame, ts)
            elif fl.state == F_IGNORED and flags & TH_SYN and not flags & TH_ACK and fl.isn != seq:
                del self._flows[key]
                fl = self._new_flow(key, ipver, ipa, pa, ipb, pb, fl.is_port, frame, ts)
        fl.last_ts = ts
        fl.last_frame = frame
        if fl.state != F_LIVE:
            self.counters["other_tcp_packets" if not fl.confirmed else "dicom_packets"] += 1
            return
        # handshake
        if flags & TH_SYN:
            if flags & TH_ACK:
                if fl.synack_side < 0:
                    fl.synack_side = side
                    fl.synack_ts = ts
            elif fl.syn_side < 0:
                fl.syn_side = side
                fl.syn_ts = ts
                fl.isn = seq
        elif flags & TH_ACK and fl.ack_ts < 0 and fl.synack_ts >= 0 and side == fl.syn_side:
            fl.ack_ts = ts
        d = fl.dirs[side]
        if win == 0 and not flags & (TH_SYN | TH_FIN | TH_RST):
            d.zero_window += 1
        if flags & TH_RST:
            self.counters["dicom_packets" if fl.confirmed else "other_tcp_packets"] += 1
            self._end_flow(fl, END_RST, frame, ts, remove=False)
            return
        self._segment(fl, side, d, seq, flags, payload, true_len, frame, ts)
        self.counters["dicom_packets" if fl.confirmed else "other_tcp_packets"] += 1
        if fl.state == F_LIVE and fl.dirs[0].eof and fl.dirs[1].eof:
            self._end_flow(fl, END_FIN, frame, ts, remove=False)

    def _new_flow(self, key, ipver, ipa, pa, ipb, pb, is_port, frame, ts):
        while len(self._flows) >= self.max_flows:
            _, old = self._flows.popitem(last=False)
            self.counters["evicted_flows"] += 1
            if not self._table_full_warned:
                self._table_full_warned = True
                self._cap_expert(X_FLOW_TABLE_FULL, 0, self.max_flows, 0)
            self._end_flow(old, END_EVICTED, frame, ts, remove=False)
        fl = _Flow(self._next_id, key, ipver, ipa, pa, ipb, pb, is_port)
        self._next_id += 1
        self.counters["flows"] += 1
        self._flows[key] = fl
        return fl

    def _sweep(self, frame, ts):
        self._next_sweep = ts + max(10**9, self.idle_timeout // 4)
        while self._flows:
            key, fl = next(iter(self._flows.items()))
            if fl.last_ts + self.idle_timeout > ts:
                break
            del self._flows[key]
            self._end_flow(fl, END_IDLE, frame, ts, remove=False)

    def _end_flow(self, fl, reason, frame, ts, remove):
        if fl.state == F_LIVE:
            for side in (0, 1):
                d = fl.dirs[side]
                while d.ooo:
                    self._declare_hole(fl, side, d, d.ooo[0][0], frame, ts)
                if not d.eof:
                    d.eof = True
                    self._fr_eof(fl, side, d, frame, ts)
            if fl.confirmed:
                a, b = fl.dirs[fl.client], fl.dirs[1 - fl.client]
                fl.run_at = None
                self._events.append((EV_FLOW_END, fl.id, frame, ts, reason, (
                    a.bytes, b.bytes, a.retrans, b.retrans, a.ooo_count, b.ooo_count,
                    a.zero_window, b.zero_window)))
            elif fl.syn_side >= 0 and not (fl.dirs[0].payload or fl.dirs[1].payload):
                if fl.synack_side < 0:
                    outcome = ATTEMPT_REFUSED if reason == END_RST else ATTEMPT_UNANSWERED
                else:
                    outcome = ATTEMPT_NO_DATA
                c = fl.syn_side
                self._events.append((
                    EV_TCP_ATTEMPT, frame, ts, format_ip(fl.ipver, fl.ip[c]), fl.port[c],
                    format_ip(fl.ipver, fl.ip[1 - c]), fl.port[1 - c], outcome))
            for d in fl.dirs:
                d.hist = None
                d.rbuf = bytearray()
                d.pbuf = bytearray()
                d.dbuf = bytearray()
                d.pieces = []
            fl.state = F_CLOSED
        if remove:
            self._flows.pop(fl.key, None)

    # ------------------------------------------------------- TCP ordering
    def _segment(self, fl, side, d, seq, flags, payload, true_len, frame, ts):
        if flags & TH_SYN:
            if not d.started or not d.syn:
                d.started = True
                d.syn = True
                d.next_seq = (seq + 1) & 0xFFFFFFFF
                d.offset = 0
                d.hist_from = 0
                self._init_framer(fl, d, True)
            seq = (seq + 1) & 0xFFFFFFFF
        if true_len == 0 and not flags & TH_FIN:
            return
        if not d.started:
            d.started = True
            d.next_seq = seq
            self._init_framer(fl, d, False)
        rel = ((seq - d.next_seq + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        if rel >= (1 << 30) or rel < -(1 << 30):
            self._flow_expert(fl, X_TCP_SEQ_JUMP, frame, ts, d.offset, rel, 0, side)
            while d.ooo:
                self._declare_hole(fl, side, d, d.ooo[0][0], frame, ts)
            self.counters["gaps"] += 1
            self._fr_gap(fl, side, d, -1, frame, ts)
            d.next_seq = seq
            rel = 0
        off = d.offset + rel
        if true_len:
            d.payload = True
            d.bytes += true_len
        if flags & TH_FIN and d.fin_off < 0:
            d.fin_off = off + true_len
        if true_len:
            self._insert(fl, side, d, off, payload, true_len, frame, ts)
        if d.fin_off >= 0 and d.offset >= d.fin_off and not d.eof:
            while d.ooo:
                self._declare_hole(fl, side, d, d.ooo[0][0], frame, ts)
            d.eof = True
            self._fr_eof(fl, side, d, frame, ts)

    def _hist_compare(self, fl, side, d, off, data, frame, ts):
        """Compare bytes already delivered (still in the history) with a later copy."""
        lo = max(off, d.hist_from, d.offset - self.history)
        hi = min(off + len(data), d.offset)
        if hi <= lo or d.hist is None:
            return
        H = self.history
        for k in range(lo, hi):
            if d.hist[k % H] != data[k - off]:
                self.counters["overlap_conflicts"] += 1
                self._flow_expert(fl, X_TCP_OVERLAP_CONFLICT, frame, ts, lo, hi - lo, 0, side)
                return

    def _insert(self, fl, side, d, off, data, true_len, frame, ts):
        """Place a segment's bytes at stream offset ``off``; first copy wins."""
        # a loop, not recursion: one segment may span thousands of held segments
        more = (off, data, true_len)
        while more:
            more = self._insert_step(fl, side, d, *more, frame, ts)

    def _insert_step(self, fl, side, d, off, data, true_len, frame, ts):
        """One step of ``_insert``: returns ``(off, data, true_len)`` still to place, or None."""
        cap = len(data)
        if off + true_len <= d.offset:
            d.retrans += 1
            self.counters["retransmissions"] += 1
            self._hist_compare(fl, side, d, off, data, frame, ts)
            return
        if off < d.offset:
            self._hist_compare(fl, side, d, off, data, frame, ts)
            cut = d.offset - off
            data = data[cut:]
            true_len -= cut
            off = d.offset
            cap = len(data)
        if off == d.offset:
            lim = min(cap, d.ooo[0][0] - off) if d.ooo else cap
            if lim:
                self._deliver(fl, side, d, data[:lim], frame, ts)
            self._drain(fl, side, d)
            if lim < cap:
                return off + lim, data[lim:], true_len - lim
        else:
            # split the new data into the holes between held segments
            end = off + cap
            pieces = []
            q = off
            ooo = d.ooo
            lo, hi = 0, len(ooo)
            while lo < hi:  # the first held segment that ends after q (as _core.pyx)
                mid = (lo + hi) >> 1
                if ooo[mid][0] + len(ooo[mid][1]) <= q:
                    lo = mid + 1
                else:
                    hi = mid
            for k in range(lo, len(ooo)):
                s = ooo[k]
                s_off, s_data = s[0], s[1]
                s_end = s_off + len(s_data)
                if s_end <= q:
                    continue
                if s_off >= end:
                    break
                if s_off > q:
                    pieces.append((q, data[q - off:s_off - off]))
                lo, hi = max(q, s_off), min(end, s_end)
                if bytes(data[lo - off:hi - off]) != bytes(s_data[lo - s_off:hi - s_off]):
                    self.counters["overlap_conflicts"] += 1
                    self._flow_expert(fl, X_TCP_OVERLAP_CONFLICT, frame, ts, lo, hi - lo, 0, side)
                q = max(q, s_end)
            if q < end:
                pieces.append((q, data[q - off:]))
            need = sum(len(x) for _, x in pieces)
            if not need:
                if cap:
                    d.retrans += 1
                    self.counters["retransmissions"] += 1
                return
            d.ooo_count += 1
            self.counters["ooo_segments"] += 1
            if self._ooo_total + need > self.ooo_budget:
                if self._make_room(fl, side, d, off, need, frame, ts):
                    # positions moved: place the segment again
                    d.ooo_count -= 1
                    self.counters["ooo_segments"] -= 1
                    return off, data, true_len
            for p_off, p_data in pieces:
                self._ooo_add(d, p_off, bytes(p_data), frame, ts)
            if len(d.ooo) > MAX_OOO_SEGMENTS:
                self._flow_expert(fl, X_OOO_SEGMENTS, frame, ts, d.offset, MAX_OOO_SEGMENTS, 0, side)
                self._declare_hole(fl, side, d, d.ooo[0][0], frame, ts)
            return
        if true_len > cap and d.offset == off + cap:
            # the tap saw this segment but kept only part of it (snaplen)
            lost = true_len - cap
            if d.ooo:
                lost = min(lost, d.ooo[0][0] - d.offset)
            if lost > 0:
                self._gap(fl, side, d, lost, frame, ts)
                self._drain(fl, side, d)

    def _ooo_add(self, d, off, data, frame, ts):
        if not d.ooo:
            d.ooo_since = frame
        i = len(d.ooo)
        while i > 0 and d.ooo[i - 1][0] > off:
            i -= 1
        d.ooo.insert(i, [off, data, frame, ts])
        d.ooo_bytes += len(data)
        self._ooo_total += len(data)

    def _make_room(self, fl, side, d, off, need, frame, ts) -> bool:
        """Free out-of-order budget by declaring the oldest holes lost.
        Returns True if the current direction moved (its segment must be redone)."""
        moved = False
        while self._ooo_total + need > self.ooo_budget:
            victim = None
            for f in self._flows.values():
                if f.state != F_LIVE:
                    continue
                for s in (0, 1):
                    x = f.dirs[s]
                    if x.ooo and (victim is None or x.ooo_since < victim[2].ooo_since):
                        victim = (f, s, x)
            self.counters["ooo_forced"] += 1
            if victim is None or (victim[2] is d and d.ooo[0][0] > off):
                # nothing held (or our own hole comes first): give up on our hole
                self._flow_expert(fl, X_OOO_BUDGET, frame, ts, d.offset, self.ooo_budget, 0, side)
                self._gap(fl, side, d, off - d.offset, frame, ts)
                self._drain(fl, side, d)
                return True
            f, s, x = victim
            self._flow_expert(f, X_OOO_BUDGET, frame, ts, x.offset, self.ooo_budget, 0, s)
            self._declare_hole(f, s, x, x.ooo[0][0], frame, ts)
            if x is d:
                moved = True
                if d.offset >= off:
                    return True
        return moved

    def _declare_hole(self, fl, side, d, upto, frame, ts):
        if upto > d.offset:
            self._gap(fl, side, d, upto - d.offset, frame, ts)
        self._drain(fl, side, d)

    def _gap(self, fl, side, d, size, frame, ts):
        self.counters["gaps"] += 1
        self.counters["gap_bytes"] += size
        d.offset += size
        d.next_seq = (d.next_seq + size) & 0xFFFFFFFF
        d.hist_from = d.offset
        self._fr_gap(fl, side, d, size, frame, ts)

    def _drain(self, fl, side, d):
        while d.ooo and d.ooo[0][0] <= d.offset:
            s_off, s_data, s_frame, s_ts = d.ooo.pop(0)
            d.ooo_bytes -= len(s_data)
            self._ooo_total -= len(s_data)
            skip = d.offset - s_off
            if skip < len(s_data):
                self._deliver(fl, side, d, memoryview(s_data)[skip:], s_frame, s_ts)

    def _deliver(self, fl, side, d, data, frame, ts):
        n = len(data)
        if self.history > 0:
            H = self.history
            if d.hist is None:
                d.hist = bytearray(H)
            src = data[-H:] if n > H else data
            m = len(src)
            i0 = (d.offset + n - m) % H
            first = min(m, H - i0)
            d.hist[i0:i0 + first] = src[:first]
            d.hist[0:m - first] = src[first:]
        d.offset += n
        d.next_seq = (d.next_seq + n) & 0xFFFFFFFF
        if d.st != S_DEAD:
            self._fr_data(fl, side, d, data, frame, ts)

    # ------------------------------------------------------------- events
    def _cap_expert(self, code, offset, a1, a2):
        self._events.append((EV_EXPERT, -1, -1, code, self._frame, self._ts, offset, a1, a2))

    def _flow_expert(self, fl, code, frame, ts, off, a1, a2, side):
        if fl.confirmed:
            fl.run_at = None
            self._events.append((EV_EXPERT, fl.id, self._dir(fl, side), code, frame, ts, off, a1, a2))

    @staticmethod
    def _dir(fl, side):
        return 0 if side == fl.client else 1

    def _confirm(self, fl, side, t, frame, ts):
        fl.confirmed = True
        self.counters["dicom_flows"] += 1
        if fl.syn_side >= 0:
            client = fl.syn_side
        elif fl.synack_side >= 0:
            client = 1 - fl.synack_side
        elif t == 1:
            client = side
        elif t == 2 or t == 3:
            client = 1 - side
        else:
            pa, pb = fl.port
            a_srv = pa in self.ports
            b_srv = pb in self.ports
            if a_srv != b_srv:
                client = 1 if a_srv else 0
            else:
                client = 1 if pa < pb else 0
        fl.client = client
        s = 1 - client
        self._events.append((
            EV_FLOW, fl.id, frame, ts, format_ip(fl.ipver, fl.ip[client]), fl.port[client],
            format_ip(fl.ipver, fl.ip[s]), fl.port[s], fl.syn_ts, fl.synack_ts, fl.ack_ts))

    # ------------------------------------------------------------- framer
    def _init_framer(self, fl, d, stream_start):
        d.foff = d.offset
        d.rbuf_off = d.offset
        if stream_start:
            d.st = S_PROBE  # the first PDU must pass check_candidate at offset 0
        else:
            d.st = S_SYNC

    def _fr_data(self, fl, side, d, data, frame, ts):
        work = deque([(data, frame, ts)])
        while work:
            data, frame, ts = work.popleft()
            i = 0
            n = len(data)
            while i < n:
                st = d.st
                if st == S_PDV_DATA:
                    i = self._pdv_data(fl, side, d, data, i, n, frame, ts)
                elif st == S_HDR:
                    if not d.hbuf:
                        d.pdu_off = d.foff
                        d.f0 = d.f1 = frame
                        d.t0 = d.t1 = ts
                    else:
                        d.f1 = max(d.f1, frame)
                        d.t1 = max(d.t1, ts)
                    k = min(6 - len(d.hbuf), n - i)
                    d.hbuf += data[i:i + k]
                    i += k
                    d.foff += k
                    if len(d.hbuf) == 6:
                        self._on_header(fl, side, d, frame, ts)
                elif st == S_BODY:
                    k = min(d.pdu_rem, n - i)
                    d.pbuf += data[i:i + k]
                    d.f1 = max(d.f1, frame)
                    d.t1 = max(d.t1, ts)
                    i += k
                    d.foff += k
                    d.pdu_rem -= k
                    if d.pdu_rem == 0:
                        self._end_body(fl, side, d, 0)
                elif st == S_PDV_HDR:
                    d.f1 = max(d.f1, frame)
                    d.t1 = max(d.t1, ts)
                    k = min(6 - len(d.hbuf), n - i, d.pdu_rem)
                    d.hbuf += data[i:i + k]
                    i += k
                    d.foff += k
                    d.pdu_rem -= k
                    if len(d.hbuf) == 6:
                        self._on_pdv_header(fl, side, d, frame, ts)
                    elif d.pdu_rem == 0:
                        self._flow_expert(fl, X_PDV_HEADER_CUT, frame, ts, d.foff, len(d.hbuf), 0, side)
                        d.hbuf.clear()
                        d.damaged = True
                        self._end_pdata(fl, side, d)
                elif st == S_SKIP:
                    d.f1 = max(d.f1, frame)
                    d.t1 = max(d.t1, ts)
                    k = min(d.skip_rem, n - i)
                    i += k
                    d.foff += k
                    d.skip_rem -= k
                    d.pdu_rem -= k
                    if d.skip_rem == 0:
                        self._end_damaged(fl, side, d)
                elif st == S_TENT:
                    k = min(d.tent_rem, n - i)
                    i += k
                    d.foff += k
                    d.tent_rem -= k
                    d.skipped += k
                    if not fl.confirmed:
                        d.heur += k
                    if d.tent_rem == 0:
                        d.st = S_SYNC
                        d.rbuf_off = d.foff
                        d.scan = 0
                elif st == S_SYNC or st == S_PROBE:
                    d.rmarks.append((len(d.rbuf), frame, ts))
                    d.rbuf += data[i:n]
                    d.foff += n - i
                    i = n
                    rest = self._sync(fl, side, d)
                    if rest:
                        work.extendleft(reversed(rest))
                        break
                else:  # S_DEAD
                    return

    def _sync(self, fl, side, d):
        """Search rbuf for a PDU boundary.  Returns the bytes to frame again
        (as (data, frame, ts) pieces) once one is found."""
        buf = d.rbuf
        n = len(buf)
        pos = d.scan
        probe = d.st == S_PROBE
        limited = fl.heuristic_only and not fl.confirmed
        verdict = C_REJECT
        L = 0
        while pos < n:
            verdict, L = check_candidate(buf, pos, n, self.sync_max_pdu)
            if verdict == C_REJECT or (verdict == C_TENTATIVE and (
                    probe or (limited and d.heur + pos + 6 + L > self.heuristic_window))):
                verdict = C_REJECT
                if probe:
                    if limited:  # the heuristic's verdict: not DICOM
                        self._ignore(fl)
                        return None
                    # the stream does not start with a PDU: search for one
                    probe = False
                    d.st = S_SYNC
                    d.lost = True
                pos += 1
                continue
            break
        if verdict == C_ACCEPT or verdict == C_TENTATIVE:
            skipped = d.skipped + pos
            d.heur += pos
            start_off = d.rbuf_off + pos
            # split rbuf[pos:] back into its original (frame, ts) pieces
            rest = []
            marks = d.rmarks
            for j, (mi, mf, mt) in enumerate(marks):
                mend = marks[j + 1][0] if j + 1 < len(marks) else n
                lo = max(mi, pos)
                if lo < mend:
                    rest.append((bytes(buf[lo:mend]), mf, mt))
            d.rbuf = bytearray()
            d.rmarks = []
            d.scan = 0
            d.foff = start_off
            if verdict == C_TENTATIVE:
                d.st = S_TENT
                d.tent_rem = 6 + L
                d.skipped = skipped
                return rest
            t = buf[pos]
            frame, ts = rest[0][1], rest[0][2]
            if not fl.confirmed:
                self._confirm(fl, side, t, frame, ts)
            if d.lost:
                self._flow_expert(fl, X_RESYNC, frame, ts, start_off, skipped, t, side)
            elif not d.synced and skipped:
                self._flow_expert(fl, X_MIDSTREAM, frame, ts, start_off, skipped, t, side)
            d.synced = True
            d.lost = False
            d.skipped = 0
            d.st = S_HDR
            return rest
        # no boundary yet: drop what cannot start one
        if pos:
            del buf[:pos]
            d.rbuf_off += pos
            d.skipped += pos
            d.heur += pos
            marks = []
            for mi, mf, mt in d.rmarks:
                marks.append((max(0, mi - pos), mf, mt))
            # keep only the last mark of those that now start at 0
            while len(marks) > 1 and marks[1][0] == 0:
                marks.pop(0)
            d.rmarks = marks if buf else []
        d.scan = 0
        if limited and d.heur > self.heuristic_window:
            d.st = S_DEAD
            d.rbuf = bytearray()
            d.rmarks = []
            other = fl.dirs[1 - side]
            if other.st == S_DEAD or not other.started:
                self._ignore(fl)
        return None

    def _ignore(self, fl):
        """The heuristic decided this connection is not DICOM."""
        fl.state = F_IGNORED
        for x in fl.dirs:
            x.st = S_DEAD
            x.rbuf = bytearray()
            x.rmarks = []
            x.hist = None
            self._ooo_total -= x.ooo_bytes
            x.ooo = []
            x.ooo_bytes = 0

    def _lose_sync(self, d, keep=b"", frame=0, ts=0):
        d.msg_cut.clear()
        d.st = S_SYNC
        d.lost = True
        d.rbuf = bytearray(keep)
        d.rmarks = [(0, frame, ts)] if keep else []
        d.rbuf_off = d.foff - len(keep)
        d.scan = 1 if keep else 0

    def _on_header(self, fl, side, d, frame, ts):
        h = d.hbuf
        t = h[0]
        L = _u32be(h, 2)
        valid = True
        if t == 4:
            if L < 6 or L > self.max_pdu:
                valid = False
            elif d.max_len and L > d.max_len:
                if L > 4 * d.max_len + (1 << 20):
                    valid = False
                else:
                    self._flow_expert(fl, X_PDU_OVER_MAX, frame, ts, d.pdu_off, L, d.max_len, side)
        elif t == 1 or t == 2:
            if L > self.max_assoc_pdu:
                valid = False
            elif L < 68:
                self._flow_expert(fl, X_PDU_LENGTH_UNEXPECTED, frame, ts, d.pdu_off, t, L, side)
        elif 3 <= t <= 7:
            if L > MAX_FIXED_PDU:
                valid = False
            elif L != 4:
                self._flow_expert(fl, X_PDU_LENGTH_UNEXPECTED, frame, ts, d.pdu_off, t, L, side)
        else:
            valid = False
        if not valid:
            self._flow_expert(fl, X_PDU_INVALID, frame, ts, d.pdu_off, t, L, side)
            keep = bytes(h)
            d.hbuf.clear()
            self._lose_sync(d, keep, d.f0, d.t0)
            return
        d.hbuf.clear()
        d.pdu_type = t
        d.pdu_len = L
        d.pdu_rem = L
        d.damaged = False
        self.counters["pdus"] += 1
        if t == 4:
            d.st = S_PDV_HDR
            d.pieces = []
            d.pieces_bytes = 0
        else:
            d.st = S_BODY
            d.pbuf = bytearray()
            if L == 0:
                self._end_body(fl, side, d, 0)

    def _end_body(self, fl, side, d, flags):
        body = bytes(d.pbuf)
        d.pbuf = bytearray()
        t = d.pdu_type
        if fl.confirmed:
            fl.run_at = None
            self._events.append((EV_PDU, fl.id, self._dir(fl, side), t, d.pdu_len, d.pdu_off,
                                 d.f0, d.f1, d.t0, d.t1, body, PF_FINAL | flags))
        if (t == 1 or t == 2) and not flags:
            m = parse_max_length(body)
            if m >= 0:
                fl.dirs[1 - side].max_len = m
        if self.trim_heads:
            self._heads_pdu(fl, body, t, flags)
        d.st = S_HDR

    def _heads_pdu(self, fl, body, t, flags):
        """trim_heads: an association PDU.  The one A-ASSOCIATE-AC of the
        connection tells each context's transfer syntax (``ac_transfer_syntaxes``),
        as the decoder reads it when the association has no other (it takes
        an association's first AC, and an RQ may begin a new association);
        another AC, an RQ after it, an AC the decoder does not see or that is
        cut: no head of this connection is cut any more.  Any association
        PDU may end the decoder's data sets: heads already cut are let go."""
        if t == 2:
            if fl.ac_state == AC_NONE and fl.confirmed and not flags:
                fl.ctx_syntax = ac_transfer_syntaxes(body)
                fl.ac_state = AC_UNSURE if fl.ctx_syntax is None else AC_KNOWN
            else:
                fl.ac_state = AC_UNSURE
        elif t == 1 and fl.ac_state == AC_KNOWN:
            fl.ac_state = AC_UNSURE
        fl.dirs[0].msg_cut.clear()
        fl.dirs[1].msg_cut.clear()

    def _on_pdv_header(self, fl, side, d, frame, ts):
        h = d.hbuf
        pl = _u32be(h, 0)
        ctx = h[4]
        mch = h[5]
        d.hbuf.clear()
        if pl < 2:
            self._flow_expert(fl, X_PDV_TOO_SMALL, frame, ts, d.foff - 6, pl, 0, side)
            self._skip_rest(fl, side, d)
            return
        room = d.pdu_rem + 2
        d.overrun = False
        vlen = pl - 2
        if pl > room:
            self._flow_expert(fl, X_PDV_OVERRUN, frame, ts, d.foff - 6, pl, room, side)
            vlen = room - 2
            d.overrun = True
        if mch & 0xFC:
            self._flow_expert(fl, X_PDV_FLAGS_INVALID, frame, ts, d.foff - 6, mch, 0, side)
        if not ctx & 1:
            self._flow_expert(fl, X_PDV_CONTEXT_EVEN, frame, ts, d.foff - 6, ctx, 0, side)
        d.pdv_ctx = ctx
        d.pdv_mch = mch
        d.pdv_len = pl
        d.pdv_pos = 0
        d.pdv_rem = vlen
        d.piece_off = 0
        d.dbuf = bytearray()
        if mch & 1:
            d.store_limit = self.max_command
            if vlen > self.max_command:
                self._flow_expert(fl, X_COMMAND_TOO_LARGE, frame, ts, d.foff - 6, vlen, 0, side)
            d.msg_cut.pop(ctx, None)  # a command ends the decoder's data set on this context
        else:
            d.msg_base = d.msg_off.get(ctx, 0)
            lim = self.data_limit
            if ctx in d.msg_cut:
                lim = min(lim, d.msg_cut[ctx])  # its head was cut (trim_heads)
            d.store_limit = -1 if lim < 0 else max(0, lim - d.msg_base)
        d.st = S_PDV_DATA
        if vlen == 0:
            self._end_pdv(fl, side, d)

    def _pdv_data(self, fl, side, d, data, i, n, frame, ts):
        d.f1 = max(d.f1, frame)
        d.t1 = max(d.t1, ts)
        take = min(d.pdv_rem, n - i)
        cs = self.chunk_size
        lim = d.store_limit
        while take > 0:
            if lim < 0 or d.pdv_pos < lim:
                k = min(take, cs - len(d.dbuf))
                if lim >= 0:
                    k = min(k, lim - d.pdv_pos)
                d.dbuf += data[i:i + k]
            else:
                k = take
            i += k
            take -= k
            d.pdv_pos += k
            d.pdv_rem -= k
            d.pdu_rem -= k
            d.foff += k
            if len(d.dbuf) == cs and d.pdv_rem > 0:
                self._cut_piece(fl, side, d)
        if d.pdv_rem == 0:
            self._end_pdv(fl, side, d)
        return i

    def _cut_piece(self, fl, side, d):
        data = bytes(d.dbuf)
        d.pieces.append((d.pdv_ctx, d.pdv_mch, d.pdv_len, d.piece_off, d.pdv_pos - d.piece_off, data))
        d.pieces_bytes += len(data)
        d.piece_off = d.pdv_pos
        d.dbuf = bytearray()
        if d.pieces_bytes >= self.chunk_size or len(d.pieces) >= MAX_PIECES:
            self._flush_pieces(fl, side, d, 0)

    def _flush_pieces(self, fl, side, d, flags):
        if (fl.confirmed and self.pdata_runs and flags == PF_FINAL and len(d.pieces) == 1
                and _plain_piece(d.pieces[0], d.pdu_len)):
            self._run_add(fl, side, d, d.pieces[0])
        elif fl.confirmed:
            fl.run_at = None
            self._events.append((EV_PDATA, fl.id, self._dir(fl, side), 4, d.pdu_len, d.pdu_off,
                                 d.f0, d.f1, d.t0, d.t1, tuple(d.pieces), flags,
                                 self._frame + self._at_eof, fl.last_frame))
        d.pieces = []
        d.pieces_bytes = 0

    def _run_add(self, fl, side, d, piece):
        """A plain P-DATA-TF (``_plain_piece``) into its connection's run
        (events.py: EV_PDATA_RUN): the run this connection began in the
        events not yet handed out, if no other event of the connection came
        since and it has the same direction and context; else a new one.
        Each PDU adds its row of what its own EV_PDATA would have said."""
        direction = self._dir(fl, side)
        ctx, _mch, pdv_len, _off, plen, _data = piece
        t1 = d.t1
        r = fl.run_at
        if r is None or r[0] is None or r[2] != direction or r[3] != ctx:
            r = [EV_PDATA_RUN, fl.id, direction, ctx, 0, 0, 0, 0, t1, t1, 0, 0, array("q")]
            self._runs.append(len(self._events))
            self._events.append(r)
            fl.run_at = r
        r[12].extend((d.pdu_len, d.pdu_off, d.f0, d.f1, d.t0, t1, pdv_len, self._frame + self._at_eof,
                      fl.last_frame))
        r[4] += 1  # PDUs
        r[5] += d.pdu_len + 6  # their bytes, headers included
        r[6] += plen  # PDV value bytes
        r[7] = d.f1  # the last one's last frame
        r[8] = min(r[8], t1)
        r[9] = max(r[9], t1)
        r[10] = t1  # the last one's last time
        r[11] = plen  # the last one's PDV value length

    def _end_pdv(self, fl, side, d):
        cut = 0
        if (self.trim_heads and fl.ac_state == AC_KNOWN and d.msg_base == 0 and d.piece_off == 0
                and d.dbuf and not d.pdv_mch & 1):
            # the first PDV of a data set: its head is cut where no walk of it
            # looks further (data_set_head_cut), and no later PDV of it hands
            # bytes out
            syntax = fl.ctx_syntax.get(d.pdv_ctx)
            if syntax:  # (a cut lies inside the bytes walked: 0 < cut <= len(dbuf))
                cut = max(0, data_set_head_cut(d.dbuf, syntax - 1, self.data_limit))
                if cut:
                    del d.dbuf[cut:]
        self._cut_piece(fl, side, d)
        if not d.pdv_mch & 1:
            ctx = d.pdv_ctx
            if d.pdv_mch & 2:
                d.msg_off[ctx] = 0
                d.msg_cut.pop(ctx, None)
            else:
                d.msg_off[ctx] = d.msg_base + d.pdv_pos
                if cut:
                    d.msg_cut[ctx] = cut
        if d.overrun:
            d.damaged = True
        if d.pdu_rem == 0:
            self._end_pdata(fl, side, d)
        else:
            d.st = S_PDV_HDR

    def _end_pdata(self, fl, side, d):
        self._flush_pieces(fl, side, d, PF_FINAL | (PF_TRUNCATED if d.damaged else 0))
        d.st = S_HDR

    def _skip_rest(self, fl, side, d):
        d.damaged = True
        if d.pdu_rem == 0:
            self._end_pdata(fl, side, d)
        else:
            d.st = S_SKIP
            d.skip_rem = d.pdu_rem

    def _end_damaged(self, fl, side, d):
        if d.pdu_type == 4:
            self._end_pdata(fl, side, d)
        else:
            self._end_body(fl, side, d, PF_TRUNCATED)

    def _abort_pdu(self, fl, side, d):
        """Hand out what arrived of the current PDU, marked truncated."""
        if d.pdu_type == 4:
            if d.st == S_PDV_DATA and (d.pdv_pos > d.piece_off or d.dbuf):
                self._cut_piece(fl, side, d)
            self._flush_pieces(fl, side, d, PF_FINAL | PF_TRUNCATED)
        else:
            self._end_body(fl, side, d, PF_TRUNCATED)

    def _fr_gap(self, fl, side, d, size, frame, ts):
        st = d.st
        off = d.foff
        if st == S_DEAD:
            return
        d.msg_cut.clear()  # the decoder may end its data sets at a gap: heads are not cut across one
        if size >= 0:
            resumed = False
            if st == S_PDV_DATA and size < d.pdv_rem:
                # the hole is inside this PDV value: framing goes on after it
                if d.pdv_pos > d.piece_off or d.dbuf:
                    self._cut_piece(fl, side, d)
                if d.pieces:
                    self._flush_pieces(fl, side, d, 0)
                d.pdv_pos += size
                d.pdv_rem -= size
                d.pdu_rem -= size
                d.piece_off = d.pdv_pos
                resumed = True
            elif st in (S_PDV_DATA, S_PDV_HDR, S_SKIP) and size <= d.pdu_rem:
                # the PDU's remaining PDV headers are lost, but its end is known
                if st == S_PDV_DATA and (d.pdv_pos > d.piece_off or d.dbuf):
                    self._cut_piece(fl, side, d)
                if d.pieces:
                    self._flush_pieces(fl, side, d, 0)
                d.hbuf.clear()
                d.pdu_rem -= size
                d.damaged = True
                d.foff += size
                self._gap_event(fl, side, off, size, frame, ts, 1)
                if d.pdu_rem == 0:
                    self._end_damaged(fl, side, d)
                else:
                    d.st = S_SKIP
                    d.skip_rem = d.pdu_rem
                return
            elif st == S_BODY and size < d.pdu_rem:
                self._flow_expert(fl, X_PDU_IN_GAP, frame, ts, d.pdu_off, d.pdu_type, 0, side)
                d.pdu_rem -= size
                d.st = S_SKIP
                d.skip_rem = d.pdu_rem
                resumed = True
            elif st == S_TENT and size < d.tent_rem:
                d.tent_rem -= size
                d.skipped += size
                resumed = True
            if resumed:
                d.foff += size
                self._gap_event(fl, side, off, size, frame, ts, 1)
                return
        # framing cannot continue across this gap
        if st == S_BODY:
            self._flow_expert(fl, X_PDU_IN_GAP, frame, ts, d.pdu_off, d.pdu_type, 0, side)
        if st in (S_BODY, S_PDV_HDR, S_PDV_DATA, S_SKIP):
            self._abort_pdu(fl, side, d)
        elif st in (S_SYNC, S_PROBE, S_TENT):
            d.skipped += len(d.rbuf)
        d.hbuf.clear()
        if size > 0:
            d.foff += size
        self._gap_event(fl, side, off, size, frame, ts, 0)
        self._lose_sync(d)
        d.lost = d.synced

    def _gap_event(self, fl, side, off, size, frame, ts, resumed):
        if fl.confirmed:
            fl.run_at = None
            self._events.append((EV_GAP, fl.id, self._dir(fl, side), off, size, frame, ts, resumed))

    def _fr_eof(self, fl, side, d, frame, ts):
        st = d.st
        if st == S_HDR and d.hbuf:
            self._flow_expert(fl, X_PDU_TRUNCATED, frame, ts, d.pdu_off, d.hbuf[0], 6 - len(d.hbuf), side)
        elif st in (S_BODY, S_PDV_HDR, S_PDV_DATA, S_SKIP):
            self._flow_expert(fl, X_PDU_TRUNCATED, frame, ts, d.pdu_off, d.pdu_type, d.pdu_rem, side)
            self._abort_pdu(fl, side, d)
        elif st in (S_SYNC, S_PROBE, S_TENT):
            left = d.skipped + len(d.rbuf) + (d.tent_rem if st == S_TENT else 0)
            if left:
                self._flow_expert(fl, X_UNSYNCED_BYTES, frame, ts, d.foff, left, 0, side)
        d.hbuf.clear()
        d.st = S_DEAD
