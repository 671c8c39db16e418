# cython: language_level=3
"""Capture files read ahead on a native thread, outside the GIL.

Reading a file from the page cache is a copy that costs about as much as
the walk over its records (10 GB/s here: 0.1 s per GiB).  A thread that
never takes the GIL does it while the decoding thread works on the bytes
read before::

    reader thread (no GIL, ever)              decoding thread (GIL)
    read(2) into buffer i % depth    -->      next_chunk(): a memoryview of
    waits while every buffer is full <--      buffer i; the one before is
                                              handed back to the reader

The buffers are ``depth`` bytearrays of ``size`` bytes owned by the reader
object (with an engine, below: malloc'd by the thread that first reads into
each, so that the start does not wait for them); memory stays at
``depth * size`` however big the file.  A chunk is valid until the next
call (the caller releases its memoryview first: the buffer is then read
into again).  A failed read(2) is raised, as ``OSError``, by the call that
would have returned its chunk.  A process
forked while a file is read ahead has no reading thread: there the reader
raises ``RuntimeError`` instead of waiting for ever.  The pure-Python twin
is ``_pyfilereader.py`` (the same calls, read in turn).

Given a core ``Engine``, the thread also walks each chunk through it as soon
as it is read, still without the GIL (``_core.engine_walk``), so that the
record walk, TCP ordering and PDU framing leave the decoding thread as well;
``next_events()`` then hands out the events of a chunk (the thread runs up
to ``queue_bytes`` of events ahead), and the decoding thread only makes
their tuples.  The reading (pread(2) at each chunk's offset, into ``depth``
buffers) is shared: the decoding thread reads chunks itself instead of
waiting idle for events, the furthest ahead it can, so that the walker does
not wait for that read::

    walking thread (no GIL)                   decoding thread (GIL)
    walk chunk j in order: a batch of C  -->  next_events(): (bytes, [tuples])
    records; read chunk j first unless        while none is ready: read the
    the other thread has claimed it     <--   unclaimed chunk furthest ahead
                                              (GIL released)

What the walk raises (a capture that is not one, memory) is raised by the
``next_events()`` call that would have returned its events.  The thread
takes the GIL only to start, to end and to pass such an exception on.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from libc.errno cimport EINTR, ENOMEM, errno
from libc.stdint cimport uint8_t
from libc.stdlib cimport calloc, free, malloc

from fastdicom._core cimport (
    EvBatch, batch_bytes, batch_free, engine_attach, engine_detach, engine_events, engine_take_events,
    engine_walk,
)

import os

IMPLEMENTATION = "cython"

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int, void *, size_t)
    ssize_t pread(int, void *, size_t, long long)
    long long lseek(int, long long, int)
    int getpid()
    enum: SEEK_CUR

cdef extern from "<limits.h>":
    enum: LLONG_MAX

from fastdicom._pthread cimport (
    pthread_cond_destroy, pthread_cond_init, pthread_cond_signal, pthread_cond_t, pthread_cond_wait,
    pthread_create, pthread_join, pthread_mutex_destroy, pthread_mutex_init, pthread_mutex_lock,
    pthread_mutex_t, pthread_mutex_unlock, pthread_t,
)

DEF MAX_DEPTH = 64
DEF MAX_QUEUE = 1024  # batches of events walked ahead of the decoding thread

cdef enum:
    SLOT_FREE = 0
    SLOT_READING = 1
    SLOT_READ = 2


cdef struct State:
    int fd
    int depth
    size_t size
    char *bufs[MAX_DEPTH]
    ssize_t lens[MAX_DEPTH]  # bytes read into each buffer; -1: the read failed
    long long filled  # chunks read (the reader's count)
    long long handed_back  # chunks the decoding thread is done with
    int error  # errno of the failed read
    bint stop
    # with an engine (see _walk_chunks)
    void *engine  # the Engine that walks each chunk (NULL: none); the ReadAhead holds it
    EvBatch *batches[MAX_QUEUE]  # the events of each chunk walked, until taken
    ssize_t qlens[MAX_QUEUE]  # its bytes of capture (-1: the read failed, -2: the walk raised)
    Py_ssize_t qsize[MAX_QUEUE]  # the memory its batch holds
    Py_ssize_t queued  # memory held by the batches not yet taken
    Py_ssize_t queue_bytes  # ... up to this much (one batch at least)
    long long walking  # the chunk being walked
    PyObject *exc  # what the walk raised (owned)
    long long start  # file offset of chunk 0
    long long freed  # chunks walked: their buffers can be read into again
    long long end_at  # the first chunk read short: the last one (LLONG_MAX: none yet)
    int slot_state[MAX_DEPTH]  # per buffer: SLOT_FREE, SLOT_READING or SLOT_READ
    ssize_t slot_len[MAX_DEPTH]  # bytes read (-1: the read failed)
    int slot_errno[MAX_DEPTH]
    pthread_mutex_t lock
    pthread_cond_t filled_cond  # a chunk was read (or the reader ended)
    pthread_cond_t free_cond  # a buffer was handed back (or stop)


cdef void *_read_ahead(void *arg) noexcept nogil:
    cdef State *s = <State *>arg
    cdef long long i = 0
    cdef ssize_t n
    cdef int k
    while True:
        pthread_mutex_lock(&s.lock)
        while not s.stop and i - s.handed_back >= s.depth:
            pthread_cond_wait(&s.free_cond, &s.lock)
        if s.stop:
            pthread_mutex_unlock(&s.lock)
            return NULL
        pthread_mutex_unlock(&s.lock)
        k = <int>(i % s.depth)
        while True:
            n = read(s.fd, s.bufs[k], s.size)
            if n >= 0 or errno != EINTR:
                break
        pthread_mutex_lock(&s.lock)
        s.lens[k] = n
        if n < 0:
            s.error = errno
        s.filled = i + 1
        pthread_cond_signal(&s.filled_cond)
        pthread_mutex_unlock(&s.lock)
        if n <= 0:  # end of file, or an error: the last chunk
            return NULL
        i += 1


cdef void *_walk_ahead(void *arg) noexcept nogil:
    # a thread state of its own, for the exceptions of the walk
    with gil:
        _walk_ahead_held(<State *>arg)
    return NULL


cdef void _walk_ahead_held(State *s) noexcept:
    try:
        with nogil:
            _walk_chunks(s)
    except BaseException as exc:
        Py_INCREF(exc)
        s.exc = <PyObject *>exc
        with nogil:
            pthread_mutex_lock(&s.lock)
            s.qlens[s.walking % MAX_QUEUE] = -2
            s.filled = s.walking + 1
            pthread_cond_signal(&s.filled_cond)
            pthread_mutex_unlock(&s.lock)


cdef bint _claim_ahead(State *s, long long *j) noexcept nogil:
    """For the decoding thread, which would otherwise wait: claim the chunk
    furthest ahead whose buffer is free (lock held).  The buffers hold
    chunks ``freed .. freed + depth - 1``; the walker reads, in order, those
    nobody claimed, so taking the furthest keeps this read off its way (it
    would wait for the very next chunk, read here, as long as the read
    takes)."""
    cdef long long c = min(s.freed + s.depth - 1, s.end_at)
    while c >= s.freed:
        if s.slot_state[c % s.depth] == SLOT_FREE:
            s.slot_state[c % s.depth] = SLOT_READING
            j[0] = c
            return True
        c -= 1
    return False


cdef void _read_claimed(State *s, long long j) noexcept nogil:
    """Read chunk ``j`` into its buffer (called without the lock), then note
    what came of it: returns with the lock held."""
    cdef int k = <int>(j % s.depth)
    cdef size_t got = 0
    cdef ssize_t n = 0
    cdef int err = 0
    if s.bufs[k] == NULL:  # (an engine's buffers are made as they are first read into)
        s.bufs[k] = <char *>malloc(s.size)
        if s.bufs[k] == NULL:
            n = -1
            err = ENOMEM
    while got < s.size and not err:  # short only at the end of the file
        n = pread(s.fd, s.bufs[k] + got, s.size - got, s.start + j * <long long>s.size + got)
        if n > 0:
            got += n
        elif n == 0 or errno != EINTR:
            if n < 0:
                err = errno
            break
    pthread_mutex_lock(&s.lock)
    s.slot_len[k] = -1 if n < 0 else <ssize_t>got
    s.slot_errno[k] = err
    s.slot_state[k] = SLOT_READ
    if n < 0 or got < s.size:
        s.end_at = min(s.end_at, j)
    pthread_cond_signal(&s.free_cond)  # the walker may wait for this chunk


cdef int _walk_chunks(State *s) except -1 nogil:
    """Walk the chunks in order.  Either thread reads a chunk: this one when
    it comes to a chunk nobody has claimed, the decoding thread while it
    would otherwise wait for events (``next_events``), so that the reading
    (a copy out of the page cache, as long as the walk itself) is shared by
    whichever thread is free."""
    cdef long long j = 0
    cdef ssize_t n
    cdef int k, q, err
    cdef EvBatch *batch
    cdef Py_ssize_t held
    cdef bint ended = False
    while True:
        k = <int>(j % s.depth)
        q = <int>(j % MAX_QUEUE)
        pthread_mutex_lock(&s.lock)
        while True:
            if s.stop:
                pthread_mutex_unlock(&s.lock)
                return 0
            if j > s.handed_back and (j - s.handed_back >= MAX_QUEUE or s.queued >= s.queue_bytes):
                pthread_cond_wait(&s.free_cond, &s.lock)  # enough events wait to be taken
            elif ended or s.slot_state[k] == SLOT_READ:
                break
            elif s.slot_state[k] == SLOT_FREE:  # nobody has claimed it: read it here
                s.slot_state[k] = SLOT_READING
                pthread_mutex_unlock(&s.lock)
                _read_claimed(s, j)  # returns with the lock held
                break
            else:  # the decoding thread reads it
                pthread_cond_wait(&s.free_cond, &s.lock)
        n = 0 if ended else s.slot_len[k]
        err = s.slot_errno[k]
        s.walking = j
        pthread_mutex_unlock(&s.lock)
        batch = NULL
        held = 0
        if n > 0:
            engine_walk(s.engine, <const uint8_t *>s.bufs[k], n)
            batch = engine_take_events(s.engine)
            held = batch_bytes(batch)
        pthread_mutex_lock(&s.lock)
        s.slot_state[k] = SLOT_FREE
        s.freed = j + 1
        s.qlens[q] = n
        s.batches[q] = batch
        s.qsize[q] = held
        s.queued += held
        if n < 0:
            s.error = err
        s.filled = j + 1
        pthread_cond_signal(&s.filled_cond)
        pthread_mutex_unlock(&s.lock)
        if n <= 0:  # the end of the file (marked after a short chunk), or an error
            return 0
        ended = n < <ssize_t>s.size
        j += 1


cdef class ReadAhead:
    """``ReadAhead(fd, size, depth, engine=None, queue_bytes=32 MiB)``: the
    bytes of ``fd`` from its current position to its end, read ahead into
    ``depth`` buffers of ``size`` bytes; or, given a core ``Engine``, read
    and walked through it ahead of ``next_events()``, with up to
    ``queue_bytes`` of events (and at least one chunk's) waiting there."""

    cdef State *s
    cdef list buffers
    cdef bint own_bufs  # the buffers are malloc'd (with an engine), not the bytearrays
    cdef long long next_index
    cdef pthread_t thread
    cdef bint started
    cdef int pid  # the process whose thread reads (a forked child has none)
    cdef object engine

    def __cinit__(self, int fd, size_t size=1 << 20, int depth=4, engine=None,
                  Py_ssize_t queue_bytes=32 << 20):
        if size < 1 or not 2 <= depth <= MAX_DEPTH:
            raise ValueError(f"need size >= 1 and 2 <= depth <= {MAX_DEPTH}")
        self.s = <State *>calloc(1, sizeof(State))
        if self.s is NULL:
            raise MemoryError()
        self.pid = getpid()
        self.s.fd = fd
        self.s.depth = depth
        self.s.size = size
        cdef int k
        # with an engine, malloc'd by the thread that first reads into each
        # (_read_claimed), not zeroed here first: 4 MiB of page faults off the
        # start of a run; else bytearrays, which next_chunk() hands out
        self.own_bufs = engine is not None
        if not self.own_bufs:
            self.buffers = [bytearray(size) for _ in range(depth)]
            for k in range(depth):
                self.s.bufs[k] = PyByteArray_AS_STRING(self.buffers[k])
        self.s.end_at = LLONG_MAX
        self.s.queue_bytes = queue_bytes
        if engine is not None:
            self.s.start = lseek(fd, 0, SEEK_CUR)
            if self.s.start < 0:
                self.s.start = 0
        pthread_mutex_init(&self.s.lock, NULL)
        pthread_cond_init(&self.s.filled_cond, NULL)
        pthread_cond_init(&self.s.free_cond, NULL)
        if engine is not None:
            engine_attach(engine)
            self.engine = engine
            self.s.engine = <void *>engine
        if pthread_create(&self.thread, NULL, _read_ahead if engine is None else _walk_ahead,
                          self.s) != 0:
            self._detach()
            raise OSError("cannot start the reading thread")
        self.started = True

    def next_chunk(self):
        """A memoryview of the next bytes read, or None at the end of the
        file.  The chunk returned before must no longer be used."""
        cdef State *s = self.s
        cdef long long i = self.next_index
        cdef ssize_t n
        self._check_usable()
        if self.engine is not None:
            raise ValueError("this reader walks an engine: use next_events()")
        with nogil:
            pthread_mutex_lock(&s.lock)
            if i > s.handed_back:
                s.handed_back = i  # the chunk before is free to be read into again
                pthread_cond_signal(&s.free_cond)
            while s.filled <= i:
                pthread_cond_wait(&s.filled_cond, &s.lock)
            n = s.lens[i % s.depth]
            pthread_mutex_unlock(&s.lock)
        if n < 0:
            raise OSError(s.error, os.strerror(s.error))
        if n == 0:
            return None
        self.next_index = i + 1
        return memoryview(self.buffers[i % s.depth])[:n]

    def next_events(self):
        """``(nbytes, events)`` for the next chunk walked: its size and the
        list of event tuples the engine emitted for it; None at the end of
        the file (the engine is then the caller's again: ``finish()`` it)."""
        cdef State *s = self.s
        cdef long long i = self.next_index
        cdef ssize_t n
        cdef EvBatch *batch
        cdef long long j
        self._check_usable()
        if self.engine is None:
            raise ValueError("this reader walks no engine: use next_chunk()")
        with nogil:
            pthread_mutex_lock(&s.lock)
            while s.filled <= i:
                if not s.stop and _claim_ahead(s, &j):  # rather than wait: read a chunk ahead
                    pthread_mutex_unlock(&s.lock)
                    _read_claimed(s, j)  # returns with the lock held
                else:
                    pthread_cond_wait(&s.filled_cond, &s.lock)
            n = s.qlens[i % MAX_QUEUE]
            batch = s.batches[i % MAX_QUEUE]
            s.batches[i % MAX_QUEUE] = NULL
            s.queued -= s.qsize[i % MAX_QUEUE]
            s.handed_back = i + 1  # the thread may go on: the events are ours now
            pthread_cond_signal(&s.free_cond)
            pthread_mutex_unlock(&s.lock)
        if n <= 0:
            batch_free(batch)
            self.close()  # the thread has stopped walking
            if n == -2:
                exc = <object>s.exc
                Py_XDECREF(s.exc)
                s.exc = NULL
                raise exc
            if n < 0:
                raise OSError(s.error, os.strerror(s.error))
            return None
        self.next_index = i + 1
        return n, engine_events(batch)

    cdef int _check_usable(self) except -1:
        if not self.started:
            raise ValueError("the reader is closed")
        if getpid() != self.pid:
            # the thread stayed in the parent: waiting for it would never end
            raise RuntimeError("a capture being read ahead cannot be read on in a forked "
                               "child process: open it again there")
        return 0

    def close(self):
        """Stop and join the reading thread (the file is the caller's); an
        engine it walked is the caller's again."""
        if not self.started:
            return
        if getpid() == self.pid:  # a forked child has no thread: the parent's stays
            self._stop_thread()
            self._detach()
        self.started = False

    cdef void _detach(self) noexcept:
        """Give the engine back, with no batch of events left behind."""
        cdef int k
        if self.engine is None:
            return
        for k in range(MAX_QUEUE):
            batch_free(self.s.batches[k])
            self.s.batches[k] = NULL
        engine_detach(self.engine)
        self.engine = None
        self.s.engine = NULL

    cdef void _stop_thread(self) noexcept:
        """Tell the thread to stop, wake it where it waits, join it."""
        with nogil:
            pthread_mutex_lock(&self.s.lock)
            self.s.stop = True
            pthread_cond_signal(&self.s.free_cond)
            pthread_mutex_unlock(&self.s.lock)
            pthread_join(self.thread, NULL)

    def __dealloc__(self):
        cdef int k
        if self.s is NULL:
            return
        if getpid() != self.pid:
            # a forked child (closed there or not): no thread to stop, and the
            # lock and condition variables of this copy of the state may be
            # held or waited on by the parent's thread, so it is freed untouched
            # (but for this process's copies of an engine's buffers)
            if self.own_bufs:
                for k in range(self.s.depth):
                    free(self.s.bufs[k])
            free(self.s)
            self.s = NULL
            return
        if self.started:
            self._stop_thread()
            self._detach()
        Py_XDECREF(self.s.exc)
        if self.own_bufs:
            for k in range(self.s.depth):
                free(self.s.bufs[k])
        pthread_mutex_destroy(&self.s.lock)
        pthread_cond_destroy(&self.s.filled_cond)
        pthread_cond_destroy(&self.s.free_cond)
        free(self.s)
        self.s = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
