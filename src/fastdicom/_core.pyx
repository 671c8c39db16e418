"""Compiled core: capture bytes in, DICOM events out.

An exact port of the pure-Python twin ``_pycore.py``, which is the readable
specification (its docstring explains the data flow and the framer): for any
input, cut into ``feed()`` calls in any way, both emit the same event tuples
(see ``events``) and the same ``stats()``.

What the port changes is only how the work is done:

- capture records are processed in place in the caller's buffer; only a record
  split across two ``feed()`` calls is copied (into the carry buffer), and the
  bytes searched while a damaged capture is resynchronised;
- connections are C structs in an open-addressing hash table on the canonical
  37-byte key, with an intrusive LRU list in the order of the twin's
  OrderedDict;
- in-order TCP payload goes straight from the packet to the PDU framer; bytes
  are copied only into the history ring, the PDV piece being handed out (up to
  ``data_limit``), association PDU bodies, and out-of-order segments;
- the history ring is filled lazily: for each direction, where its in-order
  segments lie is noted (``HistPend``), and just the last ``history`` bytes of
  them are copied, when a retransmission is compared or before ``feed()``
  returns (interleaved connections no longer copy at every switch);
- workers decide the owner of each connection in a table of keys
  (``OwnerSlot``): one probe per packet of a connection that is not theirs;
- the walk records events as C structs (``EvRec``) and makes no Python
  object, so it is declared ``nogil``: ``feed()`` runs it holding the GIL,
  and a reading thread can run it without (``engine_walk``, used by
  ``_filereader``), leaving only the tuples to the decoding thread;
  ``pop_events()`` makes them, per event, never per packet.
"""

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memmove, memcmp, memset
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF

from .errors import CaptureFormatError
from .events import *  # noqa: F401,F403  (event kinds, flags, expert codes)

cdef extern from "Python.h":
    void _tuple_set "PyTuple_SET_ITEM"(object t, Py_ssize_t i, PyObject *o)
    object PyTuple_New(Py_ssize_t n)
    # Bytes objects inside the walk, which is declared nogil: made only while
    # feed() holds the GIL (``Engine._threaded`` false); a walk without the
    # GIL fills malloc'd memory instead, and only ever passes NULL to
    # _decref_held (a no-op then).
    PyObject *_new_bytes_held "PyBytes_FromStringAndSize"(const char *s, Py_ssize_t n) nogil
    char *_bytes_str "PyBytes_AS_STRING"(PyObject *o) nogil
    void _decref_held "Py_XDECREF"(PyObject *o) nogil

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FD_PREFETCH(p) __builtin_prefetch((const void *)(p))
    #else
    #define FD_PREFETCH(p) ((void)0)
    #endif
    """
    # a hint to the CPU: fetch this cache line now (never faults, even past the end)
    void FD_PREFETCH(const void *p) nogil

cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>
    /* memcmp's order of two 16-byte addresses (<0, 0, >0) and the equality of
       two 40-byte connection keys, inline: once or twice per packet, a call to
       libc's memcmp cost more than the rest of the connection lookup */
    #if defined(__GNUC__) || defined(__clang__)
    static inline int fd_addr_cmp16(const unsigned char *a, const unsigned char *b) {
        uint64_t x, y;
        int k;
        for (k = 0; k < 16; k += 8) {
            memcpy(&x, a + k, 8);
            memcpy(&y, b + k, 8);
            if (x != y) {
                x = __builtin_bswap64(x);  /* byte order of memory: first byte most significant */
                y = __builtin_bswap64(y);
                return x < y ? -1 : 1;
            }
        }
        return 0;
    }
    #else
    #define fd_addr_cmp16(a, b) memcmp((a), (b), 16)
    #endif
    static inline int fd_key_eq40(const unsigned char *a, const unsigned char *b) {
        uint64_t x, y, acc = 0;
        int k;
        for (k = 0; k < 40; k += 8) {
            memcpy(&x, a + k, 8);
            memcpy(&y, b + k, 8);
            acc |= x ^ y;
        }
        return acc == 0;
    }
    """
    int fd_addr_cmp16(const uint8_t *a, const uint8_t *b) nogil
    bint fd_key_eq40(const uint8_t *a, const uint8_t *b) nogil

cdef extern from "<arpa/inet.h>" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, unsigned int size)
    enum:
        AF_INET
        AF_INET6

IMPLEMENTATION = "cython"

DEFAULT_PORTS = (104, 11112)

COMMAND_GROUP_LENGTH = b"\x00\x00\x00\x00\x04\x00\x00\x00"  # (0000,0000) UL, 4 bytes
cdef const uint8_t *_CGL = b"\x00\x00\x00\x00\x04\x00\x00\x00"

cdef enum:
    PREFETCH_AHEAD = 4096  # bytes of capture asked into the cache ahead of the walk (_parse)


_COUNTER_NAMES = (
    "records", "bytes", "non_ip", "non_tcp", "ip_fragments", "unsupported_link",
    "tcp_packets", "dicom_packets", "other_tcp_packets", "partition_skipped",
    "flows", "dicom_flows", "truncated_records", "damaged_records", "gaps",
    "gap_bytes", "pdus", "retransmissions", "ooo_segments", "overlap_conflicts",
    "evicted_flows", "ooo_forced",
)
_FORMAT_NAMES = ("unknown", "pcap", "pcapng")

cdef long long NS = 1000000000
cdef long long I64_MAX = 0x7FFFFFFFFFFFFFFF
cdef long long I64_MIN = -I64_MAX - 1


# ============================================================ small helpers
cdef inline long long lmin(long long a, long long b) noexcept nogil:
    return a if a < b else b

cdef inline long long lmax(long long a, long long b) noexcept nogil:
    return a if a > b else b


cdef int buf_reserve(Buf *b, Py_ssize_t need) except -1 nogil:
    """Make room for ``need`` bytes in all."""
    cdef Py_ssize_t cap
    cdef uint8_t *p
    if need <= b.cap:
        return 0
    cap = b.cap * 2
    if cap < need:
        cap = need
    if cap < 256:
        cap = 256
    p = <uint8_t *>realloc(b.p, cap)
    if p == NULL:
        with gil: raise MemoryError()
    b.p = p
    b.cap = cap
    return 0


cdef int grow_array(void **items, Py_ssize_t *cap, size_t item_size, Py_ssize_t first) except -1 nogil:
    """Double the capacity of a malloc'd array (``first`` items at first)."""
    cdef Py_ssize_t new_cap = cap[0] * 2 if cap[0] else first
    cdef void *p = realloc(items[0], new_cap * item_size)
    if p == NULL:
        with gil: raise MemoryError()
    items[0] = p
    cap[0] = new_cap
    return 0


cdef inline int buf_append(Buf *b, const uint8_t *src, Py_ssize_t n) except -1 nogil:
    if n <= 0:
        return 0
    if b.n + n > b.cap:
        buf_reserve(b, b.n + n)
    memcpy(b.p + b.n, src, n)
    b.n += n
    return 0


cdef inline void buf_free(Buf *b) noexcept nogil:
    free(b.p)
    b.p = NULL
    b.n = 0
    b.cap = 0


cdef inline void buf_clear(Buf *b) noexcept nogil:
    """Empty the buffer; give back a large allocation (as the twin drops its bytearray)."""
    b.n = 0
    if b.cap > 65536:
        buf_free(b)


cdef inline object mkbytes(const uint8_t *p, Py_ssize_t n):
    if n <= 0:
        return b""
    return (<char *>p)[:n]


cdef object format_ip(int ipver, const uint8_t *raw):
    cdef char out[64]
    if inet_ntop(AF_INET if ipver == 4 else AF_INET6, raw, out, 64) == NULL:
        raise ValueError("bad address")
    return out.decode("ascii")


