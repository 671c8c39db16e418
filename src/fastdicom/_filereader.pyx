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
object; memory stays at ``depth * size`` however big the file.  A chunk is
valid until the next call (the caller releases its memoryview first: the
buffer is then read into again).  A failed read(2) is raised, as
``OSError``, by the call that would have returned its chunk.  A process
forked while a file is read ahead has no reading thread: there the reader
raises ``RuntimeError`` instead of waiting for ever.  The pure-Python twin
is ``_pyfilereader.py`` (the same calls, read in turn).

Given a core ``Engine``, the thread also walks each chunk through it as soon
as it is read, still without the GIL (``_core.engine_walk``), so that the
record walk, TCP ordering and PDU framing leave the decoding thread as well;
``next_events()`` then hands out the events of a chunk, up to ``depth``
chunks behind the thread, and the decoding thread only makes their tuples::

    reader thread (no GIL)                    decoding thread (GIL)
    read(2), walk: a batch of C records -->   next_events(): (bytes, [tuples])
    waits while depth batches wait      <--   the batch is taken

What the walk raises (a capture that is not one, memory) is raised by the
``next_events()`` call that would have returned its events.  The thread
takes the GIL only to start, to end and to pass such an exception on.
"""

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF
from libc.errno cimport EINTR, errno
from libc.stdint cimport uint8_t
from libc.stdlib cimport calloc, free

from fastdicom._core cimport (
    EvBatch, batch_free, engine_attach, engine_detach, engine_events, engine_take_events, engine_walk,
)

import os

IMPLEMENTATION = "cython"

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int, void *, size_t)
    int getpid()

from fastdicom._pthread cimport (
    pthread_cond_destroy, pthread_cond_init, pthread_cond_signal, pthread_cond_t, pthread_cond_wait,
    pthread_create, pthread_join, pthread_mutex_destroy, pthread_mutex_init, pthread_mutex_lock,
    pthread_mutex_t, pthread_mutex_unlock, pthread_t,
)

DEF MAX_DEPTH = 64


cdef struct State:
    int fd
    int depth
    size_t size
    char *bufs[MAX_DEPTH]
    ssize_t lens[MAX_DEPTH]  # bytes read into each buffer; -1: the read failed; -2: the walk raised
    long long filled  # chunks read (the reader's count)
    long long handed_back  # chunks the decoding thread is done with
    int error  # errno of the failed read
    bint stop
    void *engine  # the Engine that walks each chunk (NULL: none); the ReadAhead holds it
    EvBatch *batches[MAX_DEPTH]  # with an engine: the events of each chunk
    long long walking  # with an engine: the chunk being read and walked
    PyObject *exc  # what the walk raised (owned)
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
            s.lens[s.walking % s.depth] = -2
            s.filled = s.walking + 1
            pthread_cond_signal(&s.filled_cond)
            pthread_mutex_unlock(&s.lock)


cdef int _walk_chunks(State *s) except -1 nogil:
    cdef long long i = 0
    cdef ssize_t n
    cdef int k
    cdef EvBatch *batch
    while True:
        pthread_mutex_lock(&s.lock)
        while not s.stop and i - s.handed_back >= s.depth:
            pthread_cond_wait(&s.free_cond, &s.lock)
        if s.stop:
            pthread_mutex_unlock(&s.lock)
            return 0
        pthread_mutex_unlock(&s.lock)
        s.walking = i
        while True:  # one buffer: it is walked before the next read
            n = read(s.fd, s.bufs[0], s.size)
            if n >= 0 or errno != EINTR:
                break
        batch = NULL
        if n > 0:
            engine_walk(s.engine, <const uint8_t *>s.bufs[0], n)
            batch = engine_take_events(s.engine)
        k = <int>(i % s.depth)
        pthread_mutex_lock(&s.lock)
        s.lens[k] = n
        s.batches[k] = batch
        if n < 0:
            s.error = errno
        s.filled = i + 1
        pthread_cond_signal(&s.filled_cond)
        pthread_mutex_unlock(&s.lock)
        if n <= 0:
            return 0
        i += 1


cdef class ReadAhead:
    """``ReadAhead(fd, size, depth, engine=None)``: the bytes of ``fd`` from
    its current position to its end, read ahead into ``depth`` buffers of
    ``size`` bytes; or, given a core ``Engine``, read and walked through it
    ahead of ``next_events()``."""

    cdef State *s
    cdef list buffers
    cdef long long next_index
    cdef pthread_t thread
    cdef bint started
    cdef int pid  # the process whose thread reads (a forked child has none)
    cdef object engine

    def __cinit__(self, int fd, size_t size=1 << 20, int depth=4, engine=None):
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
        # with an engine, one buffer: each chunk is walked before the next is read
        self.buffers = [bytearray(size) for _ in range(depth if engine is None else 1)]
        for k in range(len(self.buffers)):
            self.s.bufs[k] = PyByteArray_AS_STRING(self.buffers[k])
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
        self._check_usable()
        if self.engine is None:
            raise ValueError("this reader walks no engine: use next_chunk()")
        with nogil:
            pthread_mutex_lock(&s.lock)
            while s.filled <= i:
                pthread_cond_wait(&s.filled_cond, &s.lock)
            n = s.lens[i % s.depth]
            batch = s.batches[i % s.depth]
            s.batches[i % s.depth] = NULL
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
        for k in range(self.s.depth):
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
        if self.s is NULL:
            return
        if getpid() != self.pid:
            # a forked child (closed there or not): no thread to stop, and the
            # lock and condition variables of this copy of the state may be
            # held or waited on by the parent's thread, so it is freed untouched
            free(self.s)
            self.s = NULL
            return
        if self.started:
            self._stop_thread()
            self._detach()
        Py_XDECREF(self.s.exc)
        pthread_mutex_destroy(&self.s.lock)
        pthread_cond_destroy(&self.s.filled_cond)
        pthread_cond_destroy(&self.s.free_cond)
        free(self.s)
        self.s = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
