# C-level declarations of the compiled core (_core.pyx): constants, the
# per-connection structs and the byte-order helpers.  Names follow the twin
# (_pycore.py), which is the readable specification.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from cpython.ref cimport PyObject

cdef extern from *:
    # 128-bit arithmetic for the few sums of timestamps that may leave int64
    ctypedef long long i128 "__int128"

# --- event kinds, flags, reasons, expert codes (same values as events.py) ----
cdef enum:
    EV_FLOW = 1
    EV_PDU = 2
    EV_PDATA = 3
    EV_GAP = 4
    EV_EXPERT = 5
    EV_FLOW_END = 6
    EV_TCP_ATTEMPT = 7
    EV_PDATA_RUN = 8

    PF_FINAL = 1
    PF_TRUNCATED = 2

    END_FIN = 1
    END_RST = 2
    END_IDLE = 3
    END_EOF = 4
    END_EVICTED = 5
    END_REUSED = 6

    ATTEMPT_UNANSWERED = 1
    ATTEMPT_REFUSED = 2
    ATTEMPT_NO_DATA = 3

    X_CAPTURE_TRUNCATED = 1
    X_CAPTURE_DAMAGED = 2
    X_LINKTYPE_UNSUPPORTED = 3
    X_IP_FRAGMENT = 4
    X_TCP_OVERLAP_CONFLICT = 5
    X_TCP_SEQ_JUMP = 6
    X_OOO_BUDGET = 7
    X_FLOW_TABLE_FULL = 8
    X_PDU_INVALID = 9
    X_RESYNC = 10
    X_MIDSTREAM = 11
    X_PDU_OVER_MAX = 12
    X_PDU_LENGTH_UNEXPECTED = 13
    X_PDV_TOO_SMALL = 14
    X_PDV_OVERRUN = 15
    X_PDV_FLAGS_INVALID = 16
    X_PDV_HEADER_CUT = 17
    X_PDU_TRUNCATED = 18
    X_UNSYNCED_BYTES = 19
    X_COMMAND_TOO_LARGE = 20
    X_PDV_CONTEXT_EVEN = 21
    X_PDU_IN_GAP = 22
    X_OOO_SEGMENTS = 23

# --- bounds shared with _pycore.py (keep in step); exported to Python --------
cpdef enum:
    SYNC_WINDOW = 256 * 1024
    MAX_PIECES = 4096
    RUN_ROW = 9  # int64s per PDU in an EV_PDATA_RUN's rows
    MAX_OOO_SEGMENTS = 4096
    MAX_ASSOC_SYNC = 1 << 20
    MAX_FIXED_PDU = 1024
    PCAP_MAX_RECORD = 262144
    PCAPNG_MAX_BLOCK = 64 << 20
    MAX_RESYNC_SECONDS = 7 * 86400

    # candidate verdicts (check_candidate)
    C_REJECT = 0
    C_NEED = 1
    C_ACCEPT = 2
    C_TENTATIVE = 3

cdef enum:
    # framer states
    S_HDR = 0
    S_BODY = 1
    S_PDV_HDR = 2
    S_PDV_DATA = 3
    S_SKIP = 4
    S_SYNC = 5
    S_PROBE = 6
    S_TENT = 7
    S_DEAD = 8

    # flow states
    F_LIVE = 0
    F_CLOSED = 1
    F_IGNORED = 2

    # TCP flags
    TH_FIN = 0x01
    TH_SYN = 0x02
    TH_RST = 0x04
    TH_ACK = 0x10

    # capture formats
    FMT_UNKNOWN = 0
    FMT_PCAP = 1
    FMT_PCAPNG = 2

    # outcome of framing one piece of stream data
    FR_DONE = 0  # all bytes consumed
    FR_REPLAY = 1  # a search found a boundary: replay the bytes held since
    FR_DEAD = 2  # the direction is no longer framed

    # canonical connection key: ipver(1) ip_a(16) port_a(2) ip_b(16) port_b(2)
    KEY_LEN = 37

    # counters, in the order of stats()
    CT_RECORDS = 0
    CT_BYTES
    CT_NON_IP
    CT_NON_TCP
    CT_IP_FRAGMENTS
    CT_UNSUPPORTED_LINK
    CT_TCP_PACKETS
    CT_DICOM_PACKETS
    CT_OTHER_TCP_PACKETS
    CT_PARTITION_SKIPPED
    CT_FLOWS
    CT_DICOM_FLOWS
    CT_TRUNCATED_RECORDS
    CT_DAMAGED_RECORDS
    CT_GAPS
    CT_GAP_BYTES
    CT_PDUS
    CT_RETRANSMISSIONS
    CT_OOO_SEGMENTS
    CT_OVERLAP_CONFLICTS
    CT_EVICTED_FLOWS
    CT_OOO_FORCED
    N_COUNTERS