cdef inline uint64_t fnv1a(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 0xCBF29CE484222325ULL
    cdef Py_ssize_t k
    for k in range(n):
        h = (h ^ p[k]) * 0x100000001B3ULL
    return h


cdef inline void hist_copy(uint8_t *hist, long long H, long long off, const uint8_t *data,
                           Py_ssize_t n) noexcept nogil:
    """The last ``min(n, H)`` of ``n`` bytes at stream offset ``off`` into the ring."""
    cdef long long m = lmin(n, H)
    cdef long long i0 = (off + n - m) % H
    cdef long long first = lmin(m, H - i0)
    memcpy(hist + i0, data + n - m, first)
    memcpy(hist, data + n - m + first, m - first)


cdef inline uint64_t key_hash(const uint8_t *key) noexcept nogil:
    """Table hash of a 40-byte (zero-padded) key; not the partition hash."""
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL, w
    cdef int k
    for k in range(5):
        memcpy(&w, key + 8 * k, 8)
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL
        h ^= h >> 29
    return h


# ================================================== candidate PDU headers
cdef inline bint ae_ok(const uint8_t *b) noexcept nogil:
    """A 16-byte AE title field: printable ISO 646 or NUL padding, not blank."""
    cdef bint seen = False
    cdef int k
    cdef uint8_t c
    for k in range(16):
        c = b[k]
        if c == 0 or c == 0x20:
            continue
        if c < 0x21 or c > 0x7E:
            return False
        seen = True
    return seen


cdef inline bint pdu_header_plausible(int t, long long L, long long sync_max) noexcept nogil:
    """The weak check applied to the PDU that follows a candidate."""
    if t == 4:
        return 6 <= L and L <= sync_max
    if t == 1 or t == 2:
        return 68 <= L and L <= MAX_ASSOC_SYNC
    if 3 <= t <= 7:
        return L == 4
    return False


cdef int check_cand(const uint8_t *b, Py_ssize_t p, Py_ssize_t n, long long sync_max,
                    long long *Lout) noexcept nogil:
    """C version of ``check_candidate``: the verdict, with the length in ``Lout``."""
    cdef Py_ssize_t avail = n - p, end, q
    cdef long long L, pl
    cdef int t, ctx, mch, il
    cdef uint8_t x0, x1, x2, x3
    cdef bint ok
    Lout[0] = 0
    if avail < 1:
        return C_NEED
    t = b[p]
    if t < 1 or t > 7:
        return C_REJECT
    if avail < 2:
        return C_NEED
    if b[p + 1] != 0:
        return C_REJECT
    if avail < 6:
        return C_NEED
    L = be32(b + p + 2)
    if t == 1 or t == 2:
        # PS3.8 9.3.2: version(2) reserved(2) called(16) calling(16) reserved(32) items
        if L < 72 or L > MAX_ASSOC_SYNC:
            return C_REJECT
        if avail < 78:
            return C_NEED
        if be16(b + p + 6) != 1:
            return C_REJECT
        if not (ae_ok(b + p + 10) and ae_ok(b + p + 26)):
            return C_REJECT
        il = be16(b + p + 76)
        if b[p + 74] != 0x10 or b[p + 75] != 0 or il < 1 or il > 64:
            return C_REJECT
        Lout[0] = L
        return C_ACCEPT
    if t == 4:
        if L < 6 or L > sync_max:
            return C_REJECT
        if avail < 12:
            return C_NEED
        pl = be32(b + p + 6)
        ctx = b[p + 10]
        mch = b[p + 11]
        if pl < 2 or pl + 4 > L or not (ctx & 1) or mch > 3:
            return C_REJECT
        if (mch & 1) and pl >= 10:
            if avail < 20:
                return C_NEED
            if memcmp(b + p + 12, _CGL, 8) == 0:
                Lout[0] = L
                return C_ACCEPT
        end = p + 6 + L
        if end + 6 > n:
            if 12 + L > SYNC_WINDOW:
                # too long to verify: believed only if its first PDV fills it (see the twin)
                if pl + 4 != L:
                    return C_REJECT
                Lout[0] = L
                return C_TENTATIVE
            return C_NEED
        q = p + 6
        while q < end:  # the PDV items must tile the PDU exactly
            if end - q < 6:
                return C_REJECT
            pl = be32(b + q)
            if pl < 2 or q + 4 + pl > end or not (b[q + 4] & 1) or b[q + 5] > 3:
                return C_REJECT
            q += 4 + pl
        if b[end + 1] != 0 or not pdu_header_plausible(b[end], be32(b + end + 2), sync_max):
            return C_REJECT
        Lout[0] = L
        return C_ACCEPT
    # RJ, RELEASE RQ/RP, ABORT: fixed 4-byte bodies (PS3.8 9.3.4, 9.3.6-9.3.8)
    if L != 4:
        return C_REJECT
    if avail < 10:
        return C_NEED
    x0 = b[p + 6]
    x1 = b[p + 7]
    x2 = b[p + 8]
    x3 = b[p + 9]
    if t == 3:
        ok = x0 == 0 and (x1 == 1 or x1 == 2) and 1 <= x2 <= 3 and 1 <= x3 <= 7
    elif t == 7:
        ok = x0 == 0 and x1 == 0 and x2 <= 2 and x3 <= 6
    else:
        ok = x0 == 0 and x1 == 0 and x2 == 0 and x3 == 0
    if ok:
        Lout[0] = L
        return C_ACCEPT
    return C_REJECT


cdef long long max_length(const uint8_t *body, Py_ssize_t n) noexcept nogil:
    """C version of ``parse_max_length``."""
    cdef Py_ssize_t p = 68, q, end
    cdef int it, st
    cdef long long il, sl
    while p + 4 <= n:
        it = body[p]
        il = be16(body + p + 2)
        if it == 0x50:
            q = p + 4
            end = p + 4 + il
            if end > n:
                end = n
            while q + 4 <= end:
                st = body[q]
                sl = be16(body + q + 2)
                if st == 0x51 and sl == 4 and q + 8 <= end:
                    return be32(body + q + 4)
                q += 4 + sl
            return -1
        p += 4 + il
    return -1


# --------------------------------------- data set heads cut (trim_heads)
cdef int ts_code(const uint8_t *u, Py_ssize_t n) noexcept nogil:
    """1 + the walk syntax (0 implicit VR LE, 1 explicit VR LE, 2 explicit VR
    BE) of a transfer syntax UID, trailing NUL/space padding aside, for the
    three uncompressed ones; 0 for any other (the twin's ``_TS_CODES``)."""
    while n > 0 and (u[n - 1] == 0 or u[n - 1] == 32):
        n -= 1
    if n < 17 or memcmp(u, b"1.2.840.10008.1.2", 17) != 0:
        return 0
    if n == 17:
        return 1
    if n == 19 and u[17] == 46 and (u[18] == 49 or u[18] == 50):  # ".1", ".2"
        return 2 if u[18] == 49 else 3
    return 0


cdef inline Py_ssize_t item_end(const uint8_t *b, Py_ssize_t p, Py_ssize_t n) noexcept nogil:
    """Where the item or sub-item at ``b[p]`` ends (type, reserved byte,
    2-byte big-endian length, value: PS3.8 9.3), or -1 when it runs past ``n``."""
    cdef Py_ssize_t e
    if p + 4 > n:
        return -1
    e = p + 4 + be16(b + p + 2)
    return e if e <= n else -1


cdef bint ac_syntaxes(const uint8_t *b, Py_ssize_t n, uint8_t *out) noexcept nogil:
    """Read what an A-ASSOCIATE-AC body (after the 6-byte PDU header) accepts
    into ``out[context ID]``: ``ts_code`` of its transfer syntax, or 0 when
    the context is not accepted (its result is not 0), names no transfer
    syntax or more than one, has another sub-item, or is answered twice.
    False (``out`` then means nothing) unless every item and sub-item lies
    whole inside its parent and there are at most 256 presentation context
    items (``pdu.MAX_CONTEXTS``): the decoder's ``pdu.decode_associate``
    then reads the same transfer syntax for every context this gives one."""
    cdef Py_ssize_t p = 68, s, e, q, qe
    cdef int items = 0, n_ts, code, cid
    cdef bint plain
    cdef uint8_t seen[256]
    if n < 68:
        return False
    memset(out, 0, 256)
    memset(seen, 0, 256)
    while p < n:
        e = item_end(b, p, n)
        if e < 0:
            return False
        if b[p] == 0x21:
            items += 1
            s = p + 4
            if items > 256 or e - s < 4:
                return False
            cid = b[s]
            q = s + 4
            n_ts = 0
            code = 0
            plain = True
            while q < e:
                qe = item_end(b, q, e)
                if qe < 0:
                    return False
                if b[q] == 0x40:
                    n_ts += 1
                    code = ts_code(b + q + 4, qe - q - 4)
                else:
                    plain = False
                q = qe
            out[cid] = code if not seen[cid] and b[s + 2] == 0 and n_ts == 1 and plain else 0
            seen[cid] = 1
        p = e
    return True


cdef long long head_cut(const uint8_t *b, long long n, int syntax, long long limit) noexcept nogil:
    """Where the head of a data set may end, or -1.  ``b[:n]`` are its first
    bytes, ``syntax`` its walk syntax (0 implicit VR LE, 1 explicit VR LE, 2
    explicit VR BE), ``limit`` the bytes of each data set handed out::

        top-level elements of defined length ... | (7FE0,0010) header | value ...
        0                                        X                    cut   X+hdr+vl > limit

    The cut is the value offset of a top-level Pixel Data element (not an
    explicit SQ) whose value runs past ``limit``, reached over elements of
    defined length only.  Every walk of the head (``walk_dataset``: the
    decoder's depth check, the summary's leading values) then stops at X,
    cut there short of its value, whether the head ends at the cut or at
    ``limit``, and does the same as before X: no decision of the walk before
    X reads a byte at or past the cut (the one that peeks past an element's
    header, ``_tw_private_sq``, only looks inside the element's value).  So
    the bytes past the cut need not be copied out at all."""
    cdef long long p = 0, vo, end
    cdef unsigned int tag, vl
    cdef bint big = syntax == 2
    cdef int vrk = _TW_VRK_INVALID
    while True:
        if syntax == 0:
            if p + 8 > n:
                return -1
            vl = le32(b + p + 4)
            vo = p + 8
        else:
            if p + 6 > n:
                return -1
            vrk = _tw_vr_kind(b[p + 4], b[p + 5])
            if vrk == _TW_VRK_INVALID:
                return -1
            if vrk == _TW_VRK_SHORT:
                if p + 8 > n:
                    return -1
                vl = rd16(b + p + 6, big)
                vo = p + 8
            else:
                if p + 12 > n:
                    return -1
                vl = rd32(b + p + 8, big)
                vo = p + 12
        tag = (<unsigned int>rd16(b + p, big) << 16) | rd16(b + p + 2, big)
        if vl == 0xFFFFFFFFu or (tag >> 16) == 0xFFFE:
            return -1
        end = vo + vl
        if end <= n:
            p = end
            continue
        if tag == 0x7FE00010u and end > limit and (syntax == 0 or vrk != _TW_VRK_SQ):
            return vo
        return -1


def ac_transfer_syntaxes(const uint8_t[::1] body):
    """``ac_syntaxes`` of an A-ASSOCIATE-AC body: {context ID: 1 + walk
    syntax} for the contexts it gives one, or None."""
    cdef uint8_t out[256]
    cdef int k
    if body.shape[0] < 68 or not ac_syntaxes(&body[0], body.shape[0], out):
        return None
    return {k: out[k] for k in range(256) if out[k]}


def data_set_head_cut(const uint8_t[::1] head, int syntax, long long limit):
    """``head_cut`` of the bytes ``head`` (the twin's ``data_set_head_cut``)."""
    if head.shape[0] == 0:
        return -1
    return head_cut(&head[0], head.shape[0], syntax, limit)


# ========================================================== public helpers
def check_candidate(const uint8_t[::1] b, Py_ssize_t p, Py_ssize_t n, long long sync_max):
    """Does a PDU plausibly start at ``b[p]``?  Returns ``(verdict, length)``
    (see the twin's docstring).  ``n`` bounds the bytes looked at."""
    cdef long long L = 0
    cdef int v
    if p < 0 or n > b.shape[0]:
        raise IndexError("check_candidate: need 0 <= p and n <= len(b)")
    if n <= 0 or p >= n:
        return C_NEED, 0
    v = check_cand(&b[0], p, n, sync_max, &L)
    return v, L


def parse_max_length(const uint8_t[::1] body):
    """Maximum Length (user information sub-item 0x51) of an A-ASSOCIATE-RQ/AC
    body, or -1."""
    if body.shape[0] == 0:
        return -1
    return max_length(&body[0], body.shape[0])


def fnv1a64(const uint8_t[::1] data):
    """64-bit FNV-1a; partitions connections between workers (same in both twins)."""
    if data.shape[0] == 0:
        return fnv1a(NULL, 0)
    return fnv1a(&data[0], data.shape[0])


# ======================================================= per-connection state
cdef void dir_free(Dir *d) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(d.ooo_n):
        free(d.ooo[d.ooo_head + k].data)
    free(d.ooo)
    d.ooo = NULL
    d.ooo_n = d.ooo_head = d.ooo_cap = 0
    free(d.hp)  # the history ring is in the same block
    d.hp = NULL
    d.hist = NULL
    buf_free(&d.rbuf)
    free(d.rmarks)
    d.rmarks = NULL
    d.rmarks_n = d.rmarks_cap = 0
    buf_free(&d.pbuf)
    dir_drop_dbuf(d)
    dir_drop_pieces(d)
    free(d.pieces)
    d.pieces = NULL
    d.pieces_cap = 0
    free(d.msg_off)
    d.msg_off = NULL


cdef inline void rec_free(EvRec *r) noexcept nogil:
    """Drop the bytes a record owns (an object only exists while feed() holds the GIL)."""
    _decref_held(r.obj)
    r.obj = NULL
    free(r.mem)
    r.mem = NULL
    r.mlen = 0


cdef void dir_drop_pieces(Dir *d) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(d.pieces_n):
        rec_free(&d.pieces[k])
    d.pieces_n = 0


cdef void dir_drop_dbuf(Dir *d) noexcept nogil:
    _decref_held(d.dobj)
    d.dobj = NULL
    free(d.dmem)
    d.dmem = NULL
    d.dlen = d.dcap = 0


cdef inline void dir_forget_cuts(Dir *d) noexcept nogil:
    """No data set head of this direction stays cut (Engine.trim_heads)."""
    if d.msg_off != NULL:
        memset(d.msg_off + 256, 0, 256 * sizeof(long long))


cdef void dir_drop_ooo(Dir *d) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(d.ooo_n):
        free(d.ooo[d.ooo_head + k].data)
    d.ooo_n = 0
    d.ooo_head = 0


cdef int marks_push(Dir *d, Py_ssize_t idx, long long frame, long long ts) except -1 nogil:
    if d.rmarks_n == d.rmarks_cap:
        grow_array(<void **>&d.rmarks, &d.rmarks_cap, sizeof(Mark), 16)
    d.rmarks[d.rmarks_n].idx = idx
    d.rmarks[d.rmarks_n].frame = frame
    d.rmarks[d.rmarks_n].ts = ts
    d.rmarks_n += 1
    return 0


cdef void flow_free(Flow *fl) noexcept nogil:
    dir_free(&fl.dirs[0])
    dir_free(&fl.dirs[1])
    free(fl.ctx_syntax)
    free(fl)


cdef inline int dir_of(Flow *fl, int side) noexcept nogil:
    return 0 if side == fl.client else 1


# ================================================================== engine
cdef class Engine:
    """Streaming analyser core: capture bytes in, events out (see ``events``).

    Same parameters and defaults as the twin ``_pycore.Engine`` (documented
    there).  Integer parameters must fit in a signed 64-bit integer.
    """

    cdef readonly object ports
    cdef readonly bint heuristic
    cdef readonly long long ooo_budget, data_limit, chunk_size, max_assoc_pdu
    cdef readonly long long max_command, max_pdu, max_flows, idle_timeout
    cdef readonly long long heuristic_window, sync_max_pdu, part_k, part_n, history
    cdef uint8_t _portmap[8192]
    cdef long long _sweep_step

    cdef EvBatch *_batch  # events not yet handed out (NULL: none)
    cdef long long _batch_serial  # batches handed out so far (see Flow.run_at)
    cdef readonly bint pdata_runs, trim_heads
    cdef bint _threaded  # walked without the GIL at least once: piece bytes are malloc'd
    cdef bint _attached  # a reading thread walks it now (engine_attach): hands off
    cdef long long cnt[N_COUNTERS]

    # capture reader
    cdef Buf _carry  # unconsumed bytes of earlier feed() calls
    cdef Py_ssize_t _pos  # parse position in the current buffer
    cdef long long _foff  # file offset of the current buffer's first byte
    cdef long long _fed  # bytes fed so far
    cdef int _fmt
    cdef bint _big, _nano
    cdef long long _snaplen
    cdef int _linktype
    cdef Iface *_ifaces
    cdef Py_ssize_t _n_ifaces, _ifaces_cap
    cdef bint _damaged
    cdef long long _damage_at, _last_ts_sec, _frame, _ts, _need_at_end
    cdef bint _finished, _at_eof
    cdef uint8_t _linktypes_warned[8192]  # bitmap of link types already reported
    cdef bint _frag_warned, _table_full_warned

    # connections
    cdef Flow **_slots
    cdef size_t _mask
    cdef Py_ssize_t _nflows
    cdef Flow *_oldest
    cdef Flow *_newest
    cdef long long _next_id, _ooo_total
    cdef bint _sweep_set
    cdef i128 _next_sweep

    # directions whose history has spans noted but not yet copied
    cdef HistPend *_hp_dirty

    # partition: every worker's load so far, and the owner of every connection seen
    cdef long long *_part_load
    cdef OwnerSlot *_own
    cdef size_t _own_mask
    cdef long long _own_n

    # framer replays and scratch
    cdef Replay *_rs
    cdef Py_ssize_t _rs_n, _rs_cap
    cdef Replay _pending
    cdef long long *_scratch  # (offset, length) pairs of a segment split into holes
    cdef Py_ssize_t _scratch_cap

    implementation = IMPLEMENTATION

    def __cinit__(self, *args, **kwargs):
        self._mask = 1023
        self._slots = <Flow **>calloc(self._mask + 1, sizeof(Flow *))
        if self._slots == NULL:
            raise MemoryError()

    def __init__(self, ports=DEFAULT_PORTS, heuristic=True, ooo_budget=64 << 20,
                 data_limit=-1, chunk_size=1 << 20, max_assoc_pdu=1 << 20,
                 max_command=1 << 20, max_pdu=0xFFFFFFFF, max_flows=100_000,
                 idle_timeout=600 * 10**9, heuristic_window=1 << 20,
                 sync_max_pdu=64 << 20, partition=(0, 1), history=16384, pdata_runs=False,
                 trim_heads=False):
        cdef long long p
        self.pdata_runs = bool(pdata_runs)
        self.trim_heads = bool(trim_heads) and int(data_limit) > 0
        self.ports = frozenset(int(p) for p in ports)
        memset(self._portmap, 0, sizeof(self._portmap))
        for p in self.ports:
            if 0 <= p <= 0xFFFF:
                self._portmap[p >> 3] |= 1 << (p & 7)
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
        self.part_k = int(partition[0])
        self.part_n = max(1, int(partition[1]))
        if self.part_n > 1:
            self._part_load = <long long *>calloc(self.part_n, sizeof(long long))
            if self._part_load == NULL:
                raise MemoryError()
        self.history = int(history)
        self._sweep_step = max(10**9, int(idle_timeout) // 4)

        self._last_ts_sec = -1

    def __dealloc__(self):
        cdef Flow *fl = self._oldest
        cdef Flow *nx
        self._hp_dirty = NULL
        while fl != NULL:
            nx = fl.newer
            flow_free(fl)
            fl = nx
        free(self._slots)
        free(self._part_load)
        free(self._own)
        buf_free(&self._carry)
        free(self._ifaces)
        while self._rs_n > 0:
            self._rs_n -= 1
            free(self._rs[self._rs_n].buf)
            free(self._rs[self._rs_n].marks)
        free(self._rs)
        free(self._pending.buf)
        free(self._pending.marks)
        free(self._scratch)
        batch_free(self._batch)
        self._batch = NULL

    # ----------------------------------------------------------------- API
    def feed(self, const uint8_t[::1] data):
        """Consume capture bytes (any chunking).  Raises CaptureFormatError
        if the input is not a capture at all."""
        cdef Py_ssize_t n = data.shape[0]
        if self._finished:
            raise ValueError("feed() after finish()")
        self._check_detached()
        self._walk(&data[0] if n else NULL, n)

    cdef int _walk(self, const uint8_t *data, Py_ssize_t n) except -1 nogil:
        self.cnt[CT_BYTES] += n
        try:
            self._feed(data, n)
        finally:
            self._hist_flush()  # the spans point into ``data``
        return 0

    def finish(self):
        """End of input: report a truncated tail, flush every connection."""
        cdef Py_ssize_t rest
        cdef Flow *fl
        if self._finished:
            return
        self._check_detached()
        try:
            self._parse(self._carry.p, self._carry.n, True)
        finally:
            self._hist_flush()
        rest = self._carry.n - self._pos
        if rest > 0:
            self.cnt[CT_TRUNCATED_RECORDS] += 1
            self._cap_expert(X_CAPTURE_TRUNCATED, self._foff + self._pos, rest, self._need_at_end)
        buf_free(&self._carry)
        self._foff += self._pos
        self._pos = 0
        self._at_eof = True  # what is released now comes after the last frame
        while self._oldest != NULL:
            fl = self._oldest
            self._end_flow(fl, END_EOF, self._frame, self._ts)
            self._drop(fl)
        self._finished = True

    def pop_events(self):
        """The events since the last call, oldest first."""
        self._check_detached()
        return engine_events(engine_take_events(<void *>self))

    cdef int _check_detached(self) except -1:
        if self._attached:
            raise RuntimeError("this engine is being walked by a reading thread")
        return 0

    @property
    def counters(self):
        return {name: self.cnt[k] for k, name in enumerate(_COUNTER_NAMES)}

    def stats(self):
        c = self.counters
        c["frames"] = self._frame
        c["open_flows"] = self._nflows
        c["ooo_bytes"] = self._ooo_total
        c["format"] = _FORMAT_NAMES[self._fmt]
        return c

    # ------------------------------------------------------- capture files
    cdef int _feed(self, const uint8_t *data, Py_ssize_t n) except -1 nogil:
        """Parse ``data`` in place; copy only a record split across calls."""
        cdef Py_ssize_t dpos = 0, take, want
        cdef long long base = self._fed
        self._fed += n
        if self._carry.n:
            # complete the split record first, adding only the bytes it needs
            while dpos < n:
                if self._damaged:
                    take = n - dpos  # a resync search looks ahead: give it everything
                else:
                    want = self._need_at_end - (self._carry.n - self._pos)
                    take = want if want > 0 else 1
                    if take > n - dpos:
                        take = n - dpos
                buf_append(&self._carry, data + dpos, take)
                dpos += take
                self._parse(self._carry.p, self._carry.n, False)
                self._hist_flush()  # the next buf_append may move the carry
                if self._pos == self._carry.n:
                    self._foff += self._carry.n
                    self._carry.n = 0
                    self._pos = 0
                    break
            if self._carry.n:
                self._compact_carry()
                return 0
        self._foff = base + dpos
        self._pos = 0
        try:
            self._parse(data + dpos, n - dpos, False)
        finally:
            buf_append(&self._carry, data + dpos + self._pos, n - dpos - self._pos)
            self._foff += self._pos
            self._pos = 0
        return 0

    cdef void _compact_carry(self) noexcept nogil:
        cdef Py_ssize_t p = self._pos
        if p:
            memmove(self._carry.p, self._carry.p + p, self._carry.n - p)
            self._carry.n -= p
            self._foff += p
            self._pos = 0

    cdef int _parse(self, const uint8_t *buf, Py_ssize_t n, bint eof) except -1 nogil:
        cdef Py_ssize_t p, e
        cdef Py_ssize_t pf = self._pos  # bytes up to here are on their way into the cache
        cdef uint32_t m
        cdef int r
        while True:
            p = self._pos
            # Walking from record to record is a chain of loads each waiting for
            # the one before (the next header is where this one's length says):
            # one trip to memory per packet, which the hardware prefetcher does
            # not foresee across 4 KiB pages.  Asking for every cache line a few
            # KiB ahead streams the file in instead (core walk 2-3x faster).
            e = p + PREFETCH_AHEAD
            if e > n:
                e = n
            if pf < p:
                pf = p
            while pf < e:
                FD_PREFETCH(buf + pf)
                pf += 64
            if self._fmt == FMT_UNKNOWN:
                if n - p < 4:
                    self._need_at_end = 24
                    return 0
                m = be32(buf + p)
                if m == 0xD4C3B2A1U or m == 0x4D3CB2A1U or m == 0xA1B2C3D4U or m == 0xA1B23C4DU:
                    if n - p < 24:
                        self._need_at_end = 24
                        return 0
                    self._big = buf[p] == 0xA1
                    self._nano = m == 0x4D3CB2A1U or m == 0xA1B23C4DU
                    self._snaplen = rd32(buf + p + 16, self._big)
                    self._linktype = rd32(buf + p + 20, self._big) & 0xFFFF
                    self._fmt = FMT_PCAP
                    self._pos = p + 24
                    continue
                if m == 0x0A0D0D0AU:
                    self._fmt = FMT_PCAPNG
                    continue
                with gil:
                    if buf[p] == 0x1F and buf[p + 1] == 0x8B:
                        raise CaptureFormatError("gzip-compressed data: decompress before feeding the core")
                    raise CaptureFormatError(
                        "not a pcap or pcapng capture (magic %s)" % mkbytes(buf + p, 4).hex())
            if self._fmt == FMT_PCAP:
                r = self._pcap_step(buf, n, eof)
            else:
                r = self._pcapng_step(buf, n, eof)
            if not r:
                return 0

    cdef bint _pcap_plausible(self, const uint8_t *b, Py_ssize_t p) noexcept nogil:
        cdef bint big = self._big
        cdef long long sec = rd32(b + p, big)
        cdef long long frac = rd32(b + p + 4, big)
        cdef long long incl = rd32(b + p + 8, big)
        cdef long long orig = rd32(b + p + 12, big)
        cdef long long limit = lmax(self._snaplen, PCAP_MAX_RECORD)
        if frac >= (1000000000 if self._nano else 1000000):
            return False
        if incl > limit or orig < incl or orig > 4 * limit:
            return False
        if self._last_ts_sec >= 0 and abs(sec - self._last_ts_sec) > MAX_RESYNC_SECONDS:
            return False
        return True

    cdef bint _pcap_follows(self, const uint8_t *b, Py_ssize_t q, long long sec) noexcept nogil:
        """The record header at ``b[q]`` is sane and near ``sec`` in time."""
        cdef bint big = self._big
        cdef long long frac = rd32(b + q + 4, big)
        cdef long long incl = rd32(b + q + 8, big)
        cdef long long t = rd32(b + q, big)
        if frac >= (1000000000 if self._nano else 1000000) or incl > lmax(self._snaplen, PCAP_MAX_RECORD):
            return False
        return abs(t - sec) <= MAX_RESYNC_SECONDS

    cdef int _pcap_step(self, const uint8_t *buf, Py_ssize_t n, bint eof) except -1 nogil:
        """Process one pcap record (or one resync step); 0 when more data is needed.

        A record, in the file's byte order::

            ts_sec(4) ts_usec_or_nsec(4) incl_len(4) orig_len(4) packet(incl_len)
        """
        cdef Py_ssize_t p = self._pos, q, nxt
        cdef bint big = self._big
        cdef long long limit = lmax(self._snaplen, PCAP_MAX_RECORD)
        cdef long long incl, orig, frac, sec, ts
        cdef bint found = False, ok
        if self._damaged:
            # look for a record header that is plausible and followed by another
            q = p
            while q + 16 <= n:
                if self._pcap_plausible(buf, q):
                    incl = rd32(buf + q + 8, big)
                    nxt = q + 16 + incl
                    if nxt + 16 <= n:
                        if self._pcap_plausible(buf, nxt):
                            found = True
                            break
                    elif eof and nxt == n:
                        found = True
                        break
                    elif not eof:
                        self._pos = q
                        self._need_at_end = 16
                        return 0
                q += 1
            if not found:
                if not eof:
                    self._pos = q
                    return 0
                # nothing good until the end (already counted when the damage was found)
                self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                                 n - (self._damage_at - self._foff))
                self._pos = n
                self._damaged = False
                return 0
            self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                             (self._foff + q) - self._damage_at)
            self._damaged = False
            self._pos = q
            return 1
        if n - p < 16:
            self._need_at_end = 16
            return 0
        incl = rd32(buf + p + 8, big)
        orig = rd32(buf + p + 12, big)
        frac = rd32(buf + p + 4, big)
        if incl > limit or frac >= (1000000000 if self._nano else 1000000):
            self.cnt[CT_DAMAGED_RECORDS] += 1
            self._damaged = True
            self._damage_at = self._foff + p
            self._pos = p + 1
            return 1
        if n - p < 16 + incl:
            self._need_at_end = 16 + incl
            return 0
        sec = rd32(buf + p, big)
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
                return 0
            if not ok:
                self.cnt[CT_DAMAGED_RECORDS] += 1
                self._damaged = True
                self._damage_at = self._foff + p
                self._pos = p + 1
                return 1
        ts = sec * NS + (frac if self._nano else frac * 1000)
        self._last_ts_sec = sec
        self._pos = p + 16 + incl
        self._record(self._linktype, ts, buf + p + 16, incl, lmax(orig, incl))
        return 1

    cdef int _pcapng_step(self, const uint8_t *buf, Py_ssize_t n, bint eof) except -1 nogil:
        """Process one pcapng block (or one resync step); 0 when more data is needed.

        A block: ``type(4) total_length(4) body total_length(4)``; the bodies read::

            SHB  byte_order_magic(4) version(4) section_length(8) options
            IDB  link_type(2) reserved(2) snaplen(4) options (9 if_tsresol, 14 if_tsoffset)
            EPB  interface(4) ts_high(4) ts_low(4) captured(4) original(4) packet options
            SPB  original(4) packet
        """
        cdef Py_ssize_t p = self._pos, q, body, bend
        cdef bint big
        cdef bint found = False
        cdef int r, code, olen, lt, v
        cdef uint32_t btype, bom
        cdef long long blen, cap, orig, ifid, tsoff, tsr
        cdef uint32_t hi, lo
        cdef bint pow2
        cdef Iface *ifc
        if self._damaged:
            q = p
            while q + 12 <= n:
                r = self._block_ok(buf, q, n)
                if r == 1:
                    found = True
                    break
                if r == 2:  # need more data to decide
                    if not eof:
                        self._pos = q
                        return 0
                q += 4
            if not found:
                if not eof:
                    self._pos = q
                    return 0
                self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                                 self._foff + n - self._damage_at)
                self._pos = n
                self._damaged = False
                return 0
            self._cap_expert(X_CAPTURE_DAMAGED, self._damage_at, self._damage_at,
                             self._foff + q - self._damage_at)
            self._damaged = False
            self._pos = q
            return 1
        if n - p < 12:
            self._need_at_end = 12
            return 0
        btype = rd32(buf + p, self._big)
        if btype == 0x0A0D0D0A:
            bom = be32(buf + p + 8)
            if bom == 0x4D3C2B1A:
                big = False
            elif bom == 0x1A2B3C4D:
                big = True
            else:
                return self._damage(p)
            blen = rd32(buf + p + 4, big)
        else:
            big = self._big
            blen = rd32(buf + p + 4, big)
        if blen < 12 or blen % 4 or blen > PCAPNG_MAX_BLOCK:
            return self._damage(p)
        if n - p < blen:
            self._need_at_end = blen
            return 0
        if rd32(buf + p + blen - 4, big) != blen:
            return self._damage(p)
        self._pos = p + blen
        body = p + 8
        bend = p + blen - 4
        if btype == 0x0A0D0D0A:
            self._big = big
            self._n_ifaces = 0
        elif btype == 1:  # Interface Description Block
            if bend - body >= 8:
                lt = rd16(buf + body, big)
                tsr = 6
                pow2 = False
                tsoff = 0
                q = body + 8
                while q + 4 <= bend:
                    code = rd16(buf + q, big)
                    olen = rd16(buf + q + 2, big)
                    if code == 0:
                        break
                    if q + 4 + olen > bend:
                        break
                    if code == 9 and olen >= 1:
                        v = buf[q + 4]
                        tsr = v & 0x7F
                        pow2 = (v & 0x80) != 0
                    elif code == 14 and olen >= 8:
                        tsoff = <long long>rd64(buf + q + 4, big)
                    q += 4 + ((olen + 3) & ~3)
                self._add_iface(lt, tsr, pow2, tsoff)
        elif btype == 6 or btype == 2:  # Enhanced Packet Block / obsolete Packet Block
            if bend - body >= 20:
                if btype == 6:
                    ifid = rd32(buf + body, big)
                else:
                    ifid = rd16(buf + body, big)
                hi = rd32(buf + body + 4, big)
                lo = rd32(buf + body + 8, big)
                cap = rd32(buf + body + 12, big)
                orig = rd32(buf + body + 16, big)
                if cap > bend - (body + 20):
                    return self._damage(p)
                if ifid < self._n_ifaces:
                    ifc = &self._ifaces[ifid]
                    self._record(ifc.lt, ts_ng(((<uint64_t>hi) << 32) | lo, ifc.resol, ifc.pow2, ifc.tsoff),
                                 buf + body + 20, cap, lmax(orig, cap))
                else:
                    self._frame += 1
                    self.cnt[CT_RECORDS] += 1
                    self.cnt[CT_UNSUPPORTED_LINK] += 1
        elif btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if bend - body >= 4:
                orig = rd32(buf + body, big)
                cap = lmin(orig, bend - body - 4)
                if self._n_ifaces:
                    self._record(self._ifaces[0].lt, self._ts, buf + body + 4, cap, lmax(orig, cap))
                else:
                    self._frame += 1
                    self.cnt[CT_RECORDS] += 1
                    self.cnt[CT_UNSUPPORTED_LINK] += 1
        return 1

    cdef int _add_iface(self, int lt, int resol, bint pow2, long long tsoff) except -1 nogil:
        cdef Iface *a
        if self._n_ifaces == self._ifaces_cap:
            grow_array(<void **>&self._ifaces, &self._ifaces_cap, sizeof(Iface), 4)
        a = &self._ifaces[self._n_ifaces]
        a.lt = lt
        a.resol = resol
        a.pow2 = pow2
        a.tsoff = tsoff
        self._n_ifaces += 1
        return 0

    cdef int _damage(self, Py_ssize_t p) noexcept nogil:
        self.cnt[CT_DAMAGED_RECORDS] += 1
        self._damaged = True
        self._damage_at = self._foff + p
        self._pos = p + 4
        return 1

    cdef int _block_ok(self, const uint8_t *b, Py_ssize_t q, Py_ssize_t n) noexcept nogil:
        """Resync test for pcapng: 1 good block here, 0 not, 2 need more data."""
        cdef uint32_t btype = rd32(b + q, self._big), bom
        cdef bint big = self._big
        cdef long long blen
        if not (btype == 0x0A0D0D0A or 1 <= btype <= 7 or btype == 9 or btype == 10
                or btype == 0xBAD or btype == 0x40000BAD):
            return 0
        if btype == 0x0A0D0D0A:
            bom = be32(b + q + 8)
            if bom == 0x4D3C2B1A:
                big = False
            elif bom == 0x1A2B3C4D:
                big = True
            else:
                return 0
        blen = rd32(b + q + 4, big)
        if blen < 12 or blen % 4 or blen > PCAPNG_MAX_BLOCK:
            return 0
        if q + blen > n:
            return 2
        return 1 if rd32(b + q + blen - 4, big) == blen else 0

    # ------------------------------------------------ link, IP, TCP headers
    cdef int _record(self, int linktype, long long ts, const uint8_t *data, Py_ssize_t n,
                     long long wirelen) except -1 nogil:
        """One captured packet: link header, IPv4/IPv6 (no fragments), TCP."""
        cdef long long frame
        cdef Py_ssize_t off, t, ip_end, pstart, cap_end, doff
        cdef int et, v, ihl, tot, nh, ipver
        cdef uint32_t fam
        cdef uint8_t src4[16]
        cdef uint8_t dst4[16]
        cdef const uint8_t *src
        cdef const uint8_t *dst
        cdef long long true_len
        self._frame += 1
        self.cnt[CT_RECORDS] += 1
        self._ts = ts
        frame = self._frame
        if linktype == 1:  # Ethernet
            if n < 14:
                self.cnt[CT_NON_IP] += 1
                return 0
            et = be16(data + 12)
            off = 14
            while et == 0x8100 or et == 0x88A8 or et == 0x9100 or et == 0x9200:
                if n < off + 4:
                    self.cnt[CT_NON_IP] += 1
                    return 0
                et = be16(data + off + 2)
                off += 4
        elif linktype == 113:  # Linux cooked v1
            if n < 16:
                self.cnt[CT_NON_IP] += 1
                return 0
            et = be16(data + 14)
            off = 16
            while (et == 0x8100 or et == 0x88A8) and n >= off + 4:
                et = be16(data + off + 2)
                off += 4
        elif linktype == 276:  # Linux cooked v2
            if n < 20:
                self.cnt[CT_NON_IP] += 1
                return 0
            et = be16(data)
            off = 20
        elif linktype == 12 or linktype == 14 or linktype == 101 or linktype == 228 or linktype == 229:
            if n < 1:  # raw IP
                self.cnt[CT_NON_IP] += 1
                return 0
            v = data[0] >> 4
            et = 0x0800 if v == 4 else (0x86DD if v == 6 else 0)
            off = 0
        elif linktype == 0 or linktype == 108:  # BSD loopback: 4-byte family
            if n < 4:
                self.cnt[CT_NON_IP] += 1
                return 0
            fam = be32(data)
            if linktype == 0 and fam > 0xFFFF:  # host byte order of the capturing machine
                fam = le32(data)
            et = 0x0800 if fam == 2 else (0x86DD if (fam == 10 or fam == 24 or fam == 28 or fam == 30) else 0)
            off = 4
        else:
            self.cnt[CT_UNSUPPORTED_LINK] += 1
            if not (self._linktypes_warned[linktype >> 3] >> (linktype & 7)) & 1:
                self._linktypes_warned[linktype >> 3] |= 1 << (linktype & 7)
                self._cap_expert(X_LINKTYPE_UNSUPPORTED, 0, linktype, 0)
            return 0
        if et == 0x0800:
            if n < off + 20 or (data[off] >> 4) != 4:
                self.cnt[CT_NON_IP] += 1
                return 0
            ihl = (data[off] & 0x0F) * 4
            tot = be16(data + off + 2)
            if ihl < 20 or tot < ihl or n < off + ihl:
                self.cnt[CT_NON_IP] += 1
                return 0
            if data[off + 9] != 6:
                self.cnt[CT_NON_TCP] += 1
                return 0
            if be16(data + off + 6) & 0x3FFF:  # MF set or a non-zero fragment offset
                return self._fragment(frame)
            memcpy(src4, data + off + 12, 4)
            memset(src4 + 4, 0, 12)
            memcpy(dst4, data + off + 16, 4)
            memset(dst4 + 4, 0, 12)
            src = src4
            dst = dst4
            ipver = 4
            t = off + ihl
            ip_end = off + tot
        elif et == 0x86DD:
            if n < off + 40 or (data[off] >> 4) != 6:
                self.cnt[CT_NON_IP] += 1
                return 0
            tot = be16(data + off + 4)
            nh = data[off + 6]
            src = data + off + 8
            dst = data + off + 24
            ipver = 6
            t = off + 40
            ip_end = t + tot if tot else lmax(n, wirelen)
            while nh == 0 or nh == 43 or nh == 44 or nh == 51 or nh == 60:
                if n < t + 8:
                    self.cnt[CT_NON_IP] += 1
                    return 0
                if nh == 44:
                    if (be16(data + t + 2) & 0xFFF9) != 0:  # a real fragment
                        return self._fragment(frame)
                    nh = data[t]
                    t += 8
                elif nh == 51:
                    nh, t = data[t], t + (data[t + 1] + 2) * 4
                else:
                    nh, t = data[t], t + (data[t + 1] + 1) * 8
            if nh != 6:
                self.cnt[CT_NON_TCP] += 1
                return 0
        else:
            self.cnt[CT_NON_IP] += 1
            return 0
        # TCP, RFC 9293 3.1
        if n < t + 20:
            self.cnt[CT_NON_TCP] += 1
            return 0
        doff = (data[t + 12] >> 4) * 4
        if doff < 20:
            self.cnt[CT_NON_TCP] += 1
            return 0
        self.cnt[CT_TCP_PACKETS] += 1
        pstart = t + doff
        # the wire length of the payload comes from IP; the captured part may be shorter
        true_len = lmax(0, ip_end - pstart)
        cap_end = lmin(n, ip_end)
        return self._tcp(ipver, src, dst, be16(data + t), be16(data + t + 2), be32(data + t + 4),
                         data[t + 13], be16(data + t + 14), data + pstart,
                         cap_end - pstart if cap_end > pstart else 0, true_len, frame, ts)

    cdef int _fragment(self, long long frame) except -1 nogil:
        self.cnt[CT_IP_FRAGMENTS] += 1
        if not self._frag_warned:
            self._frag_warned = True
            self._cap_expert(X_IP_FRAGMENT, 0, frame, 0)
        return 0

    # ---------------------------------------------------------- connections
    cdef Flow *_lookup(self, const uint8_t *key, uint64_t h) noexcept nogil:
        cdef size_t i = h & self._mask
        cdef Flow *f
        while True:
            f = self._slots[i]
            if f == NULL:
                return NULL
            if f.h == h and fd_key_eq40(f.key, key):  # both zero padded to 40 bytes
                return f
            i = (i + 1) & self._mask

    cdef int _table_put(self, Flow *fl) except -1 nogil:
        """Put a new connection in the table; ``fl`` is freed if it cannot be."""
        cdef size_t i, size, k
        cdef Flow **old
        cdef Flow **slots
        if (self._nflows + 1) * 2 > <Py_ssize_t>(self._mask + 1):
            size = (self._mask + 1) * 2
            slots = <Flow **>calloc(size, sizeof(Flow *))
            if slots == NULL:
                free(fl)
                with gil: raise MemoryError()
            old = self._slots
            for k in range(self._mask + 1):
                if old[k] != NULL:
                    i = old[k].h & (size - 1)
                    while slots[i] != NULL:
                        i = (i + 1) & (size - 1)
                    slots[i] = old[k]
            free(old)
            self._slots = slots
            self._mask = size - 1
        i = fl.h & self._mask
        while self._slots[i] != NULL:
            i = (i + 1) & self._mask
        self._slots[i] = fl
        self._nflows += 1
        return 0

    cdef void _drop(self, Flow *fl) noexcept nogil:
        """Remove a connection from the table and the LRU list, and free it."""
        self._hist_forget(&fl.dirs[0])
        self._hist_forget(&fl.dirs[1])
        cdef size_t mask = self._mask
        cdef size_t i = fl.h & mask, j, k
        while self._slots[i] != fl:
            i = (i + 1) & mask
        # backward-shift deletion (linear probing)
        j = i
        while True:
            j = (j + 1) & mask
            if self._slots[j] == NULL:
                break
            k = self._slots[j].h & mask
            if (i <= j and i < k <= j) or (i > j and (k > i or k <= j)):
                continue
            self._slots[i] = self._slots[j]
            i = j
        self._slots[i] = NULL
        self._nflows -= 1
        if fl.older != NULL:
            fl.older.newer = fl.newer
        else:
            self._oldest = fl.newer
        if fl.newer != NULL:
            fl.newer.older = fl.older
        else:
            self._newest = fl.older
        flow_free(fl)

    cdef inline void _touch(self, Flow *fl) noexcept nogil:
        """Move to the most recent end of the LRU list."""
        if fl.newer == NULL:
            return
        if fl.older != NULL:
            fl.older.newer = fl.newer
        else:
            self._oldest = fl.newer
        fl.newer.older = fl.older
        fl.older = self._newest
        fl.newer = NULL
        self._newest.newer = fl
        self._newest = fl

    cdef int _owner(self, const uint8_t *key, uint64_t h) except -1 nogil:
        """The worker that owns this connection (twin: ``_owner``)."""
        cdef size_t i, mask
        cdef OwnerSlot *slot
        cdef int k, best
        if self._own == NULL:
            self._own_grow(1024)
        mask = self._own_mask
        i = h & mask
        while True:
            slot = &self._own[i]
            if slot.owner < 0:
                break
            if fd_key_eq40(slot.key, key):
                return slot.owner
            i = (i + 1) & mask
        if self._own_n >= MAX_PARTITION_KEYS:
            return <int>(fnv1a(key, KEY_LEN) % <uint64_t>self.part_n)
        best = 0
        for k in range(1, self.part_n):
            if self._part_load[k] < self._part_load[best]:
                best = k
        memcpy(slot.key, key, 40)
        slot.owner = best
        self._own_n += 1
        if self._own_n * 2 > <long long>mask and self._own_n < MAX_PARTITION_KEYS:
            self._own_grow(2 * (mask + 1))
        return best

    cdef int _own_grow(self, size_t size) except -1 nogil:
        """A fresh owner table of ``size`` slots (a power of two), refilled."""
        cdef OwnerSlot *old = self._own
        cdef size_t old_size = 0 if old == NULL else self._own_mask + 1
        cdef size_t i, j
        cdef OwnerSlot *t = <OwnerSlot *>malloc(size * sizeof(OwnerSlot))
        if t == NULL:
            with gil: raise MemoryError()
        for i in range(size):
            t[i].owner = -1
        for i in range(old_size):
            if old[i].owner >= 0:
                j = key_hash(old[i].key) & (size - 1)
                while t[j].owner >= 0:
                    j = (j + 1) & (size - 1)
                t[j] = old[i]
        free(old)
        self._own = t
        self._own_mask = size - 1
        return 0

    cdef int _tcp(self, int ipver, const uint8_t *src, const uint8_t *dst, int sport, int dport,
                  uint32_t seq, int flags, int win, const uint8_t *payload, Py_ssize_t cap,
                  long long true_len, long long frame, long long ts) except -1 nogil:
        cdef uint8_t key[40]
        cdef int side, c, pa, pb
        cdef const uint8_t *ipa
        cdef const uint8_t *ipb
        cdef uint64_t h
        cdef Flow *fl
        cdef Dir *d
        cdef int owner
        cdef bint is_port
        c = fd_addr_cmp16(src, dst)
        if c < 0 or (c == 0 and sport <= dport):
            side = 0
            ipa, pa, ipb, pb = src, sport, dst, dport
        else:
            side = 1
            ipa, pa, ipb, pb = dst, dport, src, sport
        key[0] = ipver
        memcpy(key + 1, ipa, 16)
        key[17] = pa >> 8
        key[18] = pa & 0xFF
        memcpy(key + 19, ipb, 16)
        key[35] = pb >> 8
        key[36] = pb & 0xFF
        key[37] = key[38] = key[39] = 0
        if not self._sweep_set:
            self._sweep_set = True
            self._next_sweep = <i128>ts + self._sweep_step
        elif <i128>ts >= self._next_sweep:
            self._sweep(frame, ts)
        h = key_hash(key)
        fl = self._lookup(key, h)
        if fl == NULL:
            is_port = self._is_port(pa) or self._is_port(pb)
            if self.part_n > 1:
                if is_port or self.heuristic:
                    owner = self._owner(key, h)
                    self._part_load[owner] += true_len + PARTITION_PACKET_WEIGHT
                else:
                    owner = 0  # never a connection: worker 0 counts its packets
                if owner != self.part_k:
                    self.cnt[CT_PARTITION_SKIPPED] += 1
                    return 0
            if not is_port and not self.heuristic:
                self.cnt[CT_OTHER_TCP_PACKETS] += 1
                return 0
            fl = self._new_flow(key, h, ipver, ipa, pa, ipb, pb, is_port, frame, ts)
        else:
            self._touch(fl)
            if self.part_n > 1:
                self._part_load[self.part_k] += true_len + PARTITION_PACKET_WEIGHT
            if (flags & TH_SYN) and not (flags & TH_ACK) and fl.state != F_IGNORED and (
                    fl.state == F_CLOSED or (fl.isn >= 0 and fl.isn != seq)
                    or (fl.syn_side < 0 and (fl.dirs[0].payload or fl.dirs[1].payload))):
                # a new connection on the same addresses and ports
                self._end_flow(fl, END_REUSED, frame, ts)
                is_port = fl.is_port
                self._drop(fl)
                fl = self._new_flow(key, h, ipver, ipa, pa, ipb, pb, is_port, frame, ts)
            elif fl.state == F_IGNORED and (flags & TH_SYN) and not (flags & TH_ACK) and fl.isn != seq:
                is_port = fl.is_port
                self._drop(fl)
                fl = self._new_flow(key, h, ipver, ipa, pa, ipb, pb, is_port, frame, ts)
        fl.last_ts = ts
        fl.last_frame = frame
        if fl.state != F_LIVE:
            self.cnt[CT_DICOM_PACKETS if fl.confirmed else CT_OTHER_TCP_PACKETS] += 1
            return 0
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
        elif (flags & TH_ACK) and fl.ack_ts < 0 and fl.synack_ts >= 0 and side == fl.syn_side:
            fl.ack_ts = ts
        d = &fl.dirs[side]
        if win == 0 and not (flags & (TH_SYN | TH_FIN | TH_RST)):
            d.zero_window += 1
        if flags & TH_RST:
            self.cnt[CT_DICOM_PACKETS if fl.confirmed else CT_OTHER_TCP_PACKETS] += 1
            self._end_flow(fl, END_RST, frame, ts)
            return 0
        self._segment(fl, side, d, seq, flags, payload, cap, true_len, frame, ts)
        self.cnt[CT_DICOM_PACKETS if fl.confirmed else CT_OTHER_TCP_PACKETS] += 1
        if fl.state == F_LIVE and fl.dirs[0].eof and fl.dirs[1].eof:
            self._end_flow(fl, END_FIN, frame, ts)
        return 0

    cdef inline bint _is_port(self, int port) noexcept nogil:
        return (self._portmap[port >> 3] >> (port & 7)) & 1

    cdef Flow *_new_flow(self, const uint8_t *key, uint64_t h, int ipver, const uint8_t *ipa, int pa,
                         const uint8_t *ipb, int pb, bint is_port, long long frame,
                         long long ts) except NULL nogil:
        cdef Flow *old
        cdef Flow *fl
        cdef int s
        while self._nflows >= self.max_flows:
            old = self._oldest
            self.cnt[CT_EVICTED_FLOWS] += 1
            if not self._table_full_warned:
                self._table_full_warned = True
                self._cap_expert(X_FLOW_TABLE_FULL, 0, self.max_flows, 0)
            self._end_flow(old, END_EVICTED, frame, ts)
            self._drop(old)
        fl = <Flow *>calloc(1, sizeof(Flow))
        if fl == NULL:
            with gil: raise MemoryError()
        fl.id = self._next_id
        memcpy(fl.key, key, 40)
        fl.h = h
        fl.ipver = ipver
        memcpy(fl.ip[0], ipa, 16)
        memcpy(fl.ip[1], ipb, 16)
        fl.port[0] = pa
        fl.port[1] = pb
        fl.is_port = is_port
        fl.heuristic_only = not is_port
        fl.state = F_LIVE
        fl.client = fl.syn_side = fl.synack_side = -1
        fl.isn = fl.syn_ts = fl.synack_ts = fl.ack_ts = -1
        for s in range(2):
            fl.dirs[s].fin_off = -1
            fl.dirs[s].st = S_SYNC
            fl.dirs[s].store_limit = -1
        self._table_put(fl)
        fl.older = self._newest
        if self._newest != NULL:
            self._newest.newer = fl
        else:
            self._oldest = fl
        self._newest = fl
        self._next_id += 1
        self.cnt[CT_FLOWS] += 1
        return fl

    cdef int _sweep(self, long long frame, long long ts) except -1 nogil:
        cdef Flow *fl
        self._next_sweep = <i128>ts + self._sweep_step
        while self._oldest != NULL:
            fl = self._oldest
            if <i128>fl.last_ts + self.idle_timeout > ts:
                break
            self._end_flow(fl, END_IDLE, frame, ts)
            self._drop(fl)
        return 0

    cdef int _end_flow(self, Flow *fl, int reason, long long frame, long long ts) except -1 nogil:
        """Close a connection (events, buffers); the caller drops it from the table."""
        cdef int side, c, outcome
        cdef Dir *d
        cdef Dir *a
        cdef Dir *b
        cdef EvRec *r
        if fl.state != F_LIVE:
            return 0
        for side in range(2):
            d = &fl.dirs[side]
            while d.ooo_n:
                self._declare_hole(fl, side, d, d.ooo[d.ooo_head].off, frame, ts)
            if not d.eof:
                d.eof = True
                self._fr_eof(fl, side, d, frame, ts)
        if fl.confirmed:
            a = &fl.dirs[fl.client]
            b = &fl.dirs[1 - fl.client]
            fl.run_at = 0
            r = self._ev(EV_FLOW_END)
            r.v[:12] = [fl.id, frame, ts, reason, a.nbytes, b.nbytes, a.retrans, b.retrans,
                        a.ooo_count, b.ooo_count, a.zero_window, b.zero_window]
        elif fl.syn_side >= 0 and not (fl.dirs[0].payload or fl.dirs[1].payload):
            if fl.synack_side < 0:
                outcome = ATTEMPT_REFUSED if reason == END_RST else ATTEMPT_UNANSWERED
            else:
                outcome = ATTEMPT_NO_DATA
            c = fl.syn_side
            r = self._ev(EV_TCP_ATTEMPT)
            r.v[:6] = [frame, ts, fl.port[c], fl.port[1 - c], outcome, fl.ipver]
            memcpy(&r.v[6], fl.ip[c], 16)
            memcpy(&r.v[8], fl.ip[1 - c], 16)
        for side in range(2):
            d = &fl.dirs[side]
            self._hist_free(d)
            # every buffer and array (the per-context offsets alone are 2 KB):
            # a closed connection stays in the table, for its late packets,
            # until it is idle, with its counters only (the core alone on
            # 30,000 closed connections: 201 -> 64 MB)
            dir_free(d)
        fl.state = F_CLOSED
        return 0

    # ------------------------------------------------------- TCP ordering
    cdef int _segment(self, Flow *fl, int side, Dir *d, uint32_t seq, int flags,
                      const uint8_t *payload, Py_ssize_t cap, long long true_len,
                      long long frame, long long ts) except -1 nogil:
        cdef long long rel, off
        if flags & TH_SYN:
            if not d.started or not d.syn:
                d.started = True
                d.syn = True
                d.next_seq = seq + 1
                d.offset = 0
                d.hist_from = 0
                self._init_framer(d, True)
            seq = seq + 1
        if true_len == 0 and not (flags & TH_FIN):
            return 0
        if not d.started:
            d.started = True
            d.next_seq = seq
            self._init_framer(d, False)
        rel = <int32_t>(seq - d.next_seq)
        if rel >= (1 << 30) or rel < -(1 << 30):
            self._flow_expert(fl, X_TCP_SEQ_JUMP, frame, ts, d.offset, rel, 0, side)
            while d.ooo_n:
                self._declare_hole(fl, side, d, d.ooo[d.ooo_head].off, frame, ts)
            self.cnt[CT_GAPS] += 1
            self._fr_gap(fl, side, d, -1, frame, ts)
            d.next_seq = seq
            rel = 0
        off = d.offset + rel
        if true_len:
            d.payload = True
            d.nbytes += true_len
        if (flags & TH_FIN) and d.fin_off < 0:
            d.fin_off = off + true_len
        if true_len:
            self._insert(fl, side, d, off, payload, cap, true_len, frame, ts)
        if d.fin_off >= 0 and d.offset >= d.fin_off and not d.eof:
            while d.ooo_n:
                self._declare_hole(fl, side, d, d.ooo[d.ooo_head].off, frame, ts)
            d.eof = True
            self._fr_eof(fl, side, d, frame, ts)
        return 0

    cdef int _hist_compare(self, Flow *fl, int side, Dir *d, long long off, const uint8_t *data,
                           Py_ssize_t n, long long frame, long long ts) except -1 nogil:
        """Compare bytes already delivered (still in the history) with a later copy."""
        cdef long long H = self.history
        cdef long long lo = lmax(lmax(off, d.hist_from), d.offset - H)
        cdef long long hi = lmin(off + n, d.offset)
        cdef long long i0, first
        if d.hp != NULL and d.hp.linked:
            self._hist_copy_pending(d.hp)
        if hi <= lo or d.hist == NULL:
            return 0
        i0 = lo % H
        first = lmin(hi - lo, H - i0)
        if (memcmp(d.hist + i0, data + (lo - off), first) != 0 or
                (hi - lo > first and memcmp(d.hist, data + (lo - off) + first, hi - lo - first) != 0)):
            self.cnt[CT_OVERLAP_CONFLICTS] += 1
            self._flow_expert(fl, X_TCP_OVERLAP_CONFLICT, frame, ts, lo, hi - lo, 0, side)
        return 0

    cdef int _insert(self, Flow *fl, int side, Dir *d, long long off, const uint8_t *data,
                     Py_ssize_t cap, long long true_len, long long frame, long long ts) except -1 nogil:
        """Place a segment's bytes at stream offset ``off``; first copy wins."""
        cdef long long cut, lim, end, q, s_off, s_end, lo, hi, need, lost
        cdef Py_ssize_t k, np, first
        cdef Seg *s
        cdef long long *pc
        while True:
            if off + true_len <= d.offset:
                d.retrans += 1
                self.cnt[CT_RETRANSMISSIONS] += 1
                self._hist_compare(fl, side, d, off, data, cap, frame, ts)
                return 0
            if off < d.offset:
                self._hist_compare(fl, side, d, off, data, cap, frame, ts)
                cut = d.offset - off
                if cut >= cap:
                    cap = 0
                else:
                    data += cut
                    cap -= cut
                true_len -= cut
                off = d.offset
            if off == d.offset:
                lim = lmin(cap, d.ooo[d.ooo_head].off - off) if d.ooo_n else cap
                if lim:
                    self._deliver(fl, side, d, data, lim, frame, ts)
                self._drain(fl, side, d)
                if lim < cap:
                    off += lim
                    data += lim
                    cap -= lim
                    true_len -= lim
                    continue
            else:
                # split the new data into the holes between held segments
                end = off + cap
                np = 0
                q = off
                first = self._first_ending_after(d, q)
                for k in range(first, d.ooo_n):
                    s = &d.ooo[d.ooo_head + k]
                    s_off = s.off
                    s_end = s_off + s.n
                    if s_end <= q:
                        continue
                    if s_off >= end:
                        break
                    if s_off > q:
                        self._scratch_add(np, q, s_off - q)
                        np += 1
                    lo = lmax(q, s_off)
                    hi = lmin(end, s_end)
                    if hi > lo and memcmp(data + (lo - off), s.data + (lo - s_off), hi - lo) != 0:
                        self.cnt[CT_OVERLAP_CONFLICTS] += 1
                        self._flow_expert(fl, X_TCP_OVERLAP_CONFLICT, frame, ts, lo, hi - lo, 0, side)
                    q = lmax(q, s_end)
                if q < end:
                    self._scratch_add(np, q, end - q)
                    np += 1
                need = 0
                for k in range(np):
                    need += self._scratch[2 * k + 1]
                if not need:
                    if cap:
                        d.retrans += 1
                        self.cnt[CT_RETRANSMISSIONS] += 1
                    return 0
                d.ooo_count += 1
                self.cnt[CT_OOO_SEGMENTS] += 1
                if self._ooo_total + need > self.ooo_budget:
                    if self._make_room(fl, side, d, off, need, frame, ts):
                        # positions moved: place the segment again
                        d.ooo_count -= 1
                        self.cnt[CT_OOO_SEGMENTS] -= 1
                        continue
                for k in range(np):
                    pc = &self._scratch[2 * k]
                    self._ooo_add(d, pc[0], data + (pc[0] - off), pc[1], frame, ts)
                if d.ooo_n > MAX_OOO_SEGMENTS:
                    self._flow_expert(fl, X_OOO_SEGMENTS, frame, ts, d.offset, MAX_OOO_SEGMENTS, 0, side)
                    self._declare_hole(fl, side, d, d.ooo[d.ooo_head].off, frame, ts)
                return 0
            if true_len > cap and d.offset == off + cap:
                # the tap saw this segment but kept only part of it (snaplen)
                lost = true_len - cap
                if d.ooo_n:
                    lost = lmin(lost, d.ooo[d.ooo_head].off - d.offset)
                if lost > 0:
                    self._gap(fl, side, d, lost, frame, ts)
                    self._drain(fl, side, d)
            return 0

    cdef Py_ssize_t _first_ending_after(self, Dir *d, long long q) noexcept nogil:
        """Index of the first held segment that ends after ``q`` (binary search)."""
        cdef Py_ssize_t lo = 0, hi = d.ooo_n, mid
        cdef Seg *s
        while lo < hi:
            mid = (lo + hi) >> 1
            s = &d.ooo[d.ooo_head + mid]
            if s.off + s.n <= q:
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef int _scratch_add(self, Py_ssize_t k, long long off, long long n) except -1 nogil:
        if k >= self._scratch_cap:
            grow_array(<void **>&self._scratch, &self._scratch_cap, 2 * sizeof(long long), 64)
        self._scratch[2 * k] = off
        self._scratch[2 * k + 1] = n
        return 0

    cdef int _ooo_add(self, Dir *d, long long off, const uint8_t *data, Py_ssize_t n,
                      long long frame, long long ts) except -1 nogil:
        cdef Py_ssize_t i
        cdef Seg *a
        cdef uint8_t *copy
        if d.ooo_n == 0:
            d.ooo_since = frame
            d.ooo_head = 0
        if d.ooo_head + d.ooo_n == d.ooo_cap:
            if d.ooo_head:
                memmove(d.ooo, d.ooo + d.ooo_head, d.ooo_n * sizeof(Seg))
                d.ooo_head = 0
            else:
                grow_array(<void **>&d.ooo, &d.ooo_cap, sizeof(Seg), 16)
        copy = <uint8_t *>malloc(n)
        if copy == NULL:
            with gil: raise MemoryError()
        memcpy(copy, data, n)
        a = d.ooo + d.ooo_head
        i = d.ooo_n
        while i > 0 and a[i - 1].off > off:
            i -= 1
        memmove(a + i + 1, a + i, (d.ooo_n - i) * sizeof(Seg))
        a[i].off = off
        a[i].n = n
        a[i].data = copy
        a[i].frame = frame
        a[i].ts = ts
        d.ooo_n += 1
        d.ooo_bytes += n
        self._ooo_total += n
        return 0

    cdef int _make_room(self, Flow *fl, int side, Dir *d, long long off, long long need,
                        long long frame, long long ts) except -1 nogil:
        """Free out-of-order budget by declaring the oldest holes lost.
        Returns 1 if the current direction moved (its segment must be redone)."""
        cdef bint moved = False
        cdef Flow *f
        cdef Flow *vf
        cdef Dir *x
        cdef Dir *vd
        cdef int s, vs
        while self._ooo_total + need > self.ooo_budget:
            vf = NULL
            vd = NULL
            vs = 0
            f = self._oldest
            while f != NULL:
                if f.state == F_LIVE:
                    for s in range(2):
                        x = &f.dirs[s]
                        if x.ooo_n and (vf == NULL or x.ooo_since < vd.ooo_since):
                            vf, vs, vd = f, s, x
                f = f.newer
            self.cnt[CT_OOO_FORCED] += 1
            if vf == NULL or (vd == d and d.ooo[d.ooo_head].off > off):
                # nothing held (or our own hole comes first): give up on our hole
                self._flow_expert(fl, X_OOO_BUDGET, frame, ts, d.offset, self.ooo_budget, 0, side)
                self._gap(fl, side, d, off - d.offset, frame, ts)
                self._drain(fl, side, d)
                return 1
            self._flow_expert(vf, X_OOO_BUDGET, frame, ts, vd.offset, self.ooo_budget, 0, vs)
            self._declare_hole(vf, vs, vd, vd.ooo[vd.ooo_head].off, frame, ts)
            if vd == d:
                moved = True
                if d.offset >= off:
                    return 1
        return moved

    cdef int _declare_hole(self, Flow *fl, int side, Dir *d, long long upto, long long frame,
                           long long ts) except -1 nogil:
        if upto > d.offset:
            self._gap(fl, side, d, upto - d.offset, frame, ts)
        return self._drain(fl, side, d)

    cdef int _gap(self, Flow *fl, int side, Dir *d, long long size, long long frame,
                  long long ts) except -1 nogil:
        self.cnt[CT_GAPS] += 1
        self.cnt[CT_GAP_BYTES] += size
        d.offset += size
        d.next_seq = <uint32_t>(d.next_seq + <uint64_t>size)
        d.hist_from = d.offset
        return self._fr_gap(fl, side, d, size, frame, ts)

    cdef int _drain(self, Flow *fl, int side, Dir *d) except -1 nogil:
        cdef Seg s
        cdef long long skip
        while d.ooo_n and d.ooo[d.ooo_head].off <= d.offset:
            s = d.ooo[d.ooo_head]
            d.ooo_head += 1
            d.ooo_n -= 1
            d.ooo_bytes -= s.n
            self._ooo_total -= s.n
            skip = d.offset - s.off
            try:
                if skip < s.n:
                    self._deliver(fl, side, d, s.data + skip, s.n - skip, s.frame, s.ts, True)
            finally:
                free(s.data)
        return 0

    cdef int _deliver(self, Flow *fl, int side, Dir *d, const uint8_t *data, Py_ssize_t n,
                      long long frame, long long ts, bint transient=False) except -1 nogil:
        """Hand ``n`` in-order bytes to the framer.  Their history copy is
        deferred (``HistPend``) unless ``transient`` (a held segment, freed next)."""
        cdef long long H = self.history
        cdef HistPend *hp
        cdef int k
        if H > 0:
            hp = d.hp
            if hp == NULL:
                hp = <HistPend *>calloc(sizeof(HistPend) + H, 1)
                if hp == NULL:
                    with gil: raise MemoryError()
                d.hp = hp
                d.hist = <uint8_t *>(hp + 1)
            if hp.cnt == HIST_SPANS or (transient and hp.cnt):
                self._hist_copy_pending(hp)
            if transient:
                hist_copy(d.hist, H, d.offset, data, n)
            else:
                if not hp.linked:
                    hp.linked = True
                    hp.prev = NULL
                    hp.next = self._hp_dirty
                    if hp.next != NULL:
                        hp.next.prev = hp
                    self._hp_dirty = hp
                k = (hp.head + hp.cnt) % HIST_SPANS
                hp.ptr[k] = data
                hp.off[k] = d.offset
                hp.n[k] = n
                hp.cnt += 1
                hp.total += n
                # spans wholly overwritten by newer ones need never be copied
                while hp.cnt > 1 and hp.total - hp.n[hp.head] >= H:
                    hp.total -= hp.n[hp.head]
                    hp.head = (hp.head + 1) % HIST_SPANS
                    hp.cnt -= 1
        d.offset += n
        d.next_seq = <uint32_t>(d.next_seq + <uint64_t>n)
        if d.st != S_DEAD:
            return self._fr_data(fl, side, d, data, n, frame, ts)
        return 0

    cdef void _hist_unlink(self, HistPend *hp) noexcept nogil:
        if hp.prev != NULL:
            hp.prev.next = hp.next
        else:
            self._hp_dirty = hp.next
        if hp.next != NULL:
            hp.next.prev = hp.prev
        hp.prev = hp.next = NULL
        hp.linked = False
        hp.head = hp.cnt = 0
        hp.total = 0

    cdef void _hist_copy_pending(self, HistPend *hp) noexcept nogil:
        """Copy one direction's noted spans into its history ring."""
        cdef int i, k
        cdef uint8_t *ring = <uint8_t *>(hp + 1)
        for i in range(hp.cnt):
            k = (hp.head + i) % HIST_SPANS
            hist_copy(ring, self.history, hp.off[k], hp.ptr[k], hp.n[k])
        self._hist_unlink(hp)

    cdef void _hist_flush(self) noexcept nogil:
        """Copy every direction's noted spans: they point into the caller's
        buffer or the carry, which are about to go or move."""
        while self._hp_dirty != NULL:
            self._hist_copy_pending(self._hp_dirty)

    cdef inline void _hist_forget(self, Dir *d) noexcept nogil:
        """``d``'s history ring is about to be freed: its noted spans are not copied."""
        if d.hp != NULL and d.hp.linked:
            self._hist_unlink(d.hp)

    cdef void _hist_free(self, Dir *d) noexcept nogil:
        self._hist_forget(d)
        free(d.hp)
        d.hp = NULL
        d.hist = NULL

    # ------------------------------------------------------------- events
    cdef EvRec *_ev(self, int kind) except NULL nogil:
        """A new record at the end of the batch (valid until the next call)."""
        cdef EvBatch *b = self._batch
        cdef EvRec *r
        if b == NULL:
            b = <EvBatch *>calloc(1, sizeof(EvBatch))
            if b == NULL:
                with gil: raise MemoryError()
            self._batch = b
        if b.n == b.cap:
            grow_array(<void **>&b.recs, &b.cap, sizeof(EvRec), 64)
        r = &b.recs[b.n]
        b.n += 1
        r.kind = kind
        r.obj = NULL
        r.mem = NULL
        r.mlen = 0
        return r

    cdef int _expert_ev(self, long long flow, int direction, int code, long long frame, long long ts,
                        long long off, long long a1, long long a2) except -1 nogil:
        cdef EvRec *r = self._ev(EV_EXPERT)
        r.v[:8] = [flow, direction, code, frame, ts, off, a1, a2]
        return 0

    cdef int _cap_expert(self, int code, long long offset, long long a1, long long a2) except -1 nogil:
        return self._expert_ev(-1, -1, code, self._frame, self._ts, offset, a1, a2)

    cdef int _flow_expert(self, Flow *fl, int code, long long frame, long long ts, long long off,
                          long long a1, long long a2, int side) except -1 nogil:
        if fl.confirmed:
            fl.run_at = 0
            self._expert_ev(fl.id, dir_of(fl, side), code, frame, ts, off, a1, a2)
        return 0

    cdef int _confirm(self, Flow *fl, int side, int t, long long frame, long long ts) except -1 nogil:
        cdef int client, s, pa, pb
        cdef bint a_srv, b_srv
        cdef EvRec *r
        fl.confirmed = True
        self.cnt[CT_DICOM_FLOWS] += 1
        if fl.syn_side >= 0:
            client = fl.syn_side
        elif fl.synack_side >= 0:
            client = 1 - fl.synack_side
        elif t == 1:
            client = side
        elif t == 2 or t == 3:
            client = 1 - side
        else:
            pa = fl.port[0]
            pb = fl.port[1]
            a_srv = self._is_port(pa)
            b_srv = self._is_port(pb)
            if a_srv != b_srv:
                client = 1 if a_srv else 0
            else:
                client = 1 if pa < pb else 0
        fl.client = client
        s = 1 - client
        r = self._ev(EV_FLOW)
        r.v[:9] = [fl.id, frame, ts, fl.port[client], fl.port[s], fl.syn_ts, fl.synack_ts, fl.ack_ts,
                   fl.ipver]
        memcpy(&r.v[9], fl.ip[client], 16)
        memcpy(&r.v[11], fl.ip[s], 16)
        return 0

    # ------------------------------------------------------------- framer
    cdef inline void _init_framer(self, Dir *d, bint stream_start) noexcept nogil:
        d.foff = d.offset
        d.rbuf_off = d.offset
        # at a stream start the first PDU must pass check_candidate at offset 0
        d.st = S_PROBE if stream_start else S_SYNC

    cdef int _fr_data(self, Flow *fl, int side, Dir *d, const uint8_t *data, Py_ssize_t n,
                      long long frame, long long ts) except -1 nogil:
        """Frame delivered stream bytes.  When a search finds a PDU boundary, the
        bytes it held are replayed (as their original frames) before going on."""
        cdef int r = self._fr_run(fl, side, d, data, n, frame, ts)
        cdef Py_ssize_t base, j, lo, mend
        cdef Replay *top
        cdef Mark *mk
        if r != FR_REPLAY:
            return 0
        base = self._rs_n
        try:
            self._rs_push()
            while self._rs_n > base:
                top = &self._rs[self._rs_n - 1]
                lo = mend = 0
                mk = NULL
                while top.j < top.nmarks:
                    j = top.j
                    top.j += 1
                    mend = top.marks[j + 1].idx if j + 1 < top.nmarks else top.n
                    lo = lmax(top.marks[j].idx, top.pos)
                    if lo < mend:
                        mk = &top.marks[j]
                        break
                if mk == NULL:
                    self._rs_n -= 1
                    free(top.buf)
                    free(top.marks)
                    continue
                r = self._fr_run(fl, side, d, top.buf + lo, mend - lo, mk.frame, mk.ts)
                if r == FR_DEAD:
                    break
                if r == FR_REPLAY:
                    self._rs_push()
        finally:
            while self._rs_n > base:
                self._rs_n -= 1
                free(self._rs[self._rs_n].buf)
                free(self._rs[self._rs_n].marks)
        return 0

    cdef int _rs_push(self) except -1 nogil:
        cdef Replay *a
        cdef Py_ssize_t cap
        if self._rs_n == self._rs_cap:
            cap = self._rs_cap * 2 if self._rs_cap else 8
            a = <Replay *>realloc(self._rs, cap * sizeof(Replay))
            if a == NULL:
                free(self._pending.buf)
                free(self._pending.marks)
                self._pending.buf = NULL
                self._pending.marks = NULL
                with gil: raise MemoryError()
            self._rs = a
            self._rs_cap = cap
        self._rs[self._rs_n] = self._pending
        self._rs_n += 1
        self._pending.buf = NULL
        self._pending.marks = NULL
        return 0

    cdef int _fr_run(self, Flow *fl, int side, Dir *d, const uint8_t *data, Py_ssize_t n,
                     long long frame, long long ts) except -1 nogil:
        """The framer's state machine over one piece of stream data (FR_*)."""
        cdef Py_ssize_t i = 0, k
        cdef int st
        while i < n:
            st = d.st
            if st == S_PDV_DATA:
                i = self._pdv_data(fl, side, d, data, i, n, frame, ts)
            elif st == S_HDR:
                if d.hlen == 0:
                    d.pdu_off = d.foff
                    d.f0 = d.f1 = frame
                    d.t0 = d.t1 = ts
                else:
                    d.f1 = lmax(d.f1, frame)
                    d.t1 = lmax(d.t1, ts)
                k = lmin(6 - d.hlen, n - i)
                memcpy(d.hbuf + d.hlen, data + i, k)
                d.hlen += k
                i += k
                d.foff += k
                if d.hlen == 6:
                    self._on_header(fl, side, d, frame, ts)
            elif st == S_BODY:
                k = lmin(d.pdu_rem, n - i)
                buf_append(&d.pbuf, data + i, k)
                d.f1 = lmax(d.f1, frame)
                d.t1 = lmax(d.t1, ts)
                i += k
                d.foff += k
                d.pdu_rem -= k
                if d.pdu_rem == 0:
                    self._end_body(fl, side, d, 0)
            elif st == S_PDV_HDR:
                d.f1 = lmax(d.f1, frame)
                d.t1 = lmax(d.t1, ts)
                k = lmin(lmin(6 - d.hlen, n - i), d.pdu_rem)
                memcpy(d.hbuf + d.hlen, data + i, k)
                d.hlen += k
                i += k
                d.foff += k
                d.pdu_rem -= k
                if d.hlen == 6:
                    self._on_pdv_header(fl, side, d, frame, ts)
                elif d.pdu_rem == 0:
                    self._flow_expert(fl, X_PDV_HEADER_CUT, frame, ts, d.foff, d.hlen, 0, side)
                    d.hlen = 0
                    d.damaged = True
                    self._end_pdata(fl, side, d)
            elif st == S_SKIP:
                d.f1 = lmax(d.f1, frame)
                d.t1 = lmax(d.t1, ts)
                k = lmin(d.skip_rem, n - i)
                i += k
                d.foff += k
                d.skip_rem -= k
                d.pdu_rem -= k
                if d.skip_rem == 0:
                    self._end_damaged(fl, side, d)
            elif st == S_TENT:
                k = lmin(d.tent_rem, n - i)
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
                marks_push(d, d.rbuf.n, frame, ts)
                buf_append(&d.rbuf, data + i, n - i)
                d.foff += n - i
                i = n
                if self._sync(fl, side, d):
                    return FR_REPLAY
            else:  # S_DEAD
                return FR_DEAD
        return FR_DONE

    cdef int _sync(self, Flow *fl, int side, Dir *d) except -1 nogil:
        """Search rbuf for a PDU boundary.  Returns 1 once one is found: the
        bytes from it on are then in ``_pending``, to be framed again."""
        cdef uint8_t *buf = d.rbuf.p
        cdef Py_ssize_t n = d.rbuf.n
        cdef Py_ssize_t pos = d.scan, j, w
        cdef bint probe = d.st == S_PROBE
        cdef bint limited = fl.heuristic_only and not fl.confirmed
        cdef int verdict = C_REJECT, t
        cdef long long L = 0, skipped, start_off, frame, ts
        cdef Mark *marks
        cdef Dir *other
        while pos < n:
            verdict = check_cand(buf, pos, n, self.sync_max_pdu, &L)
            if verdict == C_REJECT or (verdict == C_TENTATIVE and (
                    probe or (limited and d.heur + pos + 6 + L > self.heuristic_window))):
                verdict = C_REJECT
                if probe:
                    if limited:  # the heuristic's verdict: not DICOM
                        self._ignore(fl)
                        return 0
                    # the stream does not start with a PDU: search for one
                    probe = False
                    d.st = S_SYNC
                    d.lost = True
                pos += 1
                if not probe and pos < n:
                    pos = skip_to_candidate(buf, pos, n)
                continue
            break
        if verdict == C_ACCEPT or verdict == C_TENTATIVE:
            skipped = d.skipped + pos
            d.heur += pos
            start_off = d.rbuf_off + pos
            # hand rbuf[pos:] over, with its (frame, ts) marks, to be framed again
            marks = d.rmarks
            j = 0
            while j + 1 < d.rmarks_n and marks[j + 1].idx <= pos:
                j += 1
            frame = marks[j].frame
            ts = marks[j].ts
            self._pending.buf = buf
            self._pending.n = n
            self._pending.marks = marks
            self._pending.nmarks = d.rmarks_n
            self._pending.j = 0
            self._pending.pos = pos
            d.rbuf.p = NULL
            d.rbuf.n = d.rbuf.cap = 0
            d.rmarks = NULL
            d.rmarks_n = d.rmarks_cap = 0
            d.scan = 0
            d.foff = start_off
            if verdict == C_TENTATIVE:
                d.st = S_TENT
                d.tent_rem = 6 + L
                d.skipped = skipped
                return 1
            t = buf[pos]
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
            return 1
        # no boundary yet: drop what cannot start one
        if pos:
            memmove(buf, buf + pos, n - pos)
            d.rbuf.n = n - pos
            d.rbuf_off += pos
            d.skipped += pos
            d.heur += pos
            if d.rbuf.n:
                marks = d.rmarks
                for j in range(d.rmarks_n):
                    marks[j].idx = lmax(0, marks[j].idx - pos)
                # keep only the last mark of those that now start at 0
                w = 0
                while w + 1 < d.rmarks_n and marks[w + 1].idx == 0:
                    w += 1
                if w:
                    memmove(marks, marks + w, (d.rmarks_n - w) * sizeof(Mark))
                    d.rmarks_n -= w
            else:
                d.rmarks_n = 0
        d.scan = 0
        if limited and d.heur > self.heuristic_window:
            d.st = S_DEAD
            buf_free(&d.rbuf)
            d.rmarks_n = 0
            other = &fl.dirs[1 - side]
            if other.st == S_DEAD or not other.started:
                self._ignore(fl)
        return 0

    cdef int _ignore(self, Flow *fl) except -1 nogil:
        """The heuristic decided this connection is not DICOM."""
        cdef int s
        cdef Dir *x
        fl.state = F_IGNORED
        for s in range(2):
            x = &fl.dirs[s]
            x.st = S_DEAD
            buf_free(&x.rbuf)
            x.rmarks_n = 0
            self._hist_free(x)
            self._ooo_total -= x.ooo_bytes
            dir_drop_ooo(x)
            x.ooo_bytes = 0
        return 0

    cdef int _lose_sync(self, Dir *d, const uint8_t *keep, Py_ssize_t nkeep, long long frame,
                        long long ts) except -1 nogil:
        dir_forget_cuts(d)
        d.st = S_SYNC
        d.lost = True
        d.rbuf.n = 0
        d.rmarks_n = 0
        if nkeep:
            buf_append(&d.rbuf, keep, nkeep)
            marks_push(d, 0, frame, ts)
        d.rbuf_off = d.foff - nkeep
        d.scan = 1 if nkeep else 0
        return 0

    cdef int _on_header(self, Flow *fl, int side, Dir *d, long long frame, long long ts) except -1 nogil:
        cdef uint8_t keep[6]
        cdef int t = d.hbuf[0]
        cdef long long L = be32(d.hbuf + 2)
        cdef bint valid = True
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
            memcpy(keep, d.hbuf, 6)
            d.hlen = 0
            self._lose_sync(d, keep, 6, d.f0, d.t0)
            return 0
        d.hlen = 0
        d.pdu_type = t
        d.pdu_len = L
        d.pdu_rem = L
        d.damaged = False
        self.cnt[CT_PDUS] += 1
        if t == 4:
            d.st = S_PDV_HDR
            dir_drop_pieces(d)
            d.pieces_bytes = 0
        else:
            d.st = S_BODY
            buf_clear(&d.pbuf)
            if L == 0:
                self._end_body(fl, side, d, 0)
        return 0

    cdef int _end_body(self, Flow *fl, int side, Dir *d, int flags) except -1 nogil:
        cdef int t = d.pdu_type
        cdef long long m
        cdef EvRec *r
        if fl.confirmed:
            fl.run_at = 0
            r = self._ev(EV_PDU)
            r.v[:10] = [fl.id, dir_of(fl, side), t, d.pdu_len, d.pdu_off, d.f0, d.f1, d.t0, d.t1,
                        PF_FINAL | flags]
            if d.pbuf.n:
                r.mem = <uint8_t *>malloc(d.pbuf.n)
                if r.mem == NULL:
                    with gil: raise MemoryError()
                memcpy(r.mem, d.pbuf.p, d.pbuf.n)
                r.mlen = d.pbuf.n
        if (t == 1 or t == 2) and not flags:
            m = max_length(d.pbuf.p, d.pbuf.n) if d.pbuf.n else -1
            if m >= 0:
                fl.dirs[1 - side].max_len = m
        if self.trim_heads:
            self._heads_pdu(fl, d, t, flags)
        buf_clear(&d.pbuf)
        d.st = S_HDR
        return 0

    cdef int _heads_pdu(self, Flow *fl, Dir *d, int t, int flags) except -1 nogil:
        """trim_heads: an association PDU.  The one A-ASSOCIATE-AC of the
        connection tells each context's transfer syntax (``ac_syntaxes``), as
        the decoder reads it when the association has no other (it takes an
        association's first AC, and an RQ may begin a new association);
        another AC, an RQ after it, an AC the decoder does not see or that is
        cut: no head of this connection is cut any more.  Any association
        PDU may end the decoder's data sets: heads already cut are let go."""
        if t == 2:
            if fl.ac_state == AC_NONE and fl.confirmed and not flags:
                if fl.ctx_syntax == NULL:
                    fl.ctx_syntax = <uint8_t *>malloc(256)
                    if fl.ctx_syntax == NULL:
                        with gil: raise MemoryError()
                fl.ac_state = AC_KNOWN if ac_syntaxes(d.pbuf.p, d.pbuf.n, fl.ctx_syntax) else AC_UNSURE
            else:
                fl.ac_state = AC_UNSURE
        elif t == 1 and fl.ac_state == AC_KNOWN:
            fl.ac_state = AC_UNSURE
        dir_forget_cuts(&fl.dirs[0])
        dir_forget_cuts(&fl.dirs[1])
        return 0

    cdef int _on_pdv_header(self, Flow *fl, int side, Dir *d, long long frame,
                            long long ts) except -1 nogil:
        cdef long long pl = be32(d.hbuf)
        cdef int ctx = d.hbuf[4]
        cdef int mch = d.hbuf[5]
        cdef long long room, vlen, lim
        d.hlen = 0
        if pl < 2:
            self._flow_expert(fl, X_PDV_TOO_SMALL, frame, ts, d.foff - 6, pl, 0, side)
            return self._skip_rest(fl, side, d)
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
        dir_drop_dbuf(d)
        if mch & 1:
            d.store_limit = self.max_command
            if vlen > self.max_command:
                self._flow_expert(fl, X_COMMAND_TOO_LARGE, frame, ts, d.foff - 6, vlen, 0, side)
            if d.msg_off != NULL:
                d.msg_off[256 + ctx] = 0  # a command ends the decoder's data set on this context
        else:
            d.msg_base = d.msg_off[ctx] if d.msg_off != NULL else 0
            lim = self.data_limit
            if d.msg_off != NULL and d.msg_off[256 + ctx]:
                lim = lmin(lim, d.msg_off[256 + ctx])  # its head was cut (trim_heads)
            d.store_limit = -1 if lim < 0 else lmax(0, lim - d.msg_base)
        d.st = S_PDV_DATA
        if vlen == 0:
            self._end_pdv(fl, side, d)
        return 0

    cdef Py_ssize_t _pdv_data(self, Flow *fl, int side, Dir *d, const uint8_t *data, Py_ssize_t i,
                              Py_ssize_t n, long long frame, long long ts) except -1 nogil:
        """Hand out PDV value bytes: stored (up to the limit) into the piece's
        bytes object (or memory, without the GIL), allocated at the piece's
        largest possible size."""
        cdef long long take = lmin(d.pdv_rem, n - i), k
        cdef long long cs = self.chunk_size
        cdef long long lim = d.store_limit
        cdef bint ok
        d.f1 = lmax(d.f1, frame)
        d.t1 = lmax(d.t1, ts)
        while take > 0:
            if lim < 0 or d.pdv_pos < lim:
                k = lmin(take, cs - d.dlen)
                if lim >= 0:
                    k = lmin(k, lim - d.pdv_pos)
                if d.dcap == 0:
                    d.dcap = lmin(cs, d.pdv_rem)
                    if lim >= 0:
                        d.dcap = lmin(d.dcap, lim - d.pdv_pos)
                    if self._threaded:
                        d.dmem = <uint8_t *>malloc(d.dcap)
                        ok = d.dmem != NULL
                    else:
                        d.dobj = _new_bytes_held(NULL, d.dcap)
                        ok = d.dobj != NULL
                    if not ok:
                        d.dcap = 0
                        with gil: raise MemoryError()
                if d.dmem != NULL:
                    memcpy(d.dmem + d.dlen, data + i, k)
                else:
                    memcpy(_bytes_str(d.dobj) + d.dlen, data + i, k)
                d.dlen += k
            else:
                k = take
            i += k
            take -= k
            d.pdv_pos += k
            d.pdv_rem -= k
            d.pdu_rem -= k
            d.foff += k
            if d.dlen == cs and d.pdv_rem > 0:
                self._cut_piece(fl, side, d)
        if d.pdv_rem == 0:
            self._end_pdv(fl, side, d)
        return i

    cdef int _cut_piece(self, Flow *fl, int side, Dir *d) except -1 nogil:
        cdef EvRec *r
        if d.pieces_n == d.pieces_cap:
            grow_array(<void **>&d.pieces, &d.pieces_cap, sizeof(EvRec), 8)
        r = &d.pieces[d.pieces_n]
        r.kind = EV_PIECE
        r.v[:5] = [d.pdv_ctx, d.pdv_mch, d.pdv_len, d.piece_off, d.pdv_pos - d.piece_off]
        r.obj = NULL
        r.mem = d.dmem  # (the bytes past dlen, if it was cut short, are not copied out)
        r.mlen = d.dlen
        if d.dobj != NULL:
            if d.dlen == d.dcap:
                r.obj = d.dobj
            else:  # cut short (a gap or the end): a right-sized copy
                r.obj = _new_bytes_held(_bytes_str(d.dobj), d.dlen)
                _decref_held(d.dobj)
                if r.obj == NULL:
                    d.dobj = NULL
                    d.dlen = d.dcap = 0
                    with gil: raise MemoryError()
        d.pieces_n += 1
        d.dobj = NULL
        d.dmem = NULL
        d.dcap = 0
        d.pieces_bytes += d.dlen
        d.piece_off = d.pdv_pos
        d.dlen = 0
        if d.pieces_bytes >= self.chunk_size or d.pieces_n >= MAX_PIECES:
            self._flush_pieces(fl, side, d, 0)
        return 0

    cdef int _flush_pieces(self, Flow *fl, int side, Dir *d, int flags) except -1 nogil:
        cdef Py_ssize_t k, n = d.pieces_n
        cdef EvRec *r
        if (fl.confirmed and self.pdata_runs and flags == PF_FINAL and n == 1
                and plain_piece(&d.pieces[0], d.pdu_len)):
            self._run_add(fl, side, d, &d.pieces[0])  # (the piece holds no bytes)
        elif fl.confirmed:
            fl.run_at = 0
            r = self._ev(EV_PDATA)
            r.v[:13] = [fl.id, dir_of(fl, side), 4, d.pdu_len, d.pdu_off, d.f0, d.f1, d.t0, d.t1, flags,
                        self._frame + self._at_eof, fl.last_frame, n]
            for k in range(n):
                r = self._ev(EV_PIECE)
                r[0] = d.pieces[k]  # the batch takes the bytes over
            d.pieces_n = 0
        else:
            dir_drop_pieces(d)
        d.pieces_n = 0
        d.pieces_bytes = 0
        return 0

    cdef int _run_add(self, Flow *fl, int side, Dir *d, EvRec *piece) except -1 nogil:
        """A plain P-DATA-TF (``plain_piece``) into its connection's run
        (events.py: EV_PDATA_RUN): the run this connection began in the
        events not yet handed out, if no other event of the connection came
        since and it has the same direction and context; else a new one.
        Each PDU adds its row of what its own EV_PDATA would have said."""
        cdef EvRec *r = NULL
        cdef int direction = dir_of(fl, side)
        cdef long long ctx = piece.v[0], plen = piece.v[4], t1 = d.t1
        cdef long long *row
        cdef Py_ssize_t need, cap
        cdef uint8_t *grown
        if fl.run_at > 0 and fl.run_batch == self._batch_serial and self._batch != NULL:
            r = &self._batch.recs[fl.run_at - 1]
            if r.v[1] != direction or r.v[2] != ctx:
                r = NULL
        if r == NULL:
            r = self._ev(EV_PDATA_RUN)
            fl.run_at = self._batch.n
            fl.run_batch = self._batch_serial
            r.v[:14] = [fl.id, direction, ctx, 0, 0, 0, 0, t1, t1, 0, 0, 0, 0, 0]
        need = r.mlen + RUN_ROW * sizeof(long long)
        cap = <Py_ssize_t>r.v[13]
        if need > cap:
            cap = lmax(need, 2 * cap)
            grown = <uint8_t *>realloc(r.mem, cap)
            if grown == NULL:
                with gil: raise MemoryError()
            r.mem = grown
            r.v[13] = cap
        row = <long long *>(r.mem + r.mlen)
        row[:RUN_ROW] = [d.pdu_len, d.pdu_off, d.f0, d.f1, d.t0, t1, piece.v[2],
                         self._frame + self._at_eof, fl.last_frame]
        r.mlen = need
        r.v[3] += 1  # PDUs
        r.v[4] += d.pdu_len + 6  # their bytes, headers included
        r.v[5] += plen  # PDV value bytes
        r.v[6] = d.f1  # the last one's last frame
        r.v[7] = lmin(r.v[7], t1)
        r.v[8] = lmax(r.v[8], t1)
        r.v[9] = t1  # the last one's last time
        r.v[10] = plen  # the last one's PDV value length
        return 0

    cdef int _end_pdv(self, Flow *fl, int side, Dir *d) except -1 nogil:
        cdef int ctx, syntax
        cdef long long cut = 0
        if (self.trim_heads and fl.ac_state == AC_KNOWN and d.msg_base == 0 and d.piece_off == 0
                and d.dlen and not d.pdv_mch & 1):
            # the first PDV of a data set: its head is cut where no walk of it
            # looks further (head_cut), and no later PDV of it hands bytes out
            syntax = fl.ctx_syntax[d.pdv_ctx]
            if syntax:  # (a cut lies inside the bytes walked: 0 < cut <= dlen)
                cut = lmax(0, head_cut(d.dmem if d.dmem != NULL else <uint8_t *>_bytes_str(d.dobj), d.dlen,
                                       syntax - 1, self.data_limit))
                if cut:
                    d.dlen = cut
        self._cut_piece(fl, side, d)
        if not d.pdv_mch & 1:
            ctx = d.pdv_ctx
            if d.msg_off == NULL:
                d.msg_off = <long long *>calloc(512, sizeof(long long))
                if d.msg_off == NULL:
                    with gil: raise MemoryError()
            if d.pdv_mch & 2:
                d.msg_off[ctx] = 0
                d.msg_off[256 + ctx] = 0
            else:
                d.msg_off[ctx] = d.msg_base + d.pdv_pos
                if cut:
                    d.msg_off[256 + ctx] = cut
        if d.overrun:
            d.damaged = True
        if d.pdu_rem == 0:
            self._end_pdata(fl, side, d)
        else:
            d.st = S_PDV_HDR
        return 0

    cdef int _end_pdata(self, Flow *fl, int side, Dir *d) except -1 nogil:
        self._flush_pieces(fl, side, d, PF_FINAL | (PF_TRUNCATED if d.damaged else 0))
        d.st = S_HDR
        return 0

    cdef int _skip_rest(self, Flow *fl, int side, Dir *d) except -1 nogil:
        d.damaged = True
        if d.pdu_rem == 0:
            self._end_pdata(fl, side, d)
        else:
            d.st = S_SKIP
            d.skip_rem = d.pdu_rem
        return 0

    cdef int _end_damaged(self, Flow *fl, int side, Dir *d) except -1 nogil:
        if d.pdu_type == 4:
            return self._end_pdata(fl, side, d)
        return self._end_body(fl, side, d, PF_TRUNCATED)

    cdef int _abort_pdu(self, Flow *fl, int side, Dir *d) except -1 nogil:
        """Hand out what arrived of the current PDU, marked truncated."""
        if d.pdu_type == 4:
            if d.st == S_PDV_DATA and (d.pdv_pos > d.piece_off or d.dlen):
                self._cut_piece(fl, side, d)
            return self._flush_pieces(fl, side, d, PF_FINAL | PF_TRUNCATED)
        return self._end_body(fl, side, d, PF_TRUNCATED)

    cdef int _fr_gap(self, Flow *fl, int side, Dir *d, long long size, long long frame,
                     long long ts) except -1 nogil:
        cdef int st = d.st
        cdef long long off = d.foff
        cdef bint resumed
        if st == S_DEAD:
            return 0
        dir_forget_cuts(d)  # the decoder may end its data sets at a gap: heads are not cut across one
        if size >= 0:
            resumed = False
            if st == S_PDV_DATA and size < d.pdv_rem:
                # the hole is inside this PDV value: framing goes on after it
                if d.pdv_pos > d.piece_off or d.dlen:
                    self._cut_piece(fl, side, d)
                if d.pieces_n:
                    self._flush_pieces(fl, side, d, 0)
                d.pdv_pos += size
                d.pdv_rem -= size
                d.pdu_rem -= size
                d.piece_off = d.pdv_pos
                resumed = True
            elif (st == S_PDV_DATA or st == S_PDV_HDR or st == S_SKIP) and size <= d.pdu_rem:
                # the PDU's remaining PDV headers are lost, but its end is known
                if st == S_PDV_DATA and (d.pdv_pos > d.piece_off or d.dlen):
                    self._cut_piece(fl, side, d)
                if d.pieces_n:
                    self._flush_pieces(fl, side, d, 0)
                d.hlen = 0
                d.pdu_rem -= size
                d.damaged = True
                d.foff += size
                self._gap_event(fl, side, off, size, frame, ts, 1)
                if d.pdu_rem == 0:
                    self._end_damaged(fl, side, d)
                else:
                    d.st = S_SKIP
                    d.skip_rem = d.pdu_rem
                return 0
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
                return self._gap_event(fl, side, off, size, frame, ts, 1)
        # framing cannot continue across this gap
        if st == S_BODY:
            self._flow_expert(fl, X_PDU_IN_GAP, frame, ts, d.pdu_off, d.pdu_type, 0, side)
        if st == S_BODY or st == S_PDV_HDR or st == S_PDV_DATA or st == S_SKIP:
            self._abort_pdu(fl, side, d)
        elif st == S_SYNC or st == S_PROBE or st == S_TENT:
            d.skipped += d.rbuf.n
        d.hlen = 0
        if size > 0:
            d.foff += size
        self._gap_event(fl, side, off, size, frame, ts, 0)
        self._lose_sync(d, NULL, 0, 0, 0)
        d.lost = d.synced
        return 0

    cdef int _gap_event(self, Flow *fl, int side, long long off, long long size, long long frame,
                        long long ts, int resumed) except -1 nogil:
        cdef EvRec *r
        if fl.confirmed:
            fl.run_at = 0
            r = self._ev(EV_GAP)
            r.v[:7] = [fl.id, dir_of(fl, side), off, size, frame, ts, resumed]
        return 0

    cdef int _fr_eof(self, Flow *fl, int side, Dir *d, long long frame, long long ts) except -1 nogil:
        cdef int st = d.st
        cdef long long left
        if st == S_HDR and d.hlen:
            self._flow_expert(fl, X_PDU_TRUNCATED, frame, ts, d.pdu_off, d.hbuf[0], 6 - d.hlen, side)
        elif st == S_BODY or st == S_PDV_HDR or st == S_PDV_DATA or st == S_SKIP:
            self._flow_expert(fl, X_PDU_TRUNCATED, frame, ts, d.pdu_off, d.pdu_type, d.pdu_rem, side)
            self._abort_pdu(fl, side, d)
        elif st == S_SYNC or st == S_PROBE or st == S_TENT:
            left = d.skipped + d.rbuf.n + (d.tent_rem if st == S_TENT else 0)
            if left:
                self._flow_expert(fl, X_UNSYNCED_BYTES, frame, ts, d.foff, left, 0, side)
        d.hlen = 0
        d.st = S_DEAD
        return 0


