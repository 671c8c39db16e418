#!/usr/bin/env python3
"""Generate realistic DICOM C-STORE traffic of any size, with a truth file.

usage: make_capture.py SIZE OUT.pcap [--seed N] [--reorder P] [--dup P]
                       [--truth OUT.truth.json] [--associations N]
                       [--concurrency K] [--frames F]

SIZE is the approximate capture file size: ``20M``, ``500M``, ``1G``, ``4G``
(binary multiples: 1M = 2**20 bytes) or a plain byte count.

What a tap on a 1500-byte-MTU Ethernet link would see: a classic pcap file
(little-endian, microsecond timestamps, link type 1 = Ethernet) holding
several associations, K of them at a time, interleaved in time.  Each
association is its own TCP connection from a distinct client address to
port 11112:

    SYN, SYN/ACK, ACK
    A-ASSOCIATE-RQ  ->                       (PS3.8 9.3.2)
                    <-  A-ASSOCIATE-AC       (PS3.8 9.3.3)
    per object:
    P-DATA-TF: C-STORE-RQ command PDV, then data set PDVs  ->   (PS3.7 9.3.1.1)
                    <-  P-DATA-TF: C-STORE-RSP, status 0x0000
    A-RELEASE-RQ    ->
                    <-  A-RELEASE-RP
    FIN/ACK, FIN/ACK, ACK  (the requestor closes, PS3.8 AR-3)

TCP: 1448-byte segments (MSS 1460 less the 12-byte timestamp option), true
sequence and acknowledgement numbers, an ACK from the receiver every two
segments, PSH on each segment holding the end of a write, IPv4 header
checksums (TCP checksums left zero, as on a capture with offload).  Packets
are paced at 1 Gbit/s on one shared link; SCPs take a little while to
answer.  ``--reorder P`` swaps neighbouring data segments and ``--dup P``
sends a second copy of a segment a few segments later, each with probability
P; both leave the stream recoverable.

Data sets are made from a few templates written once with pydicom (explicit
VR little endian; implicit for the CT/MR contexts of every third association):
CT (512x512, 16 bit, ~0.5 MB), MR (256x256, 16 bit), and multi-frame
grayscale word and byte secondary capture (``--frames`` frames, ~55 MB each at
the default 100).  Per object the UIDs, patient ID and instance number are
written into the template in place, at fixed lengths, so every length stays
valid.  The generator streams: memory depends on the largest object and on
K, not on SIZE.

The truth file has the format of the project's real-capture truth files;
``dataset_len``/``dataset_sha256`` are of the data set bytes exactly as sent
(no File Meta group).  Importable: ``generate(path, size_bytes, ...)``
returns the truth dict.
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import heapq
import io
import json
import os
import random
import re
import struct
import sys
import time

import numpy as np

# ---------------------------------------------------------------- constants
SERVER_PORT = 11112
MSS = 1448  # TCP payload per full segment: 1500 - 20 (IP) - 32 (TCP + timestamps)
LINK_BPS = 1_000_000_000
SEG_NS = (14 + 20 + 32 + MSS + 24) * 8 * 10**9 // LINK_BPS  # frame + preamble/FCS/gap
ACK_NS = 3_000  # receiver turnaround for a pure ACK (< SEG_NS keeps time order)
MASK32 = 0xFFFFFFFF
START_TIME = calendar.timegm((2026, 11, 27, 9, 0, 0))

# TCP flags
FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10

# UIDs (PS3.6 Annex A)
APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
MF_BYTE_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7.2"  # Multi-frame Grayscale Byte SC
MF_WORD_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word SC
SCU_IMPLEMENTATION_UID = b"2.25.305846231208759812371406128463975102211"
SCU_IMPLEMENTATION_VERSION = b"FASTDICOM_GEN"
SCP_IMPLEMENTATION_UID = b"2.25.119754638201553764170281536993047228761"
SCP_IMPLEMENTATION_VERSION = b"FASTDICOM_SCP"

# template kind -> (SOP class, presentation context ID)
KINDS = {
    "CT": (CT_IMAGE_STORAGE, 1),
    "MR": (MR_IMAGE_STORAGE, 3),
    "MFB": (MF_BYTE_SC_STORAGE, 5),
    "MFW": (MF_WORD_SC_STORAGE, 7),
}
MAX_PDU_CHOICES = (16384, 65536, 0)  # the SCP's maximum length; 0 = unlimited


def cache_folder(path) -> str:
    """Create a folder for generated captures that git ignores (it holds a
    ``.gitignore`` of ``*``): captures of gigabytes must never be committed."""
    os.makedirs(path, exist_ok=True)
    ignore = os.path.join(path, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w") as f:
            f.write("*\n")
    return str(path)


def parse_size(text: str) -> int:
    """``1G``, ``500M``, ``20m``, ``1.5G``, ``4GiB``, ``123456`` -> bytes (binary multiples)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.I)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    mult = 1024 ** " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * mult)


# ------------------------------------------------------ PS3.8 upper layer PDUs
def _ae(title: str) -> bytes:
    """AE title field: 16 bytes, space padded."""
    return title.encode("ascii").ljust(16, b" ")


def _item(item_type: int, body: bytes) -> bytes:
    """Item/sub-item: type (1), reserved (1), item length (2, big endian), body."""
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def _pdu(pdu_type: int, body: bytes) -> bytes:
    """PDU: type (1), reserved (1), PDU length (4, big endian), body."""
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def _user_information(max_length: int, impl_uid: bytes, impl_version: bytes) -> bytes:
    """User Information item 0x50: Maximum Length 0x51 (PS3.8 D.1), Implementation
    Class UID 0x52 and Implementation Version Name 0x55 (PS3.7 D.3.3.2)."""
    return _item(0x50, _item(0x51, struct.pack(">I", max_length))
                 + _item(0x52, impl_uid) + _item(0x55, impl_version))


