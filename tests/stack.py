"""Run crafted captures through the whole stack (capture.run, core, Decoder)
and record what the decoder hands to its sinks.  Shared by the protocol
tests (test_pdu, test_dimse, test_dimse_assembly, test_association_state)."""

from __future__ import annotations

import itertools
from collections import Counter

from fastdicom import capture
from fastdicom.decoder import Decoder

import pcapgen

_n = itertools.count()


class Recorder:
    """A sink that keeps every call, in order."""

    def __init__(self):
        self.pdus = []
        self.commands = []
        self.operations = []  # on_operation calls (each op should come once)
        self.transfers_started = []
        self.transfers_ended = []
        self.data = {}  # transfer index -> bytearray
        self.associations_started = []
        self.associations_ended = []

    def on_association_start(self, a):
        self.associations_started.append(a)

    def on_association_end(self, a):
        self.associations_ended.append(a)

    def on_pdu(self, rec):
        self.pdus.append(rec)

    def on_command(self, cmd):
        self.commands.append(cmd)

    def on_operation(self, op):
        self.operations.append(op)

    def on_transfer_start(self, t):
        self.transfers_started.append(t)

    def on_data(self, t, offset, data):
        buf = self.data.setdefault(t.index, bytearray())
        assert offset == len(buf), "data must arrive in order, without holes"
        buf += data

    def on_transfer_end(self, t):
        self.transfers_ended.append(t)


def run(tmp_path, *conversations, ports=(104,), interleave=False, keep_pdus=True,
        data_limit=-1, heuristic=False, **decoder_options):
    """Decode the conversations as one pcap; returns (decoder, recorder)."""
    path = tmp_path / f"crafted{next(_n)}.pcap"
    path.write_bytes(pcapgen.pcap(*conversations, interleave=interleave))
    rec = Recorder()
    dec = Decoder([rec], keep_pdus=keep_pdus, **decoder_options)
    capture.run([str(path)], dec, capture.EngineOptions(ports=ports, heuristic=heuristic,
                                                        data_limit=data_limit))
    return dec, rec


def run_file(path, ports, **kw):
    rec = Recorder()
    dec = Decoder([rec], **kw)
    capture.run([str(path)], dec, capture.EngineOptions(ports=ports, heuristic=True, data_limit=-1))
    return dec, rec


def conversation(*steps, **kw):
    """A Conversation from (direction, bytes) steps; each step is sent whole."""
    c = pcapgen.Conversation(**kw)
    for d, data in steps:
        c.send(d, data)
    return c.close()


def expert_ids(dec) -> Counter:
    return Counter(e.id for e in dec.expert)