# --- structs ----------------------------------------------------------------
cdef enum:
    EV_PIECE = 100  # one PDV piece; follows its EV_PDATA record in a batch

cdef struct EvRec:
    # One event as the walk records it; ``pop_events()`` (or a reader's
    # ``next_events()``) makes its tuple (layouts in events.py): ``v`` holds
    # its integers, addresses and the stats of EV_FLOW_END included, in the
    # order ``engine_events`` reads them.  Bytes are either a bytes object
    # made while the GIL was held, or malloc'd memory when the walk ran
    # without it (``engine_walk``); the record owns either.
    int kind
    long long v[14]
    PyObject *obj
    uint8_t *mem
    Py_ssize_t mlen

cdef struct EvBatch:
    # the events of one walk, oldest first
    EvRec *recs
    Py_ssize_t n
    Py_ssize_t cap

cdef struct Buf:
    # a malloc'd growable byte buffer
    uint8_t *p
    Py_ssize_t n
    Py_ssize_t cap

cdef struct Mark:
    # rbuf[idx:] (up to the next mark) came from this frame
    Py_ssize_t idx
    long long frame
    long long ts

cdef struct Seg:
    # an out-of-order segment held until the bytes before it arrive
    long long off
    Py_ssize_t n
    uint8_t *data
    long long frame
    long long ts

cdef struct Replay:
    # search buffer detached when a PDU boundary was found; replayed piece by piece
    uint8_t *buf
    Py_ssize_t n
    Mark *marks
    Py_ssize_t nmarks
    Py_ssize_t j  # next mark
    Py_ssize_t pos  # the boundary

cdef struct Iface:
    # pcapng interface: link type, timestamp resolution, offset (s)
    int lt
    int resol
    bint pow2
    long long tsoff

cdef enum:
    PARTITION_PACKET_WEIGHT = 256  # a packet's cost in payload bytes, for owners (see _pycore)
    MAX_PARTITION_KEYS = 1 << 17  # connections whose owner is remembered

cdef struct OwnerSlot:
    # one connection's owning worker (``Engine(partition=...)``); owner -1: empty
    uint8_t key[40]
    int owner

cdef enum:
    # Flow.ac_state (Engine.trim_heads)
    AC_NONE = 0  # no A-ASSOCIATE-AC yet
    AC_KNOWN = 1  # one, read: ctx_syntax holds what it accepted
    AC_UNSURE = 2  # another AC, an RQ after it, or one not read: never cut again

cdef enum:
    HIST_SPANS = 32  # in-order segments noted before their bytes are copied into the history

cdef struct HistPend:
    # In-order segments a direction received in this ``feed()`` call whose
    # bytes are not yet copied into its history ring: where they lie in the
    # caller's buffer (or the carry), oldest first.  The ring follows this
    # header in the same allocation.  Directions with pending spans are
    # linked (``prev``/``next``) so that ``feed()`` can copy them all before
    # it returns.
    HistPend *prev
    HistPend *next
    bint linked
    int head
    int cnt
    long long total
    const uint8_t *ptr[HIST_SPANS]
    long long off[HIST_SPANS]
    Py_ssize_t n[HIST_SPANS]