def _assoc_header(called: str, calling: str) -> bytes:
    """Protocol version (2) = 1, reserved (2), called AE (16), calling AE (16), reserved (32)."""
    return struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)


def a_associate_rq(called: str, calling: str, contexts, max_length: int) -> bytes:
    """A-ASSOCIATE-RQ PDU (type 0x01).

    ``contexts``: ``[(context_id, abstract_syntax, [transfer_syntax, ...])]``, each
    a Presentation Context item 0x20: context ID (1), reserved (3), an Abstract
    Syntax sub-item 0x30 and Transfer Syntax sub-items 0x40.
    """
    items = [_item(0x10, APPLICATION_CONTEXT)]
    for cid, abstract, tsyntaxes in contexts:
        body = struct.pack(">BBBB", cid, 0, 0, 0) + _item(0x30, abstract.encode())
        body += b"".join(_item(0x40, ts.encode()) for ts in tsyntaxes)
        items.append(_item(0x20, body))
    items.append(_user_information(max_length, SCU_IMPLEMENTATION_UID, SCU_IMPLEMENTATION_VERSION))
    return _pdu(0x01, _assoc_header(called, calling) + b"".join(items))


def a_associate_ac(called: str, calling: str, results, max_length: int) -> bytes:
    """A-ASSOCIATE-AC PDU (type 0x02).

    ``results``: ``[(context_id, result, transfer_syntax)]``, each a Presentation
    Context item 0x21: context ID (1), reserved (1), result/reason (1; 0 =
    acceptance), reserved (1), one Transfer Syntax sub-item 0x40.  The AE fields
    repeat the request's, as PS3.8 9.3.3.2 asks.
    """
    items = [_item(0x10, APPLICATION_CONTEXT)]
    for cid, result, ts in results:
        items.append(_item(0x21, struct.pack(">BBBB", cid, 0, result, 0) + _item(0x40, ts.encode())))
    items.append(_user_information(max_length, SCP_IMPLEMENTATION_UID, SCP_IMPLEMENTATION_VERSION))
    return _pdu(0x02, _assoc_header(called, calling) + b"".join(items))


A_RELEASE_RQ = _pdu(0x05, bytes(4))
A_RELEASE_RP = _pdu(0x06, bytes(4))


def p_data_tf(context_id: int, control: int, value: bytes) -> bytes:
    """P-DATA-TF PDU (type 0x04) holding one PDV item: item length (4), presentation
    context ID (1), message control header (1: bit 0 command, bit 1 last fragment),
    value."""
    return _pdu(0x04, struct.pack(">IBB", len(value) + 2, context_id, control) + value)


# ------------------------------------------------------ PS3.7 command sets
def _elem(element: int, value: bytes) -> bytes:
    """Implicit VR little endian element of group 0000: tag (4), length (4), value."""
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def _ui(uid: str) -> bytes:
    b = uid.encode("ascii")
    return b + b"\0" * (len(b) & 1)


def _us(v: int) -> bytes:
    return struct.pack("<H", v)


def _command(elements: bytes) -> bytes:
    """Prefix (0000,0000) Command Group Length."""
    return _elem(0x0000, struct.pack("<I", len(elements))) + elements


def c_store_rq(message_id: int, sop_class: str, sop_instance: str, priority: int = 0,
               move_originator: tuple[str, int] | None = None) -> bytes:
    """C-STORE-RQ command set (PS3.7 Table 9.3-1), implicit VR little endian."""
    e = (_elem(0x0002, _ui(sop_class)) + _elem(0x0100, _us(0x0001))
         + _elem(0x0110, _us(message_id)) + _elem(0x0700, _us(priority))
         + _elem(0x0800, _us(0x0000)) + _elem(0x1000, _ui(sop_instance)))
    if move_originator:
        ae, mid = move_originator
        e += _elem(0x1030, _ae(ae)) + _elem(0x1031, _us(mid))
    return _command(e)


def c_store_rsp(message_id: int, sop_class: str, sop_instance: str, status: int = 0) -> bytes:
    """C-STORE-RSP command set (PS3.7 Table 9.3-2): no data set (0x0101)."""
    return _command(_elem(0x0002, _ui(sop_class)) + _elem(0x0100, _us(0x8001))
                    + _elem(0x0120, _us(message_id)) + _elem(0x0800, _us(0x0101))
                    + _elem(0x0900, _us(status)) + _elem(0x1000, _ui(sop_instance)))


# ------------------------------------------------------------- templates
UID_LEN = 44  # "2.25." + 39 digits: even, so no padding byte


def fixed_uid(rr: random.Random) -> str:
    """A 2.25 UID (PS3.5 B.2) of exactly UID_LEN characters."""
    return "2.25." + str(rr.randrange(10**38, 2**128))


_PH_SOP = "2.25." + "1" * 39
_PH_STUDY = "2.25." + "2" * 39
_PH_SERIES = "2.25." + "3" * 39

# patched elements: name -> (group, element, VR, length)
_PATCHED = {
    "sop_instance_uid": (0x0008, 0x0018, b"UI", UID_LEN),
    "patient_id": (0x0010, 0x0020, b"LO", 10),
    "study_uid": (0x0020, 0x000D, b"UI", UID_LEN),
    "series_uid": (0x0020, 0x000E, b"UI", UID_LEN),
    "instance_number": (0x0020, 0x0013, b"IS", 6),
}


