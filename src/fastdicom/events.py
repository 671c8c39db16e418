"""Events that the core (``_core.pyx`` or its twin ``_pycore.py``) hands to Python.

The core is sans-IO: capture bytes go in through ``Engine.feed()``, and
``Engine.pop_events()`` returns a list of plain tuples.  Tuples (not objects)
keep the per-PDU cost low; the first item is always the event kind.  Both
twins emit exactly the same tuples, which is what the differential tests
compare.

Layouts (``dir`` is 0 for client to server, 1 for server to client)::

    (EV_FLOW, flow, frame, ts, client_ip, client_port, server_ip, server_port,
     syn_ts, synack_ts, ack_ts)
        a TCP connection was recognised as DICOM (before any of its PDUs);
        the three handshake times are ns, or -1 when not captured

    (EV_PDU, flow, dir, pdu_type, pdu_length, stream_offset,
     frame_first, frame_last, ts_first, ts_last, body, flags)
        a whole non-P-DATA PDU; ``body`` is the bytes after the 6-byte header

    (EV_PDATA, flow, dir, 4, pdu_length, stream_offset,
     frame_first, frame_last, ts_first, ts_last, pieces, flags,
     release_frame, flow_last_frame)
        PDV pieces of one P-DATA-TF PDU.  A large PDU comes as several events;
        the last one has ``flags & PF_FINAL``.  Each piece is
        ``(context_id, control_header, pdv_length, offset, length, data)``:
        bytes ``offset .. offset+length`` of the PDV's value field (the
        fragment after the 2 header bytes).  ``data`` holds the first
        ``len(data)`` of them: fewer when the engine's ``data_limit`` cut the
        rest.  ``release_frame`` is the frame whose processing released the
        event (the number of the last frame + 1 when the end of the capture
        did) and ``flow_last_frame`` the connection's latest frame then:
        events of connections decoded by different workers sort by the pair
        into the order in which one engine emits them.

    (EV_PDATA_RUN, flow, dir, context_id, pdus, pdu_bytes, value_bytes,
     frame_last, ts_min, ts_max, ts_last, value_length_last, rows)
        With ``Engine(pdata_runs=True)`` only: consecutive plain P-DATA-TF
        PDUs of one connection, direction and context, in one event.  A plain
        PDU holds one whole PDV, a middle fragment of a data set (control
        header 0), none of whose bytes are handed out: the commonest PDU of
        a large data set once its head is past.  It stands where the first
        one's EV_PDATA would; it gathers PDUs until any other event of its
        connection.  ``pdu_bytes`` counts their 6-byte headers too;
        ``frame_last``, ``ts_last`` and ``value_length_last`` are the last
        PDU's; ``ts_min``/``ts_max`` bound the PDUs' last times.  ``rows``
        is, per PDU, nine native int64s: ``pdu_length, stream_offset,
        frame_first, frame_last, ts_first, ts_last, pdv_length,
        release_frame, flow_last_frame``, from which its EV_PDATA can be
        made again (``pieces`` ``((context_id, 0, pdv_length, 0,
        pdv_length - 2, b""),)``, flags PF_FINAL).

    (EV_GAP, flow, dir, stream_offset, size, frame, ts, resumed)
        ``size`` bytes were lost by the tap at ``stream_offset`` (size -1:
        unknown).  ``resumed`` is 1 when PDU framing continued across the gap
        (the gap fell inside one PDV value), 0 when the framer lost sync.

    (EV_EXPERT, flow, dir, code, frame, ts, stream_offset, arg1, arg2)
        a condition found by the core; ``code`` is one of the ``X_*`` values
        below, described in :mod:`fastdicom.expert`.  ``flow`` and ``dir`` are
        -1 for conditions of the capture file itself.

    (EV_FLOW_END, flow, frame, ts, reason, stats)
        a DICOM connection ended (``END_*``); ``stats`` is
        ``(bytes_c2s, bytes_s2c, retrans_c2s, retrans_s2c, ooo_c2s, ooo_s2c,
        zero_window_c2s, zero_window_s2c)``.

    (EV_TCP_ATTEMPT, frame, ts, client_ip, client_port, server_ip,
     server_port, outcome)
        a connection that opened with a SYN but never carried payload
        (``ATTEMPT_*``), reported when it ends; for DICOM ports, and for every
        port while the heuristic is on.
"""

