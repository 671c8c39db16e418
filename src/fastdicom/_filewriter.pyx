# cython: language_level=3
"""The export sink's I/O stage: ordered file jobs on native threads.

The exporter (``export.py``) decides what goes where; this module only does
it, off the decoding thread and outside the GIL, so that writing and
hashing overlap with decoding without ever competing for the interpreter::

    decoding thread (GIL)                   I/O lanes (threads, no GIL, ever)
    open(slot, path, create)  --+           open(2) into fds[slot]
    write(slot, pos, pieces,    |  ring     pwritev(2) of the pieces, IOV_MAX at a time
          hasher)             --+-> of  --> close(2)
    close(slot)               --+  jobs     rename(2) to the first free name
    place(tmp, stem, suffix)  --+ (FIFO)
                                      \--> hashing thread (no GIL, ever)
                                            SHA-256 update over the pieces
    done() / wait(seq) <-- jobs every thread is past

Every thread walks the jobs strictly in submission order.  The I/O lanes
share the slots out (lane ``slot % lanes`` runs the jobs of a slot), so that
the files of several slots are written at once: a disk (above all a virtual
one) takes several writes in flight far faster than one after another, and
each write of ``O_DIRECT`` waits for the device.  A rename, and a reopen of an
existing file, run only once every lane is past the jobs before them (a file
is never renamed or written again while another lane still writes it); the
jobs that depend on them are in the same lane.  A job holds
references to its byte strings and hasher; the submitting thread drops them
once the job is done (only it touches Python objects).  Bytes in flight are
bounded (``max_pending``): ``write`` waits, with the GIL released, when the
disk is behind.  The first error stops all later opens and writes (closes
still run, so no descriptor leaks) and is raised, as ``OSError``, by the
next call.

With ``direct``, new files are written with ``O_DIRECT`` where the file
system takes it: the bytes go from an aligned staging buffer straight to
the device instead of through the page cache (on a virtual machine whose
page-cache pages are faulted in from the host one by one, that is several
times faster; ``dd`` showed 1.5 GB/s against 0.3 GB/s).  Only whole
``DIRECT_BLOCK`` blocks are written so; a file's last partial block stays
in the slot's tail buffer and is written padded at close, then the file is
truncated to its true length.  A write that is not a plain append (a hole,
a reopened file) or a file system that refuses ``O_DIRECT`` makes the
file, or the writer, go back to ordinary writes: the bytes on disk are the
same either way.

SHA-256 is the libcrypto that Python's own ``hashlib`` is linked with
(``SHA256_Init/Update/Final``, looked up with dlsym and checked against
``hashlib`` once).  Where it cannot be found ``native_sha256()`` is false and
the exporter hashes on the decoding thread instead.  The pure-Python twin is
``_pyfilewriter.py``.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from cpython.ref cimport PyObject, Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.errno cimport EINTR, EIO, errno
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset
from libc.errno cimport ENOMEM
from libc.string cimport memcpy, strlen
from posix.dlfcn cimport RTLD_NOW, dlopen, dlsym
from posix.fcntl cimport O_CREAT, O_EXCL, O_WRONLY, open as c_open
from posix.types cimport off_t
from posix.uio cimport iovec, pwritev
from posix.unistd cimport close as c_close

import os

IMPLEMENTATION = "cython"

cdef extern from "<fcntl.h>" nogil:
    enum: O_NOFOLLOW
    enum: O_CLOEXEC
    enum: F_GETFL
    enum: F_SETFL
    int fcntl(int, int, ...)

cdef extern from "<dlfcn.h>" nogil:
    enum: RTLD_NOLOAD

cdef extern from *:
    """
    #include <stdio.h>
    #include <fcntl.h>
    #include <errno.h>
    #include <unistd.h>
    #include <stdlib.h>
    #if defined(__linux__)
    #include <sys/syscall.h>
    #endif
    #ifdef O_DIRECT
    #define FW_O_DIRECT O_DIRECT
    #else
    #define FW_O_DIRECT 0
    #endif
    /* an aligned buffer for O_DIRECT (NULL when out of memory) */
    static char *fw_aligned(size_t align, size_t size) {
        void *p = NULL;
        return posix_memalign(&p, align, size) == 0 ? (char *)p : NULL;
    }
    /* rename(2) that fails with EEXIST instead of replacing (Linux renameat2
       RENAME_NOREPLACE); ENOSYS/EINVAL where the system or file system lacks it */
    static int fw_rename_noreplace(const char *from, const char *to) {
    #if defined(__linux__) && defined(SYS_renameat2)
        return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1u);
    #else
        (void)from; (void)to; errno = ENOSYS; return -1;
    #endif
    }
    """
    int fw_rename_noreplace(const char *, const char *) nogil
    int FW_O_DIRECT
    char *fw_aligned(size_t, size_t) nogil
    int snprintf(char *, size_t, const char *, ...) nogil

cdef extern from "<unistd.h>" nogil:
    int link(const char *, const char *)
    int ftruncate(int, off_t)
    ssize_t pwrite(int, const void *, size_t, off_t)
    int unlink(const char *)

cdef extern from "<errno.h>" nogil:
    enum: EEXIST
    enum: ENOSYS
    enum: EINVAL

from fastdicom._pthread cimport (
    pthread_cond_broadcast, pthread_cond_destroy, pthread_cond_init, pthread_cond_signal, pthread_cond_t,
    pthread_cond_wait, pthread_create, pthread_join, pthread_mutex_destroy, pthread_mutex_init,
    pthread_mutex_lock, pthread_mutex_t, pthread_mutex_unlock, pthread_t,
)

ctypedef int (*sha_init_f)(void *) noexcept nogil
ctypedef int (*sha_update_f)(void *, const void *, size_t) noexcept nogil
ctypedef int (*sha_final_f)(unsigned char *, void *) noexcept nogil

cdef sha_init_f _sha_init = NULL
cdef sha_update_f _sha_update = NULL
cdef sha_final_f _sha_final = NULL
cdef int _sha_state = 0  # 0: not looked up, 1: usable, -1: unavailable

cdef enum:
    SHA_CTX_BYTES = 256  # OpenSSL's SHA256_CTX is 112 bytes; room to spare
    RING = 4096  # jobs
    IOV_BATCH = 1024  # IOV_MAX on Linux and the BSDs
    DIRECT_BLOCK = 4096  # O_DIRECT alignment of buffers, offsets and lengths (>= any logical block)
    STAGE = 4 << 20  # each I/O lane's staging buffer for O_DIRECT writes
    MAX_LANES = 8  # I/O threads at most

cdef enum JobKind:
    J_OPEN = 1
    J_WRITE = 2
    J_CLOSE = 3
    J_PLACE = 4
    J_STOP = 5


cdef bint _lookup_sha256():
    """Bind SHA256_Init/Update/Final from the libcrypto hashlib uses, and
    check them against hashlib on two inputs."""
    global _sha_init, _sha_update, _sha_final, _sha_state
    if _sha_state:
        return _sha_state > 0
    _sha_state = -1
    try:
        import _hashlib  # loads libcrypto into the process
    except ImportError:
        return False
    cdef void *h = NULL
    for name in (b"libcrypto.so.3", b"libcrypto.so.1.1", b"libcrypto.so", b"libcrypto.3.dylib",
                 b"libcrypto.dylib"):
        h = dlopen(<const char *>name, RTLD_NOW | RTLD_NOLOAD)
        if h != NULL:
            break
    if h == NULL:
        return False
    _sha_init = <sha_init_f>dlsym(h, b"SHA256_Init")
    _sha_update = <sha_update_f>dlsym(h, b"SHA256_Update")
    _sha_final = <sha_final_f>dlsym(h, b"SHA256_Final")
    if _sha_init == NULL or _sha_update == NULL or _sha_final == NULL:
        return False
    import hashlib
    _sha_state = 1
    for sample in (b"abc", bytes(range(256)) * 4099):
        s = Sha256()
        s.update(sample)
        if s.hexdigest() != hashlib.sha256(sample).hexdigest():
            _sha_state = -1
            return False
    return True


def native_sha256() -> bool:
    """Whether the writer thread can hash (libcrypto's SHA-256 was found and checked)."""
    return _lookup_sha256()


cdef class Sha256:
    """SHA-256 whose state the writer thread updates without the GIL.
    ``hexdigest()`` (hashlib's meaning) is valid once the jobs that update it are done."""

    cdef unsigned char ctx[SHA_CTX_BYTES]

    def __cinit__(self):
        if not _lookup_sha256():
            raise RuntimeError("libcrypto's SHA-256 is not available")
        _sha_init(self.ctx)

    def update(self, data):
        cdef const unsigned char[::1] v = data
        if v.shape[0]:
            _sha_update(self.ctx, &v[0], v.shape[0])

    def digest(self) -> bytes:
        cdef unsigned char tmp[SHA_CTX_BYTES]
        cdef unsigned char md[32]
        memcpy(tmp, self.ctx, SHA_CTX_BYTES)
        _sha_final(md, tmp)
        return md[:32]

    def hexdigest(self) -> str:
        return self.digest().hex()


cdef struct Job:
    int kind
    int slot
    int flags
    off_t pos
    Py_ssize_t n
    Py_ssize_t nbytes
    iovec *iov
    const char *path  # J_OPEN: the file; J_PLACE: the temporary file (inside ``keep``)
    const char *stem  # J_PLACE: the final name without suffix
    const char *suffix
    int *result  # J_PLACE: [errno or 0, number of the name taken]
    PyObject *keep  # the tuple of byte strings, or the path
    PyObject *hasher  # a Sha256 or NULL
    void *ctx
    bint io_complete  # its lane ran it
    bint hash_complete  # the hashing thread updated its hasher (or it has none)


cdef struct State

cdef struct Lane:
    State *s
    int k


# what the writer threads share with the caller (under ``lock``)
cdef struct State:
    Job *ring
    int *fds
    int max_open
    bint use_direct  # try O_DIRECT for new files (cleared when the file system refuses it)
    bint *direct  # per slot: the descriptor has O_DIRECT
    off_t *dend  # per slot (direct): the file's logical end
    Py_ssize_t *tail_len  # per slot (direct): bytes in the tail block, not yet on disk
    char **tail  # per slot (direct): the last partial block, DIRECT_BLOCK aligned
    int lanes  # I/O threads
    char *stage[MAX_LANES]  # per lane: STAGE + DIRECT_BLOCK bytes, aligned
    long long direct_bytes[MAX_LANES]  # per lane: bytes that went to disk with O_DIRECT
    Lane lane[MAX_LANES]
    Py_ssize_t pending  # bytes of the jobs not done
    long long head  # jobs submitted
    long long io_upto  # the jobs below have all been run by their lanes
    long long done  # the jobs below are complete (run and hashed)
    pthread_mutex_t lock
    pthread_cond_t lane_work[MAX_LANES]  # a job for this lane was queued
    pthread_cond_t hash_work  # a job with a hasher was queued
    pthread_cond_t space  # jobs completed
    int err_no
    int err_kind
    int err_slot


cdef void _advance(State *s) noexcept nogil:
    """A thread finished a job (``lock`` held): count the jobs complete."""
    cdef Job *j
    while s.io_upto < s.head and s.ring[s.io_upto % RING].io_complete:
        s.io_upto += 1
    while s.done < s.io_upto:
        j = &s.ring[s.done % RING]
        if not j.hash_complete:
            break
        s.pending -= j.nbytes
        s.done += 1
    pthread_cond_broadcast(&s.space)


cdef inline int _owner(State *s, Job *j) noexcept nogil:
    """The lane that runs ``j``: that of its slot; renames run on lane 0."""
    return 0 if j.kind == J_PLACE else j.slot % s.lanes


cdef inline bint _barrier(Job *j) noexcept nogil:
    """A rename, or the reopening of an existing file: after every earlier job
    (the later jobs that depend on it are in its own lane)."""
    return j.kind == J_PLACE or (j.kind == J_OPEN and (j.flags & O_CREAT) == 0)


cdef Job *_next_job(State *s, long long *i, int lane, pthread_cond_t *wake) noexcept nogil:
    """(``lock`` held) The next job from ``*i`` on for a thread, waiting on
    ``wake`` until there is one: for I/O lane ``lane`` the jobs of its slots,
    for the hashing thread (``lane`` -1) those with a hasher; a stop for all."""
    cdef Job *j
    while True:
        if i[0] < s.done:
            i[0] = s.done  # jobs of others completed (and reclaimed) meanwhile
        while i[0] < s.head:
            j = &s.ring[i[0] % RING]
            if j.kind == J_STOP or (not j.hash_complete if lane < 0 else _owner(s, j) == lane):
                return j
            i[0] += 1
        pthread_cond_wait(wake, &s.lock)


cdef void _lane_loop(State *s, int lane) noexcept nogil:
    """I/O lane ``lane``: run the jobs of its slots in order (the others are
    skipped; it is woken only for its own)."""
    cdef long long i = 0
    cdef Job *j
    cdef int kind
    pthread_mutex_lock(&s.lock)
    while True:
        j = _next_job(s, &i, lane, &s.lane_work[lane])
        kind = j.kind
        if kind == J_STOP:
            break
        if _barrier(j):
            while s.io_upto < i:
                pthread_cond_wait(&s.space, &s.lock)
        pthread_mutex_unlock(&s.lock)
        _execute(s, j, lane)
        pthread_mutex_lock(&s.lock)
        j.io_complete = True
        _advance(s)
        i += 1
    # the stop itself is completed by the caller once every thread has ended
    # (a lane that marked it would let the others' cursors jump past it)
    pthread_mutex_unlock(&s.lock)


cdef void *_io_loop(void *arg) noexcept nogil:
    cdef Lane *l = <Lane *>arg
    _lane_loop(l.s, l.k)
    return NULL


cdef void *_hash_loop(void *arg) noexcept nogil:
    """Update the SHA-256 of the write jobs that carry a hasher, in order."""
    cdef State *s = <State *>arg
    cdef long long i = 0
    cdef Job *j
    cdef Py_ssize_t k
    pthread_mutex_lock(&s.lock)
    while True:
        j = _next_job(s, &i, -1, &s.hash_work)
        if j.kind == J_STOP:
            break
        pthread_mutex_unlock(&s.lock)
        for k in range(j.n):
            _sha_update(j.ctx, j.iov[k].iov_base, j.iov[k].iov_len)
        pthread_mutex_lock(&s.lock)
        j.hash_complete = True
        _advance(s)
        i += 1
    pthread_mutex_unlock(&s.lock)
    return NULL


cdef void _fail(State *s, Job *j, int e) noexcept nogil:
    pthread_mutex_lock(&s.lock)
    if s.err_no == 0:
        s.err_kind = j.kind
        s.err_slot = j.slot
        s.err_no = e if e else EIO
    pthread_mutex_unlock(&s.lock)


cdef void _execute(State *s, Job *j, int lane) noexcept nogil:
    cdef int fd, cnt
    cdef bint direct
    cdef Py_ssize_t i, r, n
    cdef off_t pos
    cdef iovec *iov
    cdef iovec *own = NULL
    if j.kind == J_CLOSE:
        fd = s.fds[j.slot]
        if fd >= 0 and s.direct[j.slot] and not s.err_no:
            _direct_off(s, j, fd, lane)
        s.direct[j.slot] = False
        s.fds[j.slot] = -1
        if fd >= 0 and c_close(fd) != 0 and errno != EINTR:
            _fail(s, j, errno)
        return
    if s.err_no:
        return  # after an error only closes run
    if j.kind == J_PLACE:
        _place(j)
        return
    if j.kind == J_OPEN:
        direct = s.use_direct and (j.flags & O_CREAT) != 0 and _direct_ready(s, j.slot, lane)
        while True:
            fd = c_open(j.path, j.flags | (FW_O_DIRECT if direct else 0), 0o644)
            if fd >= 0 or errno != EINTR:
                break
        if fd < 0 and direct and errno == EINVAL:
            s.use_direct = False  # this file system refuses O_DIRECT: ordinary writes from now on
            direct = False
            while True:
                fd = c_open(j.path, j.flags, 0o644)
                if fd >= 0 or errno != EINTR:
                    break
        if fd < 0:
            _fail(s, j, errno)
        else:
            s.fds[j.slot] = fd
            s.direct[j.slot] = direct
            s.dend[j.slot] = 0
            s.tail_len[j.slot] = 0
        return
    # J_WRITE: every piece at its position (the hashing thread reads them too)
    fd = s.fds[j.slot]
    if fd < 0:
        _fail(s, j, EIO)
        return
    if s.direct[j.slot]:
        if j.pos == s.dend[j.slot]:
            if _direct_write(s, j, fd, lane) or s.err_no:
                return
        # not a plain append, or O_DIRECT refused: this file goes on with ordinary writes
        if s.direct[j.slot]:
            _direct_off(s, j, fd, lane)
            if s.err_no:
                return
    iov = j.iov
    n = j.n
    i = 0
    pos = j.pos
    while i < n:
        if iov[i].iov_len == 0:
            i += 1
            continue
        cnt = <int>min(n - i, IOV_BATCH)
        r = pwritev(fd, iov + i, cnt, pos)
        if r < 0:
            if errno == EINTR:
                continue
            _fail(s, j, errno)
            break
        if r == 0:
            _fail(s, j, EIO)
            break
        pos += r
        while r > 0 and i < n:  # past what was written
            if <size_t>r >= iov[i].iov_len:
                r -= iov[i].iov_len
                i += 1
            else:  # a short write ends mid-piece: resume from a private copy of the rest
                if own == NULL:
                    own = <iovec *>malloc((n - i) * sizeof(iovec))
                    if own == NULL:
                        _fail(s, j, ENOMEM)
                        return
                    memcpy(own, iov + i, (n - i) * sizeof(iovec))
                    iov = own
                    n -= i
                    i = 0
                iov[i].iov_base = <char *>iov[i].iov_base + r
                iov[i].iov_len -= r
                r = 0
    free(own)


cdef bint _direct_ready(State *s, int slot, int lane) noexcept nogil:
    """The buffers O_DIRECT needs for ``slot`` in ``lane`` (allocated once)."""
    if s.stage[lane] == NULL:
        s.stage[lane] = fw_aligned(DIRECT_BLOCK, STAGE + DIRECT_BLOCK)
        if s.stage[lane] == NULL:
            return False
    if s.tail[slot] == NULL:
        s.tail[slot] = fw_aligned(DIRECT_BLOCK, DIRECT_BLOCK)
    return s.tail[slot] != NULL


cdef int _pwrite_all(int fd, const char *buf, Py_ssize_t n, off_t pos) noexcept nogil:
    """Write ``n`` bytes at ``pos``: 0, or the errno of the failure."""
    cdef Py_ssize_t r
    while n > 0:
        r = pwrite(fd, buf, n, pos)
        if r < 0:
            if errno == EINTR:
                continue
            return errno if errno else EIO
        if r == 0:
            return EIO
        buf += r
        n -= r
        pos += r
    return 0


cdef bint _direct_write(State *s, Job *j, int fd, int lane) noexcept nogil:
    """Append the job's pieces to a file open with O_DIRECT: the slot's tail
    and the pieces are gathered in the staging buffer and written as whole
    blocks; what is left (under a block) becomes the new tail.  False when
    O_DIRECT was refused: the slot's tail and end are as before the job, and
    the caller writes the tail and then the job the ordinary way."""
    cdef int slot = j.slot, e
    cdef Py_ssize_t fill = s.tail_len[slot], i, off, take, whole, n
    cdef off_t base = s.dend[slot] - fill  # block aligned
    cdef const char *src
    cdef char *stage = s.stage[lane]
    memcpy(stage, s.tail[slot], fill)
    for i in range(j.n):
        src = <const char *>j.iov[i].iov_base
        n = j.iov[i].iov_len
        off = 0
        while off < n:
            take = min(n - off, STAGE - fill)
            memcpy(stage + fill, src + off, take)
            fill += take
            off += take
            if fill == STAGE:
                e = _pwrite_all(fd, stage, STAGE, base)
                if e:
                    return _direct_failed(s, j, e)
                s.direct_bytes[lane] += STAGE
                base += STAGE
                fill = 0
    whole = fill - fill % DIRECT_BLOCK
    if whole:
        e = _pwrite_all(fd, stage, whole, base)
        if e:
            return _direct_failed(s, j, e)
        s.direct_bytes[lane] += whole
    memcpy(s.tail[slot], stage + whole, fill - whole)
    s.tail_len[slot] = fill - whole
    s.dend[slot] = base + fill
    return True


cdef bint _direct_failed(State *s, Job *j, int e) noexcept nogil:
    """A direct write failed with ``e``.  EINVAL, the file system wants other
    alignment: False, and the writer stops trying O_DIRECT (the caller leaves
    it for this file and writes the whole job the ordinary way; blocks already
    written get the same bytes again).  Anything else is the writer's error."""
    if e == EINVAL:
        s.use_direct = False
        return False
    _fail(s, j, e)
    return True


cdef void _direct_off(State *s, Job *j, int fd, int lane) noexcept nogil:
    """Leave O_DIRECT for ``j.slot``: the tail block goes to disk padded with
    zeros, the file is cut to its true length, and the descriptor does
    ordinary writes from here on."""
    cdef int slot = j.slot, e
    cdef Py_ssize_t t = s.tail_len[slot]
    s.direct[slot] = False
    s.tail_len[slot] = 0
    if t:
        memset(s.tail[slot] + t, 0, DIRECT_BLOCK - t)
        e = _pwrite_all(fd, s.tail[slot], DIRECT_BLOCK, s.dend[slot] - t)
        if e == EINVAL:  # written the ordinary way instead
            if fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~FW_O_DIRECT) != 0:
                e = errno
            else:
                e = _pwrite_all(fd, s.tail[slot], t, s.dend[slot] - t)
        if e:
            _fail(s, j, e)
            return
        s.direct_bytes[lane] += t
        while ftruncate(fd, s.dend[slot]) != 0:
            if errno != EINTR:
                _fail(s, j, errno)
                return
    if fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~FW_O_DIRECT) != 0:
        _fail(s, j, errno)


