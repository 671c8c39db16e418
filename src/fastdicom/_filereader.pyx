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
"""

from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.errno cimport EINTR, errno
from libc.stdlib cimport calloc, free

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
    ssize_t lens[MAX_DEPTH]  # bytes read into each buffer; -1: the read failed
    long long filled  # chunks read (the reader's count)
    long long handed_back  # chunks the decoding thread is done with
    int error  # errno of the failed read
    bint stop
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


cdef class ReadAhead:
    """``ReadAhead(fd, size, depth)``: the bytes of ``fd`` from its current
    position to its end, read ahead into ``depth`` buffers of ``size`` bytes."""

    cdef State *s
    cdef list buffers
    cdef long long next_index
    cdef pthread_t thread
    cdef bint started
    cdef int pid  # the process whose thread reads (a forked child has none)

    def __cinit__(self, int fd, size_t size=1 << 20, int depth=4):
        if size < 1 or not 2 <= depth <= MAX_DEPTH:
            raise ValueError(f"need size >= 1 and 2 <= depth <= {MAX_DEPTH}")
        self.s = <State *>calloc(1, sizeof(State))
        if self.s is NULL:
            raise MemoryError()
        self.pid = getpid()
        self.s.fd = fd
        self.s.depth = depth
        self.s.size = size
        self.buffers = [bytearray(size) for _ in range(depth)]
        cdef int k
        for k in range(depth):
            self.s.bufs[k] = PyByteArray_AS_STRING(self.buffers[k])
        pthread_mutex_init(&self.s.lock, NULL)
        pthread_cond_init(&self.s.filled_cond, NULL)
        pthread_cond_init(&self.s.free_cond, NULL)
        if pthread_create(&self.thread, NULL, _read_ahead, self.s) != 0:
            raise OSError("cannot start the reading thread")
        self.started = True

    def next_chunk(self):
        """A memoryview of the next bytes read, or None at the end of the
        file.  The chunk returned before must no longer be used."""
        cdef State *s = self.s
        cdef long long i = self.next_index
        cdef ssize_t n
        if not self.started:
            raise ValueError("the reader is closed")
        if getpid() != self.pid:
            # the thread stayed in the parent: waiting for it would never end
            raise RuntimeError("a capture being read ahead cannot be read on in a forked "
                               "child process: open it again there")
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

    def close(self):
        """Stop and join the reading thread (the file is the caller's)."""
        if not self.started:
            return
        if getpid() == self.pid:  # a forked child has no thread: the parent's stays
            self._stop_thread()
        self.started = False

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
        pthread_mutex_destroy(&self.s.lock)
        pthread_cond_destroy(&self.s.filled_cond)
        pthread_cond_destroy(&self.s.free_cond)
        free(self.s)
        self.s = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
