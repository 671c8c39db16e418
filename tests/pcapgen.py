"""Crafted DICOM conversations for tests: PS3.8 PDUs and PS3.7 command sets
built by hand, carried over TCP segments in a pcap (Ethernet, IPv4).

Only for scenarios the real captures do not hold (hostile UIDs, failures,
odd negotiation).  Values are written byte by byte from the standard, so a
test can state exactly what is on the wire.
"""

from __future__ import annotations

import struct

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def _item(t, body: bytes) -> bytes:
    return struct.pack(">BBH", t, 0, len(body)) + body


def pdu(t, body: bytes) -> bytes:
    return struct.pack(">BBI", t, 0, len(body)) + body


def _ae(s: str) -> bytes:
    return s.encode().ljust(16)[:16]


def user_info(max_len=16384, impl_uid="1.2.3.4", version="TESTGEN", extra=b"") -> bytes:
    body = _item(0x51, struct.pack(">I", max_len)) + _item(0x52, impl_uid.encode())
    body += extra + _item(0x55, version.encode())
    return _item(0x50, body)


def assoc_rq(called="SCP", calling="SCU", contexts=((1, VERIFICATION, (IMPLICIT,)),), max_len=16384,
             extra_user=b"") -> bytes:
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    for cid, abstract, tss in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, ts.encode()) for ts in tss)
        body += _item(0x20, bytes([cid, 0, 0, 0]) + sub)
    body += user_info(max_len, extra=extra_user)
    return pdu(1, body)


def assoc_ac(called="SCP", calling="SCU", results=((1, 0, IMPLICIT),), max_len=16384, extra_user=b"") -> bytes:
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    for cid, result, ts in results:
        body += _item(0x21, bytes([cid, 0, result, 0]) + (_item(0x40, ts.encode()) if ts else b""))
    body += user_info(max_len, extra=extra_user)
    return pdu(2, body)


def assoc_rj(result=1, source=1, reason=7) -> bytes:
    return pdu(3, bytes([0, result, source, reason]))


def release_rq() -> bytes:
    return pdu(5, bytes(4))


def release_rp() -> bytes:
    return pdu(6, bytes(4))


def abort(source=0, reason=0) -> bytes:
    return pdu(7, bytes([0, 0, source, reason]))


def p_data(*pdvs) -> bytes:
    """pdvs: (context id, message control header, fragment bytes)."""
    body = b"".join(struct.pack(">IBB", len(v) + 2, ctx, mch) + v for ctx, mch, v in pdvs)
    return pdu(4, body)