cdef enum:
    PLACE_TRIES = 10000


cdef void _place(Job *j) noexcept nogil:
    """Give the temporary file its final name, ``stem + suffix`` or
    ``stem-K + suffix`` for the first free K: a rename that never replaces,
    else a hard link and an unlink.  Failures go to ``result`` (the caller
    falls back to copying), not to the writer's error."""
    cdef size_t size = strlen(j.stem) + strlen(j.suffix) + 16
    cdef char *cand = <char *>malloc(size)
    cdef int k, e
    j.result[0] = EEXIST
    if cand == NULL:
        j.result[0] = ENOMEM
        return
    for k in range(PLACE_TRIES):
        if k == 0:
            snprintf(cand, size, "%s%s", j.stem, j.suffix)
        else:
            snprintf(cand, size, "%s-%d%s", j.stem, k, j.suffix)
        if fw_rename_noreplace(j.path, cand) == 0:
            j.result[0] = 0
            j.result[1] = k
            break
        e = errno
        if e == EEXIST:
            continue
        if e != ENOSYS and e != EINVAL:
            j.result[0] = e
            break
        if link(j.path, cand) == 0:
            unlink(j.path)
            j.result[0] = 0
            j.result[1] = k
            break
        e = errno
        if e != EEXIST:
            j.result[0] = e
            break
    free(cand)


