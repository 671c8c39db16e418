# cython: language_level=3
"""The export sink's I/O stage: ordered file jobs on a native thread.

The exporter (``export.py``) decides what goes where; this module only does
it, off the decoding thread and outside the GIL, so that writing and
hashing overlap with decoding without ever competing for the interpreter::

    decoding thread (GIL)                      writer thread (no GIL, ever)
    open(slot, path, create)  --+
    write(slot, pos, pieces,    |  ring of     open(2) into fds[slot]
          hasher)             --+-> jobs   --> SHA-256 update over the pieces,
    close(slot)               --+  (FIFO)      then one pwritev(2) per IOV_MAX
    done() / wait(seq) <-- completed count --  close(2)

Jobs run strictly in submission order.  A job holds references to its byte
strings and hasher; the submitting thread drops them once the job is done
(only it touches Python objects).  Bytes in flight are bounded
(``max_pending``): ``write`` waits, with the GIL released, when the disk is
behind.  The first error stops all later opens and writes (closes still run,
so no descriptor leaks) and is raised, as ``OSError``, by the next call.

SHA-256 is the libcrypto that Python's own ``hashlib`` is linked with
(``SHA256_Init/Update/Final``, looked up with dlsym and checked against
``hashlib`` once).  Where it cannot be found ``native_sha256()`` is false and
the exporter hashes on its own thread instead.  The pure-Python twin is
``_pyfilewriter.py``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from cpython.ref cimport PyObject, Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.errno cimport EINTR, EIO, errno
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy
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

cdef extern from "<dlfcn.h>" nogil:
    enum: RTLD_NOLOAD

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_t:
        pass
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    int pthread_create(pthread_t *, const void *, void *(*)(void *) noexcept nogil, void *)
    int pthread_join(pthread_t, void **)
    int pthread_mutex_init(pthread_mutex_t *, const void *)
    int pthread_mutex_destroy(pthread_mutex_t *)
    int pthread_mutex_lock(pthread_mutex_t *)
    int pthread_mutex_unlock(pthread_mutex_t *)
    int pthread_cond_init(pthread_cond_t *, const void *)
    int pthread_cond_destroy(pthread_cond_t *)
    int pthread_cond_wait(pthread_cond_t *, pthread_mutex_t *)
    int pthread_cond_signal(pthread_cond_t *)
    int pthread_cond_broadcast(pthread_cond_t *)

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

cdef enum JobKind:
    J_OPEN = 1
    J_WRITE = 2
    J_CLOSE = 3
    J_STOP = 4


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
    const char *path  # J_OPEN: inside ``keep``
    PyObject *keep  # the tuple of byte strings, or the path
    PyObject *hasher  # a Sha256 or NULL
    void *ctx


# what the writer thread shares with the caller (under ``lock``)
cdef struct State:
    Job *ring
    int *fds
    int max_open
    Py_ssize_t pending
    long long head  # jobs submitted
    long long done  # jobs done
    pthread_mutex_t lock
    pthread_cond_t work
    pthread_cond_t space
    int err_no
    int err_kind
    int err_slot


cdef void *_loop(void *arg) noexcept nogil:
    cdef State *s = <State *>arg
    cdef Job *j
    cdef int kind
    pthread_mutex_lock(&s.lock)
    while True:
        while s.done == s.head:
            pthread_cond_wait(&s.work, &s.lock)
        j = &s.ring[s.done % RING]
        pthread_mutex_unlock(&s.lock)
        kind = j.kind
        if kind != J_STOP:
            _execute(s, j)
        pthread_mutex_lock(&s.lock)
        s.done += 1
        s.pending -= j.nbytes
        pthread_cond_broadcast(&s.space)
        if kind == J_STOP:
            break
    pthread_mutex_unlock(&s.lock)
    return NULL


cdef void _fail(State *s, Job *j, int e) noexcept nogil:
    if s.err_no == 0:
        s.err_kind = j.kind
        s.err_slot = j.slot
        s.err_no = e if e else EIO


cdef void _execute(State *s, Job *j) noexcept nogil:
    cdef int fd, cnt
    cdef Py_ssize_t i, r
    cdef off_t pos
    if j.kind == J_CLOSE:
        fd = s.fds[j.slot]
        s.fds[j.slot] = -1
        if fd >= 0 and c_close(fd) != 0 and errno != EINTR:
            _fail(s, j, errno)
        return
    if s.err_no:
        return  # after an error only closes run
    if j.kind == J_OPEN:
        while True:
            fd = c_open(j.path, j.flags, 0o644)
            if fd >= 0 or errno != EINTR:
                break
        if fd < 0:
            _fail(s, j, errno)
        else:
            s.fds[j.slot] = fd
        return
    # J_WRITE: hash, then write every piece at its position
    if j.ctx != NULL:
        for i in range(j.n):
            _sha_update(j.ctx, j.iov[i].iov_base, j.iov[i].iov_len)
    fd = s.fds[j.slot]
    if fd < 0:
        _fail(s, j, EIO)
        return
    i = 0
    pos = j.pos
    while i < j.n:
        if j.iov[i].iov_len == 0:
            i += 1
            continue
        cnt = <int>min(j.n - i, IOV_BATCH)
        r = pwritev(fd, j.iov + i, cnt, pos)
        if r < 0:
            if errno == EINTR:
                continue
            _fail(s, j, errno)
            return
        if r == 0:
            _fail(s, j, EIO)
            return
        pos += r
        while r > 0:  # past what was written; a short write resumes mid-piece
            if <size_t>r >= j.iov[i].iov_len:
                r -= j.iov[i].iov_len
                i += 1
            else:
                j.iov[i].iov_base = <char *>j.iov[i].iov_base + r
                j.iov[i].iov_len -= r
                r = 0


cdef inline void _blank(Job *j, int kind, int slot) noexcept:
    j.kind = kind
    j.slot = slot
    j.flags = 0
    j.pos = 0
    j.n = 0
    j.nbytes = 0
    j.iov = NULL
    j.path = NULL
    j.keep = NULL
    j.hasher = NULL
    j.ctx = NULL


cdef class FileWriter:
    """Ordered open/write/close jobs on one native thread (see the module docstring).

    ``open``, ``write`` and ``close`` return the job's sequence number: the
    job is done once ``done() >= seq``.  ``slot`` is an index below
    ``max_open`` that names an open file."""

    cdef State *s
    cdef readonly int max_open
    cdef Py_ssize_t max_pending
    cdef long long reclaimed
    cdef pthread_t thread
    cdef bint running, stopped
    cdef object paths  # slot -> path of the last open, for error messages

    def __cinit__(self, int max_open=64, Py_ssize_t max_pending=64 << 20):
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
        if self.s.ring == NULL or self.s.fds == NULL:
            raise MemoryError()
        for k in range(self.max_open):
            self.s.fds[k] = -1
        pthread_mutex_init(&self.s.lock, NULL)
        pthread_cond_init(&self.s.work, NULL)
        pthread_cond_init(&self.s.space, NULL)
        if pthread_create(&self.thread, NULL, _loop, <void *>self.s) != 0:
            raise OSError("cannot start the export writer thread")
        self.running = True

    def __dealloc__(self):
        if self.s == NULL:
            return
        if self.running:
            self._stop()
        self._reclaim()
        pthread_cond_destroy(&self.s.work)
        pthread_cond_destroy(&self.s.space)
        pthread_mutex_destroy(&self.s.lock)
        free(self.s.ring)
        free(self.s.fds)
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
        pthread_cond_signal(&self.s.work)
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
            pthread_join(self.thread, NULL)
        self.running = False
        self.stopped = True
        for k in range(self.max_open):
            if self.s.fds[k] >= 0:
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