def _el(elem: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00"
    return struct.pack("<HHI", 0, elem, len(value)) + value


def _uid(u: str) -> bytes:
    b = u.encode()
    return b + b"\x00" if len(b) % 2 else b


def command(**fields) -> bytes:
    """An implicit VR LE command set; keyword -> (element, kind) as in PS3.7 E.1-1."""
    spec = {"affected_sop_class_uid": (0x0002, "ui"), "requested_sop_class_uid": (0x0003, "ui"),
            "command_field": (0x0100, "us"), "message_id": (0x0110, "us"),
            "message_id_being_responded_to": (0x0120, "us"), "move_destination": (0x0600, "ae"),
            "priority": (0x0700, "us"), "command_data_set_type": (0x0800, "us"),
            "status": (0x0900, "us"), "error_comment": (0x0902, "lo"),
            "affected_sop_instance_uid": (0x1000, "ui"), "remaining": (0x1020, "us"),
            "completed": (0x1021, "us"), "failed": (0x1022, "us"), "warning": (0x1023, "us")}
    items = []
    for key, val in fields.items():
        elem, kind = spec[key]
        if kind == "us":
            v = struct.pack("<H", val)
        elif kind == "ui":
            v = _uid(val)
        else:
            v = val.encode()
            if len(v) % 2:
                v += b" "
        items.append((elem, v))
    body = b"".join(_el(e, v) for e, v in sorted(items))
    return _el(0x0000, struct.pack("<I", len(body))) + body


def c_store_rq(mid, sop_class, sop_instance):
    return command(affected_sop_class_uid=sop_class, command_field=0x0001, message_id=mid, priority=0,
                   command_data_set_type=0x0000, affected_sop_instance_uid=sop_instance)


def c_store_rsp(mid, sop_class, sop_instance, status=0):
    return command(affected_sop_class_uid=sop_class, command_field=0x8001,
                   message_id_being_responded_to=mid, command_data_set_type=0x0101, status=status,
                   affected_sop_instance_uid=sop_instance)


def c_echo_rq(mid):
    return command(affected_sop_class_uid=VERIFICATION, command_field=0x0030, message_id=mid,
                   command_data_set_type=0x0101)


def c_echo_rsp(mid, status=0):
    return command(affected_sop_class_uid=VERIFICATION, command_field=0x8030,
                   message_id_being_responded_to=mid, command_data_set_type=0x0101, status=status)


def dataset_explicit(elements) -> bytes:
    """Explicit VR LE data set from (tag, vr, value bytes); values padded to even."""
    out = b""
    for tag, vr, val in sorted(elements):
        if len(val) % 2:
            val += b"\x00" if vr == "UI" else b" "
        g, e = tag >> 16, tag & 0xFFFF
        if vr in ("OB", "OW", "SQ", "UN", "UT"):
            out += struct.pack("<HH2sHI", g, e, vr.encode(), 0, len(val)) + val
        else:
            out += struct.pack("<HH2sH", g, e, vr.encode(), len(val)) + val
    return out


def ct_dataset(sop_instance, patient="Doe^John", pid="ID1", pixels=2048) -> bytes:
    return dataset_explicit([
        (0x00080016, "UI", CT_STORAGE.encode()), (0x00080018, "UI", sop_instance.encode()),
        (0x00080060, "CS", b"CT"), (0x00100010, "PN", patient.encode()), (0x00100020, "LO", pid.encode()),
        (0x0020000D, "UI", b"1.2.3.4.5"), (0x0020000E, "UI", b"1.2.3.4.5.6"),
        (0x7FE00010, "OW", bytes(range(256)) * (pixels // 256)),
    ])


def _ip(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def _csum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f">{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Conversation:
    """One TCP connection between a client and a server, written as frames."""

    def __init__(self, client=("10.0.0.1", 40001), server=("10.0.0.2", 104), t0=1_700_000_000.0,
                 mss=1448, handshake=True):
        self.ends = (client, server)
        self.seq = [1000, 5000]
        self.t = t0
        self.mss = mss
        self.frames = []
        if handshake:
            self._seg(0, 0x02, b"", syn=True)
            self._seg(1, 0x12, b"", syn=True)
            self._seg(0, 0x10, b"")

    def _seg(self, d, flags, data, syn=False):
        (sip, sp), (dip, dp) = (self.ends[0], self.ends[1]) if d == 0 else (self.ends[1], self.ends[0])
        ack = self.seq[1 - d]
        tcp = struct.pack(">HHIIBBHHH", sp, dp, self.seq[d], ack, 5 << 4, flags, 65535, 0, 0) + data
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, _ip(sip), _ip(dip))
        ip = ip[:10] + struct.pack(">H", _csum(ip)) + ip[12:]
        eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
        self.frames.append((self.t, eth + ip + tcp))
        self.t += 0.0001
        self.seq[d] = (self.seq[d] + len(data) + (1 if syn or flags & 0x01 else 0)) & 0xFFFFFFFF

    def send(self, d, data: bytes, segment=None):
        """Send bytes from the client (d=0) or server (d=1) in MSS-sized segments."""
        size = segment or self.mss
        for i in range(0, len(data), size):
            self._seg(d, 0x18, data[i:i + size])
        self._seg(1 - d, 0x10, b"")
        return self

    def wait(self, seconds):
        self.t += seconds
        return self

    def close(self, rst=False):
        if rst:
            self._seg(0, 0x14, b"")
        else:
            self._seg(0, 0x11, b"")
            self._seg(1, 0x11, b"")
            self._seg(0, 0x10, b"")
        return self


def pcap(*conversations, interleave=False) -> bytes:
    frames = [f for c in conversations for f in c.frames]
    if interleave:
        frames.sort(key=lambda f: f[0])
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for ts, buf in frames:
        sec = int(ts)
        out.append(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(buf), len(buf)) + buf)
    return b"".join(out)


def store_conversation(uids, client_ae="CT01", server_ae="PACS", **kw) -> Conversation:
    """An association that C-STOREs one small CT object per UID, then releases."""
    c = Conversation(**kw)
    c.send(0, assoc_rq(server_ae, client_ae, [(1, CT_STORAGE, (EXPLICIT, IMPLICIT))]))
    c.send(1, assoc_ac(server_ae, client_ae, [(1, 0, EXPLICIT)]))
    for k, uid in enumerate(uids, 1):
        c.send(0, p_data((1, 3, c_store_rq(k, CT_STORAGE, uid))))
        c.send(0, p_data((1, 2, ct_dataset(uid))))
        c.send(1, p_data((1, 3, c_store_rsp(k, CT_STORAGE, uid))))
    c.send(0, release_rq())
    c.send(1, release_rp())
    return c.close()