cdef inline void _blank(Job *j, int kind, int slot) noexcept:
    j.kind = kind
    j.slot = slot
    j.flags = 0
    j.pos = 0
    j.n = 0
    j.nbytes = 0
    j.iov = NULL
    j.path = NULL
    j.stem = NULL
    j.suffix = NULL
    j.result = NULL
    j.keep = NULL
    j.hasher = NULL
    j.ctx = NULL
    j.io_complete = False
    j.hash_complete = True


cdef class FileWriter:
    """Ordered open/write/close/place jobs on a native I/O thread, with a
    native hashing thread beside it (see the module docstring).

    ``open``, ``write`` and ``close`` return the job's sequence number: the
    job is done once ``done() >= seq``.  ``slot`` is an index below
    ``max_open`` that names an open file."""

    cdef State *s
    cdef readonly int max_open
    cdef Py_ssize_t max_pending
    cdef long long reclaimed
    cdef pthread_t io_threads[MAX_LANES]
    cdef pthread_t hash_thread
    cdef bint running, stopped
    cdef object paths  # slot -> path of the last open, for error messages

    def __cinit__(self, int max_open=64, Py_ssize_t max_pending=64 << 20, bint direct=False,
                  int lanes=3):
        cdef int k
        self.max_open = max(1, max_open)
        self.max_pending = max(1, max_pending)
        self.paths = {}
        self.s = <State *>calloc(1, sizeof(State))
        if self.s == NULL:
            raise MemoryError()
        self.s.max_open = self.max_open
        self.s.ring = <Job *>calloc(RING, sizeof(Job))
        self.s.fds = <int *>malloc(self.max_open * sizeof(int))
        self.s.direct = <bint *>calloc(self.max_open, sizeof(bint))
        self.s.dend = <off_t *>calloc(self.max_open, sizeof(off_t))
        self.s.tail_len = <Py_ssize_t *>calloc(self.max_open, sizeof(Py_ssize_t))
        self.s.tail = <char **>calloc(self.max_open, sizeof(char *))
        if (self.s.ring == NULL or self.s.fds == NULL or self.s.direct == NULL or self.s.dend == NULL
                or self.s.tail_len == NULL or self.s.tail == NULL):
            raise MemoryError()
        self.s.use_direct = direct and FW_O_DIRECT != 0
        for k in range(self.max_open):
            self.s.fds[k] = -1
        pthread_mutex_init(&self.s.lock, NULL)
        for k in range(MAX_LANES):
            pthread_cond_init(&self.s.lane_work[k], NULL)
        pthread_cond_init(&self.s.hash_work, NULL)
        pthread_cond_init(&self.s.space, NULL)
        self.s.lanes = min(max(1, lanes), MAX_LANES)
        for k in range(self.s.lanes):
            self.s.lane[k].s = self.s
            self.s.lane[k].k = k
            if pthread_create(&self.io_threads[k], NULL, _io_loop, <void *>&self.s.lane[k]) != 0:
                self._abort_start(k)
                raise OSError("cannot start the export writer threads")
        if pthread_create(&self.hash_thread, NULL, _hash_loop, <void *>self.s) != 0:
            self._abort_start(self.s.lanes)
            raise OSError("cannot start the export hashing thread")
        self.running = True

    cdef void _abort_start(self, int started):
        """Stop the ``started`` I/O lanes of a writer that cannot start."""
        cdef Job j
        cdef int k
        _blank(&j, J_STOP, 0)
        self._push(&j, False)
        with nogil:
            for k in range(started):
                pthread_join(self.io_threads[k], NULL)
        self.stopped = True

    def __dealloc__(self):
        cdef int k
        if self.s == NULL:
            return
        if self.running:
            self._stop()
        self._reclaim()
        for k in range(MAX_LANES):
            pthread_cond_destroy(&self.s.lane_work[k])
        pthread_cond_destroy(&self.s.hash_work)
        pthread_cond_destroy(&self.s.space)
        pthread_mutex_destroy(&self.s.lock)
        free(self.s.ring)
        free(self.s.fds)
        if self.s.tail != NULL:
            for k in range(self.max_open):
                free(self.s.tail[k])
        free(self.s.tail)
        free(self.s.direct)
        free(self.s.dend)
        free(self.s.tail_len)
        for k in range(MAX_LANES):
            free(self.s.stage[k])
        free(self.s)
        self.s = NULL

    # ---------------------------------------------------------- caller side
    cdef void _reclaim(self):
        """Drop the references of finished jobs (needs the GIL)."""
        cdef long long upto
        cdef Job *j
        pthread_mutex_lock(&self.s.lock)
        upto = self.s.done
        pthread_mutex_unlock(&self.s.lock)
        while self.reclaimed < upto:
            j = &self.s.ring[self.reclaimed % RING]
            if j.keep != NULL:
                Py_DECREF(<object>j.keep)
            if j.hasher != NULL:
                Py_DECREF(<object>j.hasher)
            free(j.iov)
            _blank(j, 0, 0)
            self.reclaimed += 1

    cdef int _check(self) except -1:
        cdef int e
        pthread_mutex_lock(&self.s.lock)
        e = self.s.err_no
        pthread_mutex_unlock(&self.s.lock)
        if e:
            what = {J_OPEN: "opening", J_WRITE: "writing", J_CLOSE: "closing"}.get(self.s.err_kind, "on")
            path = self.paths.get(self.s.err_slot)
            raise OSError(e, f"{os.strerror(e)} ({what} {path})" if path else os.strerror(e))
        return 0

    cdef long long _push(self, Job *src, bint wait_space) except -1:
        """Queue ``src`` (a copy; it owns its references from here on)."""
        cdef long long seq
        cdef int k
        cdef Py_ssize_t nbytes = src.nbytes, limit = self.max_pending
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            while self.s.head - self.s.done >= RING or (
                    wait_space and nbytes and self.s.pending > 0 and self.s.pending + nbytes > limit):
                pthread_cond_wait(&self.s.space, &self.s.lock)
            pthread_mutex_unlock(&self.s.lock)
        self._reclaim()
        pthread_mutex_lock(&self.s.lock)
        self.s.ring[self.s.head % RING] = src[0]
        self.s.head += 1
        self.s.pending += nbytes
        seq = self.s.head
        # wake the lane that runs it, and the hashing thread if it has work
        if src.kind == J_STOP:
            for k in range(self.s.lanes):
                pthread_cond_signal(&self.s.lane_work[k])
            pthread_cond_signal(&self.s.hash_work)
        else:
            pthread_cond_signal(&self.s.lane_work[_owner(self.s, src)])
            if not src.hash_complete:
                pthread_cond_signal(&self.s.hash_work)
        pthread_mutex_unlock(&self.s.lock)
        return seq

    cdef int _usable(self, int slot) except -1:
        if self.stopped:
            raise ValueError("the export writer is stopped")
        if slot < 0 or slot >= self.max_open:
            raise ValueError(f"slot {slot} out of range (max_open {self.max_open})")
        self._reclaim()
        self._check()
        return 0

    def open(self, int slot, path, bint create) -> int:
        """Open ``path`` for writing into ``slot`` (``create``: a new file, never an existing one)."""
        cdef Job j
        self._usable(slot)
        bpath = os.fsencode(path)
        if b"\0" in bpath:
            raise ValueError("embedded null byte in path")
        _blank(&j, J_OPEN, slot)
        j.flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | ((O_CREAT | O_EXCL) if create else 0)
        j.path = PyBytes_AS_STRING(bpath)
        Py_INCREF(bpath)
        j.keep = <PyObject *>bpath
        self.paths[slot] = os.fsdecode(bpath)
        return self._push(&j, False)

    def write(self, int slot, long long pos, tuple pieces, Sha256 hasher=None) -> int:
        """Write the byte strings of ``pieces`` one after another from
        ``pos``, updating ``hasher`` with them first (in job order).  Waits
        while more than ``max_pending`` bytes are queued."""
        cdef Job j
        cdef Py_ssize_t i, n = PyTuple_GET_SIZE(pieces), total = 0
        cdef object p
        self._usable(slot)
        if pos < 0:
            raise ValueError("negative position")
        for i in range(n):
            p = <object>PyTuple_GET_ITEM(pieces, i)
            if not PyBytes_CheckExact(p):
                raise TypeError(f"pieces must be bytes, not {type(p).__name__}")
        _blank(&j, J_WRITE, slot)
        j.pos = pos
        j.n = n
        j.iov = <iovec *>malloc(max(n, 1) * sizeof(iovec))
        if j.iov == NULL:
            raise MemoryError()
        for i in range(n):
            p = <object>PyTuple_GET_ITEM(pieces, i)
            j.iov[i].iov_base = PyBytes_AS_STRING(p)
            j.iov[i].iov_len = PyBytes_GET_SIZE(p)
            total += PyBytes_GET_SIZE(p)
        j.nbytes = total
        Py_INCREF(pieces)
        j.keep = <PyObject *>pieces
        if hasher is not None:
            Py_INCREF(hasher)
            j.hasher = <PyObject *>hasher
            j.ctx = <void *>hasher.ctx
            j.hash_complete = False
        return self._push(&j, True)

    def close(self, int slot) -> int:
        """Close the file of ``slot`` (nothing happens if it is not open)."""
        cdef Job j
        if self.stopped:
            raise ValueError("the export writer is stopped")
        if slot < 0 or slot >= self.max_open:
            raise ValueError(f"slot {slot} out of range (max_open {self.max_open})")
        _blank(&j, J_CLOSE, slot)
        return self._push(&j, False)

    def place(self, tmp, stem, suffix, result: bytearray) -> int:
        """Rename ``tmp`` to ``stem + suffix`` (or ``stem-K + suffix``, the
        first K free), never replacing a file.  Once done, ``result`` (8
        bytes, native int32s) holds [errno, K]: errno 0 when it was placed."""
        cdef Job j
        if self.stopped:
            raise ValueError("the export writer is stopped")
        if len(result) != 8:
            raise ValueError("result must be a bytearray of 8 bytes")
        keep = (os.fsencode(tmp), os.fsencode(stem), os.fsencode(suffix), result)
        for b in keep[:3]:
            if b"\0" in b:
                raise ValueError("embedded null byte in path")
        self._reclaim()
        self._check()
        _blank(&j, J_PLACE, 0)
        j.path = PyBytes_AS_STRING(keep[0])
        j.stem = PyBytes_AS_STRING(keep[1])
        j.suffix = PyBytes_AS_STRING(keep[2])
        j.result = <int *>PyByteArray_AS_STRING(result)
        Py_INCREF(keep)
        j.keep = <PyObject *>keep
        return self._push(&j, False)

    @property
    def direct_bytes(self) -> int:
        """Bytes written with O_DIRECT so far (0 when the file system refused it)."""
        cdef long long n = 0
        cdef int k
        pthread_mutex_lock(&self.s.lock)
        for k in range(self.s.lanes):
            n += self.s.direct_bytes[k]
        pthread_mutex_unlock(&self.s.lock)
        return n

    def done(self) -> int:
        """How many jobs are done; raises the first error, if one happened."""
        self._reclaim()
        self._check()
        return self.reclaimed

    def wait(self, long long seq=-1) -> None:
        """Block (GIL released) until job ``seq`` (every job: -1) is done;
        raises the first error, if one happened."""
        if seq < 0 or seq > self.s.head:
            seq = self.s.head
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            while self.s.done < seq:
                pthread_cond_wait(&self.s.space, &self.s.lock)
            pthread_mutex_unlock(&self.s.lock)
        self._reclaim()
        self._check()

    cdef int _stop(self) except -1:
        cdef Job j
        cdef int k
        _blank(&j, J_STOP, 0)
        self._push(&j, False)
        with nogil:
            for k in range(self.s.lanes):
                pthread_join(self.io_threads[k], NULL)
            pthread_join(self.hash_thread, NULL)
        pthread_mutex_lock(&self.s.lock)
        self.s.ring[(self.s.head - 1) % RING].io_complete = True
        _advance(self.s)
        pthread_mutex_unlock(&self.s.lock)
        self.running = False
        self.stopped = True
        for k in range(self.max_open):
            if self.s.fds[k] >= 0:
                if self.s.direct[k] and not self.s.err_no:
                    _blank(&j, J_CLOSE, k)
                    _direct_off(self.s, &j, self.s.fds[k], 0)  # its tail block too
                c_close(self.s.fds[k])
                self.s.fds[k] = -1
        return 0

    def stop(self) -> None:
        """Finish every job, stop the thread and close what is still open;
        raises the first error, if one happened."""
        if self.running:
            self._stop()
        self._reclaim()
        self._check()