class Template:
    """A data set encoded once; ``data`` is patched in place for each object."""

    def __init__(self, kind: str, transfer_syntax: str, data: np.ndarray, offsets: dict):
        self.kind = kind
        self.sop_class = KINDS[kind][0]
        self.transfer_syntax = transfer_syntax
        self.data = data
        self.offsets = offsets

    def patch(self, **values) -> None:
        for name, value in values.items():
            off = self.offsets[name]
            b = value.encode("ascii")
            assert len(b) == _PATCHED[name][3], (name, value)
            self.data[off:off + len(b)] = np.frombuffer(b, np.uint8)


def _base_dataset(sop_class: str, modality: str):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = "20261127"
    ds.InstanceCreationTime = "090000"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = _PH_SOP
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20261127"
    ds.StudyTime = "085512"
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "085940.125000"
    ds.AccessionNumber = "ACC00012345"
    ds.Modality = modality
    ds.Manufacturer = "FASTDICOM"
    ds.InstitutionName = "General Hospital"
    ds.ReferringPhysicianName = "REFERRER^JANE"
    ds.StationName = "STATION01"
    ds.StudyDescription = "Synthetic study"
    ds.SeriesDescription = f"Synthetic {modality} series"
    ds.ManufacturerModelName = "Generator"
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "PAT0000000"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.PatientAge = "066Y"
    ds.SoftwareVersions = "fastdicom make_capture"
    ds.StudyInstanceUID = _PH_STUDY
    ds.SeriesInstanceUID = _PH_SERIES
    ds.StudyID = "1"
    ds.SeriesNumber = "2"
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = "000000"
    ds.FrameOfReferenceUID = "2.25.256012945637018827368261963437452880411"
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def _phantom(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A disc on a dark background plus noise, 12-bit values."""
    y, x = np.ogrid[:rows, :cols]
    r2 = (y - rows / 2) ** 2 + (x - cols / 2) ** 2
    img = np.where(r2 < (0.42 * min(rows, cols)) ** 2, 1040, 24).astype(np.int32)
    img += rng.integers(0, 40, size=(rows, cols), dtype=np.int32)
    return img.astype(np.uint16)


def build_template(kind: str, transfer_syntax: str, frames: int, seed: int = 0) -> Template:
    """Build one template with pydicom and locate the elements to patch."""
    from pydicom.filewriter import dcmwrite

    rng = np.random.default_rng(seed)
    if kind == "CT":
        ds = _base_dataset(CT_IMAGE_STORAGE, "CT")
        ds.BodyPartExamined = "CHEST"
        ds.SliceThickness = "1.25"
        ds.KVP = "120"
        ds.DataCollectionDiameter = "500"
        ds.ReconstructionDiameter = "350"
        ds.GantryDetectorTilt = "0"
        ds.TableHeight = "150"
        ds.RotationDirection = "CW"
        ds.ExposureTime = "500"
        ds.XRayTubeCurrent = "220"
        ds.Exposure = "110"
        ds.ConvolutionKernel = "STANDARD"
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = ["-175", "-175", "-120.5"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = "-120.5"
        ds.Rows = ds.Columns = 512
        ds.PixelSpacing = ["0.683594", "0.683594"]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.PixelData = _phantom(512, 512, rng).tobytes()
    elif kind == "MR":
        ds = _base_dataset(MR_IMAGE_STORAGE, "MR")
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "SK"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SliceThickness = "5"
        ds.RepetitionTime = "500"
        ds.EchoTime = "15"
        ds.MagneticFieldStrength = "1.5"
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = ["-120", "-120", "30"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.Rows = ds.Columns = 256
        ds.PixelSpacing = ["0.9375", "0.9375"]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = _phantom(256, 256, rng).tobytes()
    elif kind in ("MFW", "MFB"):
        word = kind == "MFW"
        ds = _base_dataset(KINDS[kind][0], "OT")
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ConversionType = "WSD"
        ds.BurnedInAnnotation = "NO"
        ds.NumberOfFrames = str(frames)
        ds.FrameIncrementPointer = 0x00181063  # Frame Time
        ds.FrameTime = "33.3"
        rows, cols = (512, 512) if word else (576, 1024)
        ds.Rows, ds.Columns = rows, cols
        if word:
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
            base = _phantom(rows, cols, rng)
        else:
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
            base = (_phantom(rows, cols, rng) >> 3).astype(np.uint8)
        pix = np.empty((frames, rows, cols), base.dtype)
        for f in range(frames):  # a moving picture: each frame shifted
            pix[f] = np.roll(base, 3 * f, axis=1)
        ds.PixelData = pix.tobytes()
        del pix
    else:
        raise ValueError(kind)

    implicit = transfer_syntax == IMPLICIT_VR_LE
    buf = io.BytesIO()
    dcmwrite(buf, ds, implicit_vr=implicit, little_endian=True)
    raw = buf.getbuffer()
    data = np.frombuffer(raw, np.uint8).copy()
    head = bytes(raw[:len(raw) - len(ds.PixelData)])  # everything before the pixel values
    del raw, buf
    offsets = {}
    for name, (group, element, vr, length) in _PATCHED.items():
        tag = struct.pack("<HH", group, element)
        hdr = tag + (struct.pack("<I", length) if implicit else vr + struct.pack("<H", length))
        at = head.find(hdr)
        assert at >= 0 and head.find(hdr, at + 1) < 0, (kind, name)
        offsets[name] = at + len(hdr)
    return Template(kind, transfer_syntax, data, offsets)


# ------------------------------------------------------------- packets
# pcap record (16) + Ethernet (14) + IPv4 (20) + TCP (20 + 12 option bytes) = 82
HDR_LEN = 82
DATA_REC_LEN = HDR_LEN + MSS  # 1530
_FIELDS = dict(names=["ts_sec", "ts_usec", "ip_id", "ip_sum", "seq", "ack", "flags"],
               formats=["<u4", "<u4", ">u2", ">u2", ">u4", ">u4", "u1"],
               offsets=[0, 4, 34, 40, 54, 58, 63])
DATA_REC = np.dtype(dict(names=_FIELDS["names"] + ["payload"],
                         formats=_FIELDS["formats"] + [("u1", (MSS,))],
                         offsets=_FIELDS["offsets"] + [HDR_LEN], itemsize=DATA_REC_LEN))
ACK_REC = np.dtype(dict(_FIELDS, itemsize=HDR_LEN))
# two data segments, then the receiver's ACK
PAIR = np.dtype(dict(names=["a", "b", "k"], formats=[DATA_REC, DATA_REC, ACK_REC],
                     offsets=[0, DATA_REC_LEN, 2 * DATA_REC_LEN],
                     itemsize=2 * DATA_REC_LEN + HDR_LEN))

_PCAP_GLOBAL = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
_PCAP_REC = struct.Struct("<IIII")
_IPV4 = struct.Struct(">BBHHHBBH4s4s")
_TCP = struct.Struct(">HHIIBBHHH")
_TS_OPT = struct.Struct(">BBBBII")  # NOP, NOP, kind 8, length 10, TSval, TSecr
_SYN_OPT = struct.Struct(">BBHBBBBIIBBBB")  # MSS, SACK permitted, timestamps, NOP, window scale
DATA_WINDOW = 501  # scaled by 2**7: ~64 KB


IP_FIXED_SUM = 0x4500 + 0x4000 + 0x4006  # version/IHL, DF, TTL 64/TCP: with the addresses
# and the varying length and ID, all the IPv4 header words (checksum field zero)


def _fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Endpoint:
    """One side of a connection: addresses and its sending state."""

    __slots__ = ("mac", "ip", "port", "nxt", "ip_id", "tsbase", "ipsum")

    def __init__(self, mac: bytes, ip: bytes, port: int, isn: int, ip_id: int, tsbase: int):
        self.mac, self.ip, self.port = mac, ip, port
        self.nxt = isn
        self.ip_id = ip_id
        self.tsbase = tsbase
        self.ipsum = sum(struct.unpack(">HH", ip))  # this address's share of the IPv4 checksum


class Transmission:
    """Bytes one side writes back to back (one or several writes)."""

    __slots__ = ("snd", "rcv", "buf", "ends", "pos", "seq0", "length", "on_done", "acked")

    def __init__(self, snd, rcv, buf, ends, on_done=None):
        self.snd, self.rcv = snd, rcv
        if len(buf) > MSS and not isinstance(buf, np.ndarray):
            buf = np.frombuffer(buf, np.uint8)
        self.buf = buf  # np.uint8 array, or bytes when short
        self.ends = ends  # np.int64 array: stream offsets where a write ends (sorted)
        self.pos = 0
        self.seq0 = snd.nxt
        self.length = len(buf)
        self.on_done = on_done
        # single-segment messages get no pure ACK: the answer carries it
        self.acked = self.length > MSS


class PcapWriter:
    """Packets of all connections onto one link clock, written in large pieces."""

    def __init__(self, fp, rng: np.random.Generator, reorder: float, dup: float):
        self.fp = fp
        self.rng = rng
        self.reorder = reorder
        self.dup = dup
        self.clock = 0  # ns since START_TIME; never goes back
        self.t0 = START_TIME * 10**9
        self.bytes = len(_PCAP_GLOBAL)
        self.packets = 0
        fp.write(_PCAP_GLOBAL)
        self._aranges = {}
        self._pairs = np.empty(0, PAIR)

    # -- one packet at a time (handshakes, short messages, segment tails)
    def packet(self, snd: Endpoint, rcv: Endpoint, flags: int, payload=b"", syn=False):
        t = self.t0 + self.clock
        tsval = (snd.tsbase + t // 10**6) & MASK32
        tsecr = 0 if flags == SYN else (rcv.tsbase + t // 10**6) & MASK32
        if syn:
            opts = _SYN_OPT.pack(2, 4, 1460, 4, 2, 8, 10, tsval, tsecr, 1, 3, 3, 7)
            win = 64240
        else:
            opts = _TS_OPT.pack(1, 1, 8, 10, tsval, tsecr)
            win = DATA_WINDOW
        ack = rcv.nxt if flags & ACK else 0
        iplen = 20 + 20 + len(opts) + len(payload)
        ipsum = _fold(IP_FIXED_SUM + snd.ipsum + rcv.ipsum + iplen + snd.ip_id)
        frame = (rcv.mac + snd.mac + b"\x08\x00"
                 + _IPV4.pack(0x45, 0, iplen, snd.ip_id, 0x4000, 64, 6, ipsum, snd.ip, rcv.ip)
                 + _TCP.pack(snd.port, rcv.port, snd.nxt, ack, (20 + len(opts)) << 2, flags,
                             win, 0, 0) + opts)
        n = len(frame) + len(payload)
        self.fp.write(_PCAP_REC.pack(t // 10**9, t % 10**9 // 1000, n, n) + frame)
        if payload:
            self.fp.write(payload)
        self.bytes += 16 + n
        self.packets += 1
        snd.ip_id = (snd.ip_id + 1) & 0xFFFF
        snd.nxt = (snd.nxt + len(payload) + (1 if flags & (SYN | FIN) else 0)) & MASK32

    def _header(self, snd: Endpoint, rcv: Endpoint, iplen: int, t: int) -> np.ndarray:
        """The 82 header bytes common to a burst's records (varying fields zero)."""
        ms = t // 10**6
        frame = (rcv.mac + snd.mac + b"\x08\x00"
                 + _IPV4.pack(0x45, 0, iplen, 0, 0x4000, 64, 6, 0, snd.ip, rcv.ip)
                 + _TCP.pack(snd.port, rcv.port, snd.nxt, rcv.nxt, 0x80, ACK, DATA_WINDOW, 0, 0)
                 + _TS_OPT.pack(1, 1, 8, 10, (snd.tsbase + ms) & MASK32, (rcv.tsbase + ms) & MASK32))
        n = len(frame) + (iplen - 52)
        return np.frombuffer(_PCAP_REC.pack(0, 0, n, n) + frame, np.uint8)

    def _order(self, n: int) -> np.ndarray:
        """Order in which a burst's n segments go on the wire (with --reorder/--dup)."""
        if not (self.reorder or self.dup):
            a = self._aranges.get(n)
            if a is None:
                a = self._aranges[n] = np.arange(n)
            return a
        order = list(range(n))
        if self.reorder and n > 1:
            swap = self.rng.random(n - 1) < self.reorder
            i = 0
            while i < n - 1:
                if swap[i]:
                    order[i], order[i + 1] = order[i + 1], order[i]
                    i += 2
                else:
                    i += 1
        if self.dup:
            for i in np.flatnonzero(self.rng.random(n) < self.dup)[::-1]:
                later = min(len(order), int(i) + 1 + int(self.rng.integers(0, 6)))
                order.insert(later, order[i])
        return np.array(order)

    # -- many full segments at once
    def burst(self, tx: Transmission, nseg: int) -> None:
        """Send ``nseg`` full segments of ``tx`` from ``tx.pos``, the receiver
        acknowledging every two; one write of pcap records per burst."""
        snd, rcv = tx.snd, tx.rcv
        order = self._order(nseg)
        m = order.size
        t = self.t0 + self.clock + np.arange(m, dtype=np.int64) * SEG_NS
        off = tx.pos + order * MSS  # stream offsets of the segments as sent
        ends = tx.ends
        i = np.minimum(np.searchsorted(ends, off, "right"), ends.size - 1)
        flags = np.where((ends[i] > off) & (ends[i] <= off + MSS), ACK | PSH, ACK).astype(np.uint8)
        ip_id = (snd.ip_id + np.arange(m)) & 0xFFFF
        snd.ip_id = (snd.ip_id + m) & 0xFFFF
        ip_sum = _fold(IP_FIXED_SUM + snd.ipsum + rcv.ipsum + (20 + 32 + MSS) + ip_id)
        seq = (tx.seq0 + off) & MASK32
        rows = tx.buf[tx.pos:tx.pos + nseg * MSS].reshape(nseg, MSS)

        # the receiver ACKs after records 2, 4, ...: all bytes before the first
        # segment not yet seen
        npairs, odd = divmod(m, 2)
        last = tx.pos + nseg * MSS == tx.length  # no tail and no further burst
        nacks = npairs + (1 if odd and last else 0)
        identity = order is self._aranges.get(nseg)
        if identity:
            seen = np.minimum(np.arange(2, 2 * nacks + 1, 2), nseg)
        else:
            first = np.full(nseg, m, np.int64)
            np.minimum.at(first, order, np.arange(m))
            seen = np.searchsorted(np.maximum.accumulate(first),
                                   np.minimum(np.arange(2, 2 * nacks + 1, 2), m), "left")
        ack_no = (tx.seq0 + tx.pos + seen * MSS) & MASK32
        k_t = t[np.minimum(np.arange(1, 2 * nacks, 2), m - 1)] + ACK_NS
        k_id = (rcv.ip_id + np.arange(nacks)) & 0xFFFF
        k_sum = _fold(IP_FIXED_SUM + snd.ipsum + rcv.ipsum + 52 + k_id)

        dhdr = self._header(snd, rcv, 20 + 32 + MSS, int(t[0]))
        khdr = self._header(rcv, snd, 52, int(t[0]))
        sec, usec = t // 10**9, t % 10**9 // 1000
        k_sec, k_usec = k_t // 10**9, k_t % 10**9 // 1000

        if npairs:
            if self._pairs.size < npairs:  # reused: no allocation (and page faults) per burst
                self._pairs = np.empty(npairs, PAIR)
            P = self._pairs[:npairs]
            u = P.view(np.uint8).reshape(npairs, PAIR.itemsize)
            u[:, :HDR_LEN] = dhdr
            u[:, DATA_REC_LEN:DATA_REC_LEN + HDR_LEN] = dhdr
            u[:, 2 * DATA_REC_LEN:] = khdr
            for name, s in (("a", slice(0, 2 * npairs, 2)), ("b", slice(1, 2 * npairs, 2))):
                r = P[name]
                r["ts_sec"] = sec[s]
                r["ts_usec"] = usec[s]
                r["ip_id"] = ip_id[s]
                r["ip_sum"] = ip_sum[s]
                r["seq"] = seq[s]
                r["flags"] = flags[s]
                r["payload"] = rows[s] if identity else rows[order[s]]
            k = P["k"]
            k["ts_sec"] = k_sec[:npairs]
            k["ts_usec"] = k_usec[:npairs]
            k["ip_id"] = k_id[:npairs]
            k["ip_sum"] = k_sum[:npairs]
            k["ack"] = ack_no[:npairs]
            k["flags"] = ACK
            self.fp.write(u)
        if odd:
            j = m - 1
            D = np.empty(1, DATA_REC)
            D.view(np.uint8)[:HDR_LEN] = dhdr
            D["ts_sec"], D["ts_usec"], D["ip_id"], D["ip_sum"] = sec[j], usec[j], ip_id[j], ip_sum[j]
            D["seq"], D["flags"], D["payload"] = seq[j], flags[j], rows[order[j]]
            self.fp.write(D.view(np.uint8))
            if nacks > npairs:
                K = np.empty(1, ACK_REC)
                K.view(np.uint8)[:] = khdr
                K["ts_sec"], K["ts_usec"], K["ip_id"], K["ip_sum"] = k_sec[-1], k_usec[-1], k_id[-1], k_sum[-1]
                K["ack"], K["flags"] = ack_no[-1], ACK
                self.fp.write(K.view(np.uint8))
        rcv.ip_id = (rcv.ip_id + nacks) & 0xFFFF
        self.bytes += m * DATA_REC_LEN + nacks * HDR_LEN
        self.packets += m + nacks
        tx.pos += nseg * MSS
        snd.nxt = (tx.seq0 + tx.pos) & MASK32
        self.clock += m * SEG_NS

    def send(self, tx: Transmission, max_segments: int) -> bool:
        """Send up to ``max_segments`` more of ``tx``; True when it is all sent."""
        full = (tx.length - tx.pos) // MSS
        if full:
            n = min(full, max_segments)
            if n < full:
                n -= n & 1  # keep bursts even: ACKs fall every two segments
            self.burst(tx, n)
            if n < full:
                return False
        if tx.pos < tx.length:  # the tail: shorter than MSS, ends the last write
            self.packet(tx.snd, tx.rcv, ACK | PSH, bytes(tx.buf[tx.pos:]))
            self.clock += (14 + 20 + 32 + tx.length - tx.pos + 24) * 8
            tx.pos = tx.length
            if tx.acked:
                self.clock += ACK_NS
                self.packet(tx.rcv, tx.snd, ACK)
        return True


# ------------------------------------------------------------- traffic plan
class AssociationPlan:
    """What one association carries, decided up front (small)."""

    def __init__(self, index: int, rr: random.Random):
        self.index = index
        self.calling_ae = f"SCU{index:03d}"
        self.called_ae = "STORESCP"
        self.client_ip = bytes((10, 20, 1 + index // 250, 2 + index % 250))
        self.client_mac = bytes((0x02, 0x00, 0x0A, 0x14, 1 + index // 250, 2 + index % 250))
        self.client_port = 40000 + (index * 7919 + rr.randrange(97)) % 25000
        self.max_pdu = 0  # the SCP's receive maximum (the SCU fragments to it)
        self.scu_max_pdu = 16384
        self.implicit = False  # CT/MR contexts accepted with implicit VR LE
        self.move_originator = ("QRSCU", 1 + index) if index % 5 == 1 else None
        self.objects: list[str] = []  # template kinds, in order
        self.patient_id = f"PAT{rr.randrange(10**7):07d}"
        self.study_uid = fixed_uid(rr)
        self.series_uids = {k: fixed_uid(rr) for k in KINDS}

    def transfer_syntax(self, kind: str) -> str:
        return IMPLICIT_VR_LE if self.implicit and kind in ("CT", "MR") else EXPLICIT_VR_LE


def _wire_cost(dataset_len: int, max_pdu: int) -> float:
    """Approximate capture bytes for one stored object."""
    frag = dataset_len if max_pdu == 0 else max_pdu - 12
    stream = dataset_len + 12 * -(-dataset_len // frag) + 200
    return stream / MSS * (DATA_REC_LEN + HDR_LEN / 2) + 600


def plan(size_bytes: int, rr: random.Random, n_assoc: int, lengths: dict) -> list[AssociationPlan]:
    """Choose associations and their objects so the capture is near ``size_bytes``."""
    plans = [AssociationPlan(i, rr) for i in range(n_assoc)]
    pdus = list(MAX_PDU_CHOICES)
    rr.shuffle(pdus)
    for p in plans:
        p.max_pdu = pdus[p.index % len(pdus)]
        p.implicit = p.index % 3 == 2
    avg_pdu = 16384
    budget = size_bytes - len(_PCAP_GLOBAL) - n_assoc * 3000
    # multi-frame objects: about a third of the bytes, one per association at most
    mf_cost = (_wire_cost(lengths["MFW"], avg_pdu) + _wire_cost(lengths["MFB"], avg_pdu)) / 2
    n_mf = min(n_assoc, int(0.35 * budget / mf_cost + 0.5))
    for i, p in enumerate(rr.sample(plans, n_mf)):
        p.objects.append("MFW" if i % 2 == 0 else "MFB")
        budget -= _wire_cost(lengths[p.objects[-1]], p.max_pdu)
    # single-frame objects: runs of CT (4 in 5) and MR, at least one per association
    singles = []
    while budget > 0 or len(singles) < n_assoc:
        kind = "MR" if rr.random() < 0.2 else "CT"
        singles.append(kind)
        budget -= _wire_cost(lengths[kind], avg_pdu)
    q, r = divmod(len(singles), n_assoc)
    for p in plans:
        n = q + (p.index < r)
        chunk, singles = sorted(singles[:n]), singles[n:]  # a CT series, then an MR series
        pos = rr.randrange(len(p.objects) + 1)
        p.objects[pos:pos] = chunk
    return plans


def _approx_length(kind: str, frames: int) -> int:
    pixels = {"CT": 512 * 512 * 2, "MR": 256 * 256 * 2,
              "MFW": frames * 512 * 512 * 2, "MFB": frames * 576 * 1024}[kind]
    return pixels + 1400


# ------------------------------------------------------------- the run
class _Generator:
    def __init__(self, fp, size_bytes, seed, reorder, dup, n_assoc, concurrency, frames):
        self.rr = random.Random(seed)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.frames = frames
        self.writer = PcapWriter(fp, self.rng, reorder, dup)
        self.templates = {}
        lengths = {k: _approx_length(k, frames) for k in KINDS}
        self.plans = plan(size_bytes, self.rr, n_assoc, lengths)
        self.concurrency = max(1, min(concurrency, len(self.plans)))
        self.server_mac = bytes.fromhex("020000000a0a")
        self.server_ip = bytes((10, 0, 0, 10))
        self.truth = {"capture": None, "associations": [], "operations": [], "received": [],
                      "ports": [SERVER_PORT]}

    def template(self, kind: str, ts: str) -> Template:
        t = self.templates.get((kind, ts))
        if t is None:
            t = self.templates[(kind, ts)] = build_template(kind, ts, self.frames, self.seed)
        return t

    def us(self, lo: float, hi: float) -> int:
        """A delay between lo and hi microseconds, in ns."""
        return int(self.rr.uniform(lo, hi) * 1000)

    # -- one association as a script of (delay before, action) steps
    def script(self, p: AssociationPlan):
        rr = self.rr
        c = Endpoint(p.client_mac, p.client_ip, p.client_port, rr.getrandbits(32),
                     rr.getrandbits(16), rr.getrandbits(32))
        s = Endpoint(self.server_mac, self.server_ip, SERVER_PORT, rr.getrandbits(32),
                     rr.getrandbits(16), rr.getrandbits(32))
        w = self.writer
        half_rtt = self.us(30, 60)
        yield 0, lambda: w.packet(c, s, SYN, syn=True)
        yield half_rtt, lambda: w.packet(s, c, SYN | ACK, syn=True)
        yield half_rtt, lambda: w.packet(c, s, ACK)

        contexts = [(cid, uid, [EXPLICIT_VR_LE, IMPLICIT_VR_LE]) for uid, cid in KINDS.values()]
        rq = a_associate_rq(p.called_ae, p.calling_ae, contexts, p.scu_max_pdu)
        yield self.us(20, 80), self._tx(c, s, rq)
        results = [(cid, 0, p.transfer_syntax(kind)) for kind, (_, cid) in KINDS.items()]
        ac = a_associate_ac(p.called_ae, p.calling_ae, results, p.max_pdu)
        yield self.us(300, 900), self._tx(s, c, ac)
        self.truth["associations"].append(
            {"calling_ae": p.calling_ae, "called_ae": p.called_ae, "outcome": "accepted"})

        instance = 0
        for msg_id, kind in enumerate(p.objects, 1):
            instance += 1
            sop_class, cid = KINDS[kind]
            ts = p.transfer_syntax(kind)
            tmpl = self.template(kind, ts)
            sop_instance = fixed_uid(rr)
            tmpl.patch(sop_instance_uid=sop_instance, patient_id=p.patient_id,
                       study_uid=p.study_uid, series_uid=p.series_uids[kind],
                       instance_number=f"{instance:06d}")
            received = {"scp": "generator", "sop_class_uid": sop_class,
                        "sop_instance_uid": sop_instance, "transfer_syntax": ts,
                        "dataset_len": int(tmpl.data.size),
                        "dataset_sha256": hashlib.sha256(tmpl.data).hexdigest(),
                        "message_id": msg_id}
            cmd = c_store_rq(msg_id, sop_class, sop_instance, move_originator=p.move_originator)
            buf, ends = self._store_stream(cid, cmd, tmpl.data, p.max_pdu)
            yield self.us(40, 150), self._tx(c, s, buf, ends,
                                             lambda r=received: self.truth["received"].append(r))
            del buf, ends
            # the SCP stores the object: longer for bigger ones
            delay = self.us(200, 1500) + tmpl.data.size // 200
            rsp = p_data_tf(cid, 0x03, c_store_rsp(msg_id, sop_class, sop_instance))
            op = {"kind": "C-STORE", "status": 0, "sop_instance_uid": sop_instance}
            yield delay, self._tx(s, c, rsp, on_done=lambda o=op: self.truth["operations"].append(o))

        yield self.us(50, 200), self._tx(c, s, A_RELEASE_RQ)
        yield self.us(100, 400), self._tx(s, c, A_RELEASE_RP)
        yield self.us(30, 100), lambda: w.packet(c, s, FIN | ACK)
        yield half_rtt, lambda: w.packet(s, c, FIN | ACK)
        yield half_rtt, lambda: w.packet(c, s, ACK)

    @staticmethod
    def _tx(snd, rcv, buf, ends=None, on_done=None):
        """A deferred Transmission (created when its turn comes, so seq numbers are current)."""
        if ends is None:
            ends = np.array([len(buf)], np.int64)
        return ("tx", snd, rcv, buf, ends, on_done)

    @staticmethod
    def _store_stream(cid: int, command: bytes, dataset: np.ndarray, max_pdu: int):
        """The bytes of one C-STORE request: a P-DATA-TF with the command PDV, then
        P-DATA-TFs with one data PDV each, fragmented so a PDU fits ``max_pdu``
        (PS3.8 9.3.5: PDV value = max - 6 (PDU header) - 6 (PDV header))."""
        cmd = p_data_tf(cid, 0x03, command)
        n = dataset.size
        frag = n if max_pdu == 0 else max_pdu - 12
        nfull, rest = divmod(n, frag)
        total = len(cmd) + nfull * (frag + 12) + (rest + 12 if rest else 0)
        buf = np.empty(total, np.uint8)
        c = len(cmd)
        buf[:c] = np.frombuffer(cmd, np.uint8)
        hdr = np.frombuffer(struct.pack(">BBIIBB", 4, 0, frag + 6, frag + 2, cid, 0x00), np.uint8)
        if nfull:
            rows = buf[c:c + nfull * (frag + 12)].reshape(nfull, frag + 12)
            rows[:, :12] = hdr
            rows[:, 12:] = dataset[:nfull * frag].reshape(nfull, frag)
            if not rest:
                rows[-1, 11] = 0x02  # last fragment
        if rest:
            q = c + nfull * (frag + 12)
            buf[q:q + 12] = np.frombuffer(struct.pack(">BBIIBB", 4, 0, rest + 6, rest + 2, cid, 0x02), np.uint8)
            buf[q + 12:] = dataset[nfull * frag:]
        ends = np.empty(nfull + (1 if rest else 0) + 1, np.int64)
        ends[0] = c
        ends[1:1 + nfull] = c + (frag + 12) * np.arange(1, nfull + 1)
        ends[-1] = total
        return buf, ends

    def run(self) -> dict:
        """Discrete-event loop: the association ready first gets the link for one
        action (a control packet, or a burst of up to ~64 KB of segments)."""
        w = self.writer
        pending = list(self.plans)
        heap = []
        order = 0

        def push(at, state):
            nonlocal order
            heapq.heappush(heap, (at, order, state))
            order += 1

        def advance(state, now):
            """Take the association's next step: its action runs after its delay."""
            try:
                delay, state[1] = next(state[0])
            except StopIteration:
                if pending:
                    advance([self.script(pending.pop(0)), None], now + self.us(100, 3000))
                return
            push(now + delay, state)

        for _ in range(min(self.concurrency, len(pending))):
            advance([self.script(pending.pop(0)), None], self.us(0, 2000))
        while heap:
            at, _, state = heapq.heappop(heap)
            if at > w.clock:
                w.clock = at
            cur = state[1]
            if callable(cur):  # a control packet
                cur()
                w.clock += 1000
                advance(state, w.clock)
                continue
            if isinstance(cur, tuple):
                _, snd, rcv, buf, ends, on_done = cur
                cur = state[1] = Transmission(snd, rcv, buf, ends, on_done)
            if w.send(cur, 2 * self.rr.randrange(8, 33)):
                if cur.on_done:
                    cur.on_done()
                advance(state, w.clock)
            else:
                push(w.clock, state)  # more to send: other associations may go first
        return self.truth


def generate(path, size_bytes: int, seed: int = 0, reorder: float = 0.0, dup: float = 0.0,
             associations: int | None = None, concurrency: int | None = None,
             frames: int = 100, truth_path=None) -> dict:
    """Write a capture of about ``size_bytes`` to ``path``; return (and, with
    ``truth_path``, write) its truth dict.

    ``associations`` defaults to one per ~40 MiB (2 to 500), ``concurrency`` (how
    many are open at once) to min(4, associations); ``frames`` sets the size of
    the multi-frame objects (~0.55 MB per frame).
    """
    if associations is None:
        associations = max(2, min(500, round(size_bytes / (40 << 20))))
    if concurrency is None:
        concurrency = min(4, associations)
    with open(path, "wb", buffering=4 << 20) as fp:
        g = _Generator(fp, size_bytes, seed, reorder, dup, associations, concurrency, frames)
        truth = g.run()
    truth["capture"] = os.path.basename(os.fspath(path))
    if truth_path is not None:
        with open(truth_path, "w") as f:
            json.dump(truth, f, indent=1)
            f.write("\n")
    return truth


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("size", help="approximate capture size: 20M, 500M, 1G, 4G, ...")
    ap.add_argument("out", help="output pcap")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reorder", type=float, default=0.0, metavar="P",
                    help="swap neighbouring data segments with probability P")
    ap.add_argument("--dup", type=float, default=0.0, metavar="P",
                    help="send a second copy of data segments with probability P")
    ap.add_argument("--truth", metavar="OUT.truth.json",
                    help="truth file (default: OUT with .pcap replaced by .truth.json)")
    ap.add_argument("--associations", type=int, metavar="N", help="number of associations")
    ap.add_argument("--concurrency", type=int, metavar="K", help="associations open at once")
    ap.add_argument("--frames", type=int, default=100,
                    help="frames per multi-frame object (default 100: ~55 MB)")
    a = ap.parse_args(argv)
    size = parse_size(a.size)
    truth_path = a.truth or re.sub(r"(\.pcap)?$", ".truth.json", a.out, count=1)
    t = time.perf_counter()
    truth = generate(a.out, size, seed=a.seed, reorder=a.reorder, dup=a.dup,
                     associations=a.associations, concurrency=a.concurrency,
                     frames=a.frames, truth_path=truth_path)
    dt = time.perf_counter() - t
    n = os.path.getsize(a.out)
    rate = f" ({n / 2**20 / dt:.0f} MiB/s)" if n else ""
    print(f"{a.out}: {n / 2**20:.1f} MiB, {len(truth['associations'])} associations, "
          f"{len(truth['received'])} objects, {dt:.1f} s{rate}; truth: {truth_path}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