# ============================================== events: records -> tuples
cdef inline object _rec_bytes(EvRec *r):
    """The record's bytes as a bytes object; the record no longer owns them."""
    cdef PyObject *o = r.obj
    if o != NULL:
        r.obj = NULL
        out = <object>o  # a reference of our own...
        Py_XDECREF(o)  # ...so the record's goes
        return out
    if r.mem == NULL:
        return b""
    out = mkbytes(r.mem, r.mlen)
    free(r.mem)
    r.mem = NULL
    return out


cdef inline bint plain_piece(EvRec *p, long long pdu_len) noexcept nogil:
    """The one piece of a P-DATA-TF that holds one whole PDV, a middle
    fragment of a data set (control header 0), none of whose bytes were
    handed out: the PDUs an EV_PDATA_RUN gathers (PDU length = 4-byte item
    length + the item)."""
    return (p.v[1] == 0 and p.v[3] == 0 and p.v[4] > 0 and p.v[4] == p.v[2] - 2 and pdu_len == p.v[2] + 4
            and p.obj == NULL and p.mem == NULL and p.mlen == 0)


cdef list engine_events(EvBatch *batch):
    cdef list out = []
    cdef Py_ssize_t k = 0, j, m
    cdef EvRec *r
    cdef long long *v
    if batch == NULL:
        return out
    try:
        while k < batch.n:
            r = &batch.recs[k]
            v = r.v
            k += 1
            if r.kind == EV_PDATA:
                m = v[12]
                pieces = PyTuple_New(m)
                for j in range(m):
                    p = &batch.recs[k + j]
                    data = _rec_bytes(p)
                    piece = (p.v[0], p.v[1], p.v[2], p.v[3], p.v[4], data)
                    Py_INCREF(piece)
                    _tuple_set(pieces, j, <PyObject *>piece)  # the tuple takes this reference
                k += m
                out.append((EV_PDATA, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                            pieces, v[9], v[10], v[11]))
            elif r.kind == EV_PDATA_RUN:
                out.append((EV_PDATA_RUN, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
                            v[10], _rec_bytes(r)))
            elif r.kind == EV_EXPERT:
                out.append((EV_EXPERT, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]))
            elif r.kind == EV_PDU:
                out.append((EV_PDU, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                            _rec_bytes(r), v[9]))
            elif r.kind == EV_GAP:
                out.append((EV_GAP, v[0], v[1], v[2], v[3], v[4], v[5], v[6]))
            elif r.kind == EV_FLOW:
                out.append((EV_FLOW, v[0], v[1], v[2], format_ip(v[8], <uint8_t *>&v[9]), v[3],
                            format_ip(v[8], <uint8_t *>&v[11]), v[4], v[5], v[6], v[7]))
            elif r.kind == EV_FLOW_END:
                out.append((EV_FLOW_END, v[0], v[1], v[2], v[3],
                            (v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11])))
            elif r.kind == EV_TCP_ATTEMPT:
                out.append((EV_TCP_ATTEMPT, v[0], v[1], format_ip(v[5], <uint8_t *>&v[6]), v[2],
                            format_ip(v[5], <uint8_t *>&v[8]), v[3], v[4]))
            else:  # pragma: no cover - every kind is above
                raise AssertionError(f"unknown event record {r.kind}")
    finally:
        batch_free(batch)
    return out