EV_FLOW = 1
EV_PDU = 2
EV_PDATA = 3
EV_GAP = 4
EV_EXPERT = 5
EV_FLOW_END = 6
EV_TCP_ATTEMPT = 7
EV_PDATA_RUN = 8

# EV_PDU / EV_PDATA flags
PF_FINAL = 1  # last event of this PDU
PF_TRUNCATED = 2  # the PDU did not arrive whole (cut by a gap or the end of the stream)

# PDU types, PS3.8 9.3.1
PDU_A_ASSOCIATE_RQ = 0x01
PDU_A_ASSOCIATE_AC = 0x02
PDU_A_ASSOCIATE_RJ = 0x03
PDU_P_DATA_TF = 0x04
PDU_A_RELEASE_RQ = 0x05
PDU_A_RELEASE_RP = 0x06
PDU_A_ABORT = 0x07

# EV_FLOW_END reasons
END_FIN = 1
END_RST = 2
END_IDLE = 3
END_EOF = 4  # still open at the end of the capture
END_EVICTED = 5  # pushed out of a full connection table
END_REUSED = 6  # a new SYN on the same addresses and ports

# EV_TCP_ATTEMPT outcomes
ATTEMPT_UNANSWERED = 1  # SYN, no SYN-ACK
ATTEMPT_REFUSED = 2  # SYN answered by RST
ATTEMPT_NO_DATA = 3  # handshake done, closed without payload

# Core expert codes (EV_EXPERT).  Catalogue entries live in fastdicom.expert.
X_CAPTURE_TRUNCATED = 1  # last record cut short (arg1 = bytes present, arg2 = bytes expected)
X_CAPTURE_DAMAGED = 2  # damaged record/block header (arg1 = file offset, arg2 = bytes skipped)
X_LINKTYPE_UNSUPPORTED = 3  # arg1 = link type (once per link type)
X_IP_FRAGMENT = 4  # IP fragments are not reassembled (once; arg1 = frame)
X_TCP_OVERLAP_CONFLICT = 5  # retransmitted bytes differ from the first copy (arg1 = length)
X_TCP_SEQ_JUMP = 6  # sequence number jumped by 1 GiB or more (arg1 = jump)
X_OOO_BUDGET = 7  # out-of-order budget exhausted; a hole declared lost (arg1 = budget)
X_FLOW_TABLE_FULL = 8  # connection table full; the least recent one evicted (arg1 = bound)
X_PDU_INVALID = 9  # implausible PDU header while in sync (arg1 = type, arg2 = length)
X_RESYNC = 10  # framing found a PDU boundary again (arg1 = bytes skipped, arg2 = PDU type)
X_MIDSTREAM = 11  # stream joined mid-way (arg1 = bytes skipped, arg2 = PDU type)
X_PDU_OVER_MAX = 12  # P-DATA longer than the receiver's maximum (arg1 = length, arg2 = max)
X_PDU_LENGTH_UNEXPECTED = 13  # PDU length wrong for its type (arg1 = type, arg2 = length)
X_PDV_TOO_SMALL = 14  # PDV item length < 2 (arg1 = length)
X_PDV_OVERRUN = 15  # PDV longer than what is left of its PDU (arg1 = length, arg2 = room)
X_PDV_FLAGS_INVALID = 16  # reserved bits set in the message control header (arg1 = byte)
X_PDV_HEADER_CUT = 17  # PDU ends inside a PDV item header (arg1 = bytes left)
X_PDU_TRUNCATED = 18  # stream ended inside a PDU (arg1 = type, arg2 = bytes missing)
X_UNSYNCED_BYTES = 19  # stream ended with bytes never framed (arg1 = bytes)
X_COMMAND_TOO_LARGE = 20  # command PDV over the bound, cut (arg1 = length)
X_PDV_CONTEXT_EVEN = 21  # presentation context ID even (arg1 = id)
X_PDU_IN_GAP = 22  # a non-P-DATA PDU lost bytes to a gap (arg1 = type)
X_OOO_SEGMENTS = 23  # too many out-of-order segments in one direction (arg1 = bound)

CORE_EXPERT_CODES = tuple(range(1, 24))