cdef struct Dir:
    # one direction of a connection: segment ordering plus the PDU framer
    # --- TCP
    bint started
    bint syn
    uint32_t next_seq
    long long offset
    long long fin_off
    bint eof
    Seg *ooo  # held segments ooo[ooo_head : ooo_head + ooo_n], sorted, disjoint
    Py_ssize_t ooo_head
    Py_ssize_t ooo_n
    Py_ssize_t ooo_cap
    long long ooo_bytes
    long long ooo_since
    HistPend *hp  # the history ring's allocation: pending spans, then the ring (NULL: none)
    uint8_t *hist  # ring of the last `history` bytes delivered, inside ``hp``'s block
    long long hist_from
    long long nbytes
    long long retrans
    long long ooo_count
    long long zero_window
    bint payload
    # --- framer
    int st
    long long foff
    Buf rbuf  # bytes held while searching for a PDU boundary
    long long rbuf_off
    Mark *rmarks
    Py_ssize_t rmarks_n
    Py_ssize_t rmarks_cap
    Py_ssize_t scan
    long long skipped
    long long heur
    bint lost
    bint synced
    long long tent_rem
    uint8_t hbuf[6]  # PDU or PDV item header being assembled
    int hlen
    int pdu_type
    long long pdu_len
    long long pdu_rem
    long long pdu_off
    long long f0
    long long f1
    long long t0
    long long t1
    Buf pbuf  # body of an association PDU
    long long skip_rem
    bint damaged
    int pdv_ctx
    int pdv_mch
    long long pdv_len
    long long pdv_pos
    long long pdv_rem
    long long piece_off
    long long store_limit
    long long msg_base
    bint overrun
    PyObject *dobj  # bytes object being filled with the current piece (GIL held; NULL: none)
    uint8_t *dmem  # or memory being filled with it (walked without the GIL; NULL: none)
    Py_ssize_t dlen
    Py_ssize_t dcap
    EvRec *pieces  # EV_PIECE records not yet handed out
    Py_ssize_t pieces_n
    Py_ssize_t pieces_cap
    long long pieces_bytes
    # per presentation context (512, lazily): [ctx] data set bytes so far;
    # [256 + ctx] where its head was cut (Engine.trim_heads; 0: not cut)
    long long *msg_off
    long long max_len

cdef struct Flow:
    long long id
    uint8_t key[40]  # KEY_LEN bytes, zero padded
    uint64_t h
    int ipver
    uint8_t ip[2][16]
    int port[2]
    bint is_port
    bint heuristic_only
    int state
    bint confirmed
    int client
    int syn_side
    int synack_side
    long long isn
    long long syn_ts
    long long synack_ts
    long long ack_ts
    long long last_ts
    long long last_frame  # frame of its latest packet (the LRU order)
    # its EV_PDATA_RUN being added to: record index + 1 in the batch with
    # serial run_batch (0: none); any other event of the connection ends it
    Py_ssize_t run_at
    long long run_batch
    # Engine.trim_heads: AC_NONE until an A-ASSOCIATE-AC, AC_KNOWN when its one
    # AC gave ``ctx_syntax`` (256: 1 + walk syntax per context ID, 0: unknown)
    int ac_state
    uint8_t *ctx_syntax
    Dir dirs[2]
    Flow *older  # LRU list: least recently active first
    Flow *newer


# --- byte order -----------------------------------------------------------
cdef inline uint16_t be16(const uint8_t *p) noexcept nogil:
    return <uint16_t>((p[0] << 8) | p[1])

cdef inline uint16_t le16(const uint8_t *p) noexcept nogil:
    return <uint16_t>(p[0] | (p[1] << 8))

cdef inline uint32_t be32(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]

cdef inline uint32_t le32(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[3]) << 24) | ((<uint32_t>p[2]) << 16) | ((<uint32_t>p[1]) << 8) | p[0]

cdef inline uint16_t rd16(const uint8_t *p, bint big) noexcept nogil:
    return be16(p) if big else le16(p)

cdef inline uint32_t rd32(const uint8_t *p, bint big) noexcept nogil:
    return be32(p) if big else le32(p)

cdef inline uint64_t rd64(const uint8_t *p, bint big) noexcept nogil:
    if big:
        return ((<uint64_t>be32(p)) << 32) | be32(p + 4)
    return ((<uint64_t>le32(p + 4)) << 32) | le32(p)


# --- walking capture bytes on another thread (used by _filereader) ----------
# ``engine`` is an Engine (a borrowed reference the caller keeps alive).
# Between engine_attach and engine_detach only the walking thread runs the
# engine: engine_walk is feed() without the GIL, engine_take_events detaches
# the events recorded since the last call, and engine_events (GIL held, any
# thread) makes their tuples and frees the batch.
cdef int engine_attach(object engine) except -1
cdef void engine_detach(object engine) noexcept
cdef int engine_walk(void *engine, const uint8_t *data, Py_ssize_t n) except -1 nogil
cdef EvBatch *engine_take_events(void *engine) noexcept nogil
cdef list engine_events(EvBatch *batch)
cdef void batch_free(EvBatch *batch) noexcept nogil
cdef Py_ssize_t batch_bytes(EvBatch *batch) noexcept nogil