cdef void batch_free(EvBatch *batch) noexcept nogil:
    cdef Py_ssize_t k
    if batch == NULL:
        return
    for k in range(batch.n):
        rec_free(&batch.recs[k])
    free(batch.recs)
    free(batch)


cdef Py_ssize_t batch_bytes(EvBatch *batch) noexcept nogil:
    """The memory a batch holds: its records and their bytes."""
    cdef Py_ssize_t k, total
    if batch == NULL:
        return 0
    total = sizeof(EvBatch) + batch.cap * sizeof(EvRec)
    for k in range(batch.n):
        total += batch.recs[k].mlen
    return total


cdef int engine_attach(object engine) except -1:
    cdef Engine e = <Engine?>engine
    if e._attached:
        raise RuntimeError("this engine is already walked by a reading thread")
    if e._finished:
        raise ValueError("the engine has finished")
    if e._fed and not e._threaded:
        # pieces begun under the GIL are bytes objects, which the walk without it cannot keep
        raise ValueError("an engine fed by feed() cannot be walked by a reading thread")
    e._attached = True
    e._threaded = True
    return 0


cdef void engine_detach(object engine) noexcept:
    (<Engine>engine)._attached = False


cdef int engine_walk(void *engine, const uint8_t *data, Py_ssize_t n) except -1 nogil:
    return (<Engine>engine)._walk(data, n)


cdef EvBatch *engine_take_events(void *engine) noexcept nogil:
    cdef EvBatch *b = (<Engine>engine)._batch
    (<Engine>engine)._batch = NULL
    (<Engine>engine)._batch_serial = (<Engine>engine)._batch_serial + 1  # its runs can no longer grow
    return b


cdef long long ts_ng(uint64_t t, int resol, bint pow2, long long tsoff) noexcept nogil:
    """pcapng timestamp units to ns, saturated to int64 (as the twin's ``_ts_ng``)."""
    cdef i128 ns
    cdef uint64_t div = 1
    cdef int k
    if pow2:
        ns = ((<i128>t) * NS) >> resol
    elif resol <= 9:
        ns = t
        for k in range(9 - resol):
            ns *= 10
    else:
        if resol - 9 > 19:
            ns = 0
        else:
            for k in range(resol - 9):
                div *= 10
            ns = t // div
    ns += (<i128>tsoff) * NS
    if ns > I64_MAX:
        return I64_MAX
    if ns < I64_MIN:
        return I64_MIN
    return <long long>ns


cdef inline Py_ssize_t skip_to_candidate(const uint8_t *buf, Py_ssize_t pos, Py_ssize_t n) noexcept nogil:
    """The next position at or after ``pos`` whose byte could start a PDU
    (types 1..7; check_candidate rejects any other first byte at once)."""
    while pos < n and (buf[pos] == 0 or buf[pos] > 7):
        pos += 1
    return pos


include "_tagwalk.pxi"
