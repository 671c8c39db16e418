"""Golden bytes: PS3.8 PDUs and items, PS3.7 command sets, written by hand.

Every constant is preceded by a comment that gives its content field by
field, and its bytes are laid out one field (or one item header) per line,
so a reader can check them against the standard without a decoder:

* PS3.8 9.3: PDU structure (A-ASSOCIATE-RQ 9.3.2, -AC 9.3.3, -RJ 9.3.4,
  P-DATA-TF 9.3.5, A-RELEASE-RQ/RP 9.3.6/9.3.7, A-ABORT 9.3.8);
* PS3.8 Annex D and PS3.7 Annex D.3.3: user information sub-items;
* PS3.7 Annex E: command set elements (implicit VR little endian).

PDUs and items are big endian; command sets are little endian.  Lengths
count the bytes *after* the length field.  ``tests/test_pdu.py`` checks
every length, decodes each constant with fastdicom and with pynetdicom (as
an independent reader), and asserts every field.
"""

from __future__ import annotations

import struct

# UIDs used below, with their lengths (item length fields count these bytes)
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"      # 21
VERIFICATION = "1.2.840.10008.1.1"                 # 17
IMPLICIT_LE = "1.2.840.10008.1.2"                  # 17
EXPLICIT_LE = "1.2.840.10008.1.2.1"                # 19
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"           # 22
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"           # 25
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"           # 25
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"    # 27
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"    # 27
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"      # 29
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"    # 29
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"  # 29
STORAGE_SERVICE_CLASS = "1.2.840.10008.4.2"        # 17
IMPL_UID_SCU = "1.2.3.4.5.6.7.8.9"                 # 17
IMPL_UID_SCP = "1.2.3.4.5.6.7.8.9.1"               # 19, sent NUL-padded to 20


# ============================================================================
# A-ASSOCIATE-RQ, ECHOSCU -> ANY-SCP: five presentation contexts and every
# user information sub-item a requestor may send (0x51-0x58).
#
#   PDU type 0x01, reserved 0x00, PDU length 695 (0x000002b7)
#   protocol version 0x0001 (bit 0: version 1), reserved 0x0000
#   called AE title  "ANY-SCP" padded with spaces to 16 bytes
#   calling AE title "ECHOSCU" padded with spaces to 16 bytes
#   reserved: 32 bytes 0x00
#   Application Context item: type 0x10, reserved, length 21,
#       "1.2.840.10008.3.1.1.1" (DICOM application context name)
#   Presentation Context item: type 0x20, reserved, length 46,
#       context ID 1, reserved x3
#       Abstract Syntax sub-item 0x30, length 17: Verification
#       Transfer Syntax sub-item 0x40, length 17: Implicit VR Little Endian
#   Presentation Context item 0x20, length 77, context ID 3
#       0x30 length 25: CT Image Storage
#       0x40 length 19: Explicit VR Little Endian
#       0x40 length 17: Implicit VR Little Endian
#   Presentation Context item 0x20, length 56, context ID 5
#       0x30 length 27: Study Root Q/R Information Model - FIND
#       0x40 length 17: Implicit VR Little Endian
#   Presentation Context item 0x20, length 56, context ID 7
#       0x30 length 27: Study Root Q/R Information Model - MOVE
#       0x40 length 17: Implicit VR Little Endian
#   Presentation Context item 0x20, length 82, context ID 9
#       0x30 length 25: MR Image Storage
#       0x40 length 22: JPEG Baseline (Process 1)
#       0x40 length 19: Explicit VR Little Endian
#   User Information item: type 0x50, reserved, length 261
#       Maximum Length sub-item 0x51, length 4: 16384 (0x00004000)
#       Implementation Class UID sub-item 0x52, length 17: "1.2.3.4.5.6.7.8.9"
#       Asynchronous Operations Window sub-item 0x53, length 4:
#           maximum number of operations invoked 5, performed 3
#       SCP/SCU Role Selection sub-item 0x54, length 29:
#           UID length 25, CT Image Storage, SCU role 0, SCP role 1
#       Implementation Version Name sub-item 0x55, length 11: "TESTSCU_101"
#       SOP Class Extended Negotiation sub-item 0x56, length 33:
#           UID length 27, Study Root FIND, service class application
#           information (PS3.4 C.5.1.1): relational-queries 1,
#           combined date-time matching 1, fuzzy semantic matching of
#           person names 1, timezone query adjustment 1
#       SOP Class Common Extended Negotiation sub-item 0x57, sub-item
#       version 0, length 114:
#           SOP class UID length 29, Enhanced SR Storage
#           service class UID length 17, Storage Service Class
#           related general SOP class identification length 62:
#               UID length 29, Basic Text SR Storage
#               UID length 29, Comprehensive SR Storage
#       User Identity sub-item 0x58, length 17:
#           user identity type 2 (username and passcode),
#           positive response requested 1,
#           primary field length 5, "alice"
#           secondary field length 6, "s3cret"
# ============================================================================
A_ASSOCIATE_RQ = (
    b"\x01\x00\x00\x00\x02\xb7"
    b"\x00\x01\x00\x00"
    b"ANY-SCP         "
    b"ECHOSCU         "
    + bytes(32)
    + b"\x10\x00\x00\x15" b"1.2.840.10008.3.1.1.1"
    # context 1
    b"\x20\x00\x00\x2e" b"\x01\x00\x00\x00"
    b"\x30\x00\x00\x11" b"1.2.840.10008.1.1"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    # context 3
    b"\x20\x00\x00\x4d" b"\x03\x00\x00\x00"
    b"\x30\x00\x00\x19" b"1.2.840.10008.5.1.4.1.1.2"
    b"\x40\x00\x00\x13" b"1.2.840.10008.1.2.1"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    # context 5
    b"\x20\x00\x00\x38" b"\x05\x00\x00\x00"
    b"\x30\x00\x00\x1b" b"1.2.840.10008.5.1.4.1.2.2.1"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    # context 7
    b"\x20\x00\x00\x38" b"\x07\x00\x00\x00"
    b"\x30\x00\x00\x1b" b"1.2.840.10008.5.1.4.1.2.2.2"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    # context 9
    b"\x20\x00\x00\x52" b"\x09\x00\x00\x00"
    b"\x30\x00\x00\x19" b"1.2.840.10008.5.1.4.1.1.4"
    b"\x40\x00\x00\x16" b"1.2.840.10008.1.2.4.50"
    b"\x40\x00\x00\x13" b"1.2.840.10008.1.2.1"
    # user information
    b"\x50\x00\x01\x05"
    b"\x51\x00\x00\x04" b"\x00\x00\x40\x00"
    b"\x52\x00\x00\x11" b"1.2.3.4.5.6.7.8.9"
    b"\x53\x00\x00\x04" b"\x00\x05" b"\x00\x03"
    b"\x54\x00\x00\x1d" b"\x00\x19" b"1.2.840.10008.5.1.4.1.1.2" b"\x00" b"\x01"
    b"\x55\x00\x00\x0b" b"TESTSCU_101"
    b"\x56\x00\x00\x21" b"\x00\x1b" b"1.2.840.10008.5.1.4.1.2.2.1" b"\x01\x01\x01\x01"
    b"\x57\x00\x00\x72"
    b"\x00\x1d" b"1.2.840.10008.5.1.4.1.1.88.22"
    b"\x00\x11" b"1.2.840.10008.4.2"
    b"\x00\x3e"
    b"\x00\x1d" b"1.2.840.10008.5.1.4.1.1.88.11"
    b"\x00\x1d" b"1.2.840.10008.5.1.4.1.1.88.33"
    b"\x58\x00\x00\x11" b"\x02" b"\x01" b"\x00\x05" b"alice" b"\x00\x06" b"s3cret"
)


# ============================================================================
# A-ASSOCIATE-AC, ANY-SCP answering A_ASSOCIATE_RQ: one context accepted and
# one for each rejection reason of PS3.8 Table 9-18.
#
#   PDU type 0x02, reserved, PDU length 352 (0x00000160)
#   protocol version 0x0001, reserved 0x0000
#   called AE title  "ANY-SCP" (reserved: echoes the RQ, not to be tested)
#   calling AE title "ECHOSCU" (idem)
#   reserved: 32 bytes 0x00
#   Application Context item 0x10, length 21: DICOM application context
#   Presentation Context item (AC): type 0x21, reserved, length 25,
#       context ID 1, reserved, result 0 (acceptance), reserved
#       Transfer Syntax sub-item 0x40, length 17: Implicit VR Little Endian
#   0x21, length 25, context ID 3, result 1 (user-rejection), 0x40 implicit
#       (not significant when the result is not acceptance)
#   0x21, length 25, context ID 5, result 2 (no-reason, provider rejection)
#   0x21, length 25, context ID 7, result 3 (abstract-syntax-not-supported)
#   0x21, length 4, context ID 9, result 4 (transfer-syntaxes-not-supported),
#       no transfer syntax sub-item
#   User Information item 0x50, length 131
#       0x51, length 4: maximum length 32768 (0x00008000)
#       0x52, length 20: "1.2.3.4.5.6.7.8.9.1" padded with one NUL byte
#       0x53, length 4: invoked 1, performed 1
#       0x54, length 29: CT Image Storage, SCU role 0, SCP role 1 (accepted)
#       0x55, length 11: "TESTSCP_102"
#       0x56, length 33: Study Root FIND, application information
#           relational 1, date-time 0, fuzzy 1, timezone 0
#       User Identity server response 0x59, length 2:
#           server response length 0 (the answer to a type 1/2 identity)
# ============================================================================
A_ASSOCIATE_AC = (
    b"\x02\x00\x00\x00\x01\x60"
    b"\x00\x01\x00\x00"
    b"ANY-SCP         "
    b"ECHOSCU         "
    + bytes(32)
    + b"\x10\x00\x00\x15" b"1.2.840.10008.3.1.1.1"
    b"\x21\x00\x00\x19" b"\x01\x00\x00\x00" b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    b"\x21\x00\x00\x19" b"\x03\x00\x01\x00" b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    b"\x21\x00\x00\x19" b"\x05\x00\x02\x00" b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    b"\x21\x00\x00\x19" b"\x07\x00\x03\x00" b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    b"\x21\x00\x00\x04" b"\x09\x00\x04\x00"
    b"\x50\x00\x00\x83"
    b"\x51\x00\x00\x04" b"\x00\x00\x80\x00"
    b"\x52\x00\x00\x14" b"1.2.3.4.5.6.7.8.9.1\x00"
    b"\x53\x00\x00\x04" b"\x00\x01" b"\x00\x01"
    b"\x54\x00\x00\x1d" b"\x00\x19" b"1.2.840.10008.5.1.4.1.1.2" b"\x00" b"\x01"
    b"\x55\x00\x00\x0b" b"TESTSCP_102"
    b"\x56\x00\x00\x21" b"\x00\x1b" b"1.2.840.10008.5.1.4.1.2.2.1" b"\x01\x00\x01\x00"
    b"\x59\x00\x00\x02" b"\x00\x00"
)


# ============================================================================
# User Identity sub-items (PS3.7 D.3.3.7), one per user identity type.
#
#   type 0x58, reserved, item length
#   user identity type (1 byte), positive response requested (1 byte)
#   primary field length (2 bytes), primary field
#   secondary field length (2 bytes), secondary field (type 2 only; else 0)
# ============================================================================
# type 1 (username), no positive response requested; length 11:
#   primary "alice" (5), secondary length 0
USER_IDENTITY_USERNAME = (
    b"\x58\x00\x00\x0b" b"\x01" b"\x00" b"\x00\x05" b"alice" b"\x00\x00"
)
# type 2 (username and passcode), response requested; length 17:
#   primary "alice" (5), secondary "s3cret" (6)
USER_IDENTITY_PASSCODE = (
    b"\x58\x00\x00\x11" b"\x02" b"\x01" b"\x00\x05" b"alice" b"\x00\x06" b"s3cret"
)
# type 3 (Kerberos service ticket), response requested; length 14:
#   primary: 8 opaque ticket bytes 60 06 a0 03 02 01 05 00, secondary length 0
USER_IDENTITY_KERBEROS = (
    b"\x58\x00\x00\x0e" b"\x03" b"\x01" b"\x00\x08" b"\x60\x06\xa0\x03\x02\x01\x05\x00" b"\x00\x00"
)
# type 4 (SAML assertion), no response requested; length 31:
#   primary '<saml:Assertion ID="a1"/>' (25), secondary length 0
USER_IDENTITY_SAML = (
    b"\x58\x00\x00\x1f" b"\x04" b"\x00" b"\x00\x19" b'<saml:Assertion ID="a1"/>' b"\x00\x00"
)
# type 5 (JSON Web Token, CP-1650), response requested; length 47:
#   primary "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9." (41), secondary length 0
USER_IDENTITY_JWT = (
    b"\x58\x00\x00\x2f" b"\x05" b"\x01" b"\x00\x29"
    b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9." b"\x00\x00"
)
# User Identity server response (AC, 0x59), length 10:
#   server response length 8, a Kerberos server ticket (8 opaque bytes)
USER_IDENTITY_AC_KERBEROS = (
    b"\x59\x00\x00\x0a" b"\x00\x08" b"\x6f\x06\xa0\x03\x02\x01\x05\x00"
)


def associate_rq_with(*user_items: bytes, called=b"ANY-SCP         ",
                      calling=b"ECHOSCU         ", extra_items: bytes = b"",
                      contexts: bytes | None = None) -> bytes:
    """A minimal A-ASSOCIATE-RQ around golden sub-items: application context,
    one presentation context (1: Verification, Implicit VR LE) unless
    ``contexts`` is given, ``extra_items`` after it, and a user information
    item holding Maximum Length 16384 then ``user_items``.  Lengths computed."""
    if contexts is None:
        contexts = (b"\x20\x00\x00\x2e" b"\x01\x00\x00\x00"
                    b"\x30\x00\x00\x11" b"1.2.840.10008.1.1"
                    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2")
    ui = b"\x51\x00\x00\x04\x00\x00\x40\x00" + b"".join(user_items)
    body = (b"\x00\x01\x00\x00" + called + calling + bytes(32)
            + b"\x10\x00\x00\x15" b"1.2.840.10008.3.1.1.1"
            + contexts + extra_items + struct.pack(">BBH", 0x50, 0, len(ui)) + ui)
    return struct.pack(">BBI", 1, 0, len(body)) + body


def associate_ac_with(*user_items: bytes, contexts: bytes | None = None) -> bytes:
    """A minimal A-ASSOCIATE-AC (context 1 accepted, Implicit VR LE unless
    ``contexts`` is given) around golden sub-items."""
    if contexts is None:
        contexts = b"\x21\x00\x00\x19" b"\x01\x00\x00\x00" b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    ui = b"\x51\x00\x00\x04\x00\x00\x40\x00" + b"".join(user_items)
    body = (b"\x00\x01\x00\x00" b"ANY-SCP         " b"ECHOSCU         " + bytes(32)
            + b"\x10\x00\x00\x15" b"1.2.840.10008.3.1.1.1"
            + contexts + struct.pack(">BBH", 0x50, 0, len(ui)) + ui)
    return struct.pack(">BBI", 2, 0, len(body)) + body


# ============================================================================
# A-ASSOCIATE-RJ (PS3.8 9.3.4, Table 9-21): every defined combination.
#
#   PDU type 0x03, reserved, PDU length 4
#   reserved 0x00, result, source, reason/diag.
#
#   result 1 rejected-permanent, 2 rejected-transient
#   source 1 DICOM UL service-user:
#       reason 1 no-reason-given, 2 application-context-name-not-supported,
#       3 calling-AE-title-not-recognized, 7 called-AE-title-not-recognized
#   source 2 DICOM UL service-provider (ACSE related function):
#       reason 1 no-reason-given, 2 protocol-version-not-supported
#   source 3 DICOM UL service-provider (Presentation related function):
#       reason 1 temporary-congestion, 2 local-limit-exceeded
# ============================================================================
A_ASSOCIATE_RJ = {
    # (result, source, reason): PDU
    (1, 1, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x01\x01",
    (1, 1, 2): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x01\x02",
    (1, 1, 3): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x01\x03",
    (1, 1, 7): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x01\x07",
    (1, 2, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x02\x01",
    (1, 2, 2): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x02\x02",
    (1, 3, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x03\x01",
    (1, 3, 2): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x03\x02",
    (2, 1, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x01\x01",
    (2, 1, 2): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x01\x02",
    (2, 1, 3): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x01\x03",
    (2, 1, 7): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x01\x07",
    (2, 2, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x02\x01",
    (2, 2, 2): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x02\x02",
    (2, 3, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x03\x01",
    (2, 3, 2): b"\x03\x00\x00\x00\x00\x04" b"\x00\x02\x03\x02",
}
# reserved values: source 1 reason 4 (reserved), source 3 reason 0, result 3
A_ASSOCIATE_RJ_RESERVED = {
    (1, 1, 4): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x01\x04",
    (1, 3, 0): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x03\x00",
    (3, 1, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x03\x01\x01",
    (1, 4, 1): b"\x03\x00\x00\x00\x00\x04" b"\x00\x01\x04\x01",
}


# ============================================================================
# A-RELEASE-RQ / A-RELEASE-RP (PS3.8 9.3.6, 9.3.7)
#   PDU type 0x05 / 0x06, reserved, PDU length 4, reserved 4 bytes 0x00
# ============================================================================
A_RELEASE_RQ = b"\x05\x00\x00\x00\x00\x04" b"\x00\x00\x00\x00"
A_RELEASE_RP = b"\x06\x00\x00\x00\x00\x04" b"\x00\x00\x00\x00"


# ============================================================================
# A-ABORT (PS3.8 9.3.8, Table 9-26)
#   PDU type 0x07, reserved, PDU length 4
#   reserved 0x00, reserved 0x00, source, reason/diag.
#
#   source 0 DICOM UL service-user (initiated abort): reason not significant
#   source 1 reserved
#   source 2 DICOM UL service-provider (initiated abort), reason:
#       0 reason-not-specified, 1 unrecognized-PDU, 2 unexpected-PDU,
#       4 unrecognized-PDU parameter, 5 unexpected-PDU parameter,
#       6 invalid-PDU-parameter value (3 is reserved)
# ============================================================================
A_ABORT = {
    # (source, reason): PDU
    (0, 0): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x00\x00",
    (1, 0): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x01\x00",
    (2, 0): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x02\x00",
    (2, 1): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x02\x01",
    (2, 2): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x02\x02",
    (2, 3): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x02\x03",
    (2, 4): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x02\x04",
    (2, 5): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x02\x05",
    (2, 6): b"\x07\x00\x00\x00\x00\x04" b"\x00\x00\x02\x06",
}


# ============================================================================
# Unknown items: kept raw, reported as dicom.assoc.item.unknown.
#
# A-ASSOCIATE-RQ, PDU length 176 (0x000000b0), ECHOSCU -> ANY-SCP:
#   Application Context item 0x10, length 21
#   Presentation Context item 0x20, length 54, context ID 1
#       0x30 length 17 Verification; 0x40 length 17 Implicit VR LE
#       unknown sub-item 0x41, length 4: de ad be ef
#   unknown top-level item 0x60, length 3: "abc"
#   User Information item 0x50, length 14
#       0x51 length 4: 16384
#       unknown sub-item 0x5a, length 2: 01 02
# ============================================================================
A_ASSOCIATE_RQ_UNKNOWN_ITEMS = (
    b"\x01\x00\x00\x00\x00\xb0"
    b"\x00\x01\x00\x00"
    b"ANY-SCP         "
    b"ECHOSCU         "
    + bytes(32)
    + b"\x10\x00\x00\x15" b"1.2.840.10008.3.1.1.1"
    b"\x20\x00\x00\x36" b"\x01\x00\x00\x00"
    b"\x30\x00\x00\x11" b"1.2.840.10008.1.1"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
    b"\x41\x00\x00\x04" b"\xde\xad\xbe\xef"
    b"\x60\x00\x00\x03" b"abc"
    b"\x50\x00\x00\x0e"
    b"\x51\x00\x00\x04" b"\x00\x00\x40\x00"
    b"\x5a\x00\x00\x02" b"\x01\x02"
)


# ============================================================================
# Malformed presentation context items, for associate_rq_with(contexts=...)
# and associate_ac_with(contexts=...).
# ============================================================================
# 0x20, length 25, context ID 1: only a transfer syntax (no abstract syntax)
PCTX_NO_ABSTRACT = (
    b"\x20\x00\x00\x19" b"\x01\x00\x00\x00"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
)
# 0x20, length 75, context ID 1: abstract syntaxes Verification and CT Image
# Storage, one transfer syntax
PCTX_TWO_ABSTRACT = (
    b"\x20\x00\x00\x4b" b"\x01\x00\x00\x00"
    b"\x30\x00\x00\x11" b"1.2.840.10008.1.1"
    b"\x30\x00\x00\x19" b"1.2.840.10008.5.1.4.1.1.2"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
)
# 0x20, length 25, context ID 1: abstract syntax Verification, no transfer syntax
PCTX_NO_TRANSFER = (
    b"\x20\x00\x00\x19" b"\x01\x00\x00\x00"
    b"\x30\x00\x00\x11" b"1.2.840.10008.1.1"
)
# 0x20, length 29, context ID 1: an abstract syntax sub-item of length 0
PCTX_EMPTY_ABSTRACT = (
    b"\x20\x00\x00\x1d" b"\x01\x00\x00\x00"
    b"\x30\x00\x00\x00"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
)
# AC 0x21, length 48, context ID 1, result 0, two transfer syntaxes:
# Explicit VR LE then Implicit VR LE (only one is allowed in an AC)
PCTX_AC_TWO_TRANSFER = (
    b"\x21\x00\x00\x30" b"\x01\x00\x00\x00"
    b"\x40\x00\x00\x13" b"1.2.840.10008.1.2.1"
    b"\x40\x00\x00\x11" b"1.2.840.10008.1.2"
)
# AC 0x21, length 4, context ID 1, result 0 (acceptance) but no transfer syntax
PCTX_AC_ACCEPTED_NO_TRANSFER = b"\x21\x00\x00\x04" b"\x01\x00\x00\x00"
# 0x20 whose length (0x0100 = 256) runs past the end of the PDU
PCTX_OVERRUN = (
    b"\x20\x00\x01\x00" b"\x01\x00\x00\x00"
    b"\x30\x00\x00\x11" b"1.2.840.10008.1.1"
)

# A-ASSOCIATE-RQ cut inside its fixed part: PDU length 40, so the body ends in
# the calling AE title (the variable items never start)
A_ASSOCIATE_RQ_TRUNCATED = (
    b"\x01\x00\x00\x00\x00\x28"
    b"\x00\x01\x00\x00"
    b"ANY-SCP         "
    b"ECHOSCU         "
    b"\x00\x00\x00\x00"
)
# A-ASSOCIATE-RQ, PDU length 72: fixed part, then a zero-length Application
# Context item (0x10, length 0)
A_ASSOCIATE_RQ_ZERO_LENGTH_ITEM = (
    b"\x01\x00\x00\x00\x00\x48"
    b"\x00\x01\x00\x00"
    b"ANY-SCP         "
    b"ECHOSCU         "
    + bytes(32)
    + b"\x10\x00\x00\x00"
)


# ============================================================================
# P-DATA-TF (PS3.8 9.3.5, Annex E): two PDVs in one PDU, on context 1
#
#   PDU type 0x04, reserved, PDU length 90 (0x0000005a)
#   PDV item: item length 70 (0x00000046), context ID 1,
#       message control header 0x03 (command, last fragment),
#       C_ECHO_RQ below (68 bytes)
#   PDV item: item length 12, context ID 1,
#       message control header 0x00 (data set, not the last fragment),
#       10 data bytes "0123456789"
# ============================================================================


# ============================================================================
# Command sets (PS3.7 9.3 and 10.3, Annex E), implicit VR little endian:
#   group (2) element (2) value length (4) value; group 0000, elements in
#   ascending order, (0000,0000) Command Group Length first (UL, 4 bytes) =
#   bytes of the elements that follow it.  UIDs are padded to even length
#   with NUL, AE/LO/SH text with a space.
# ============================================================================
# C-ECHO-RQ (9.3.5.1): 68 bytes
#   (0000,0000) UL 4: 56
#   (0000,0002) UI 18: Verification "1.2.840.10008.1.1" + NUL
#   (0000,0100) US 2: 0x0030 C-ECHO-RQ
#   (0000,0110) US 2: Message ID 7
#   (0000,0800) US 2: 0x0101 no data set
C_ECHO_RQ = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x38\x00\x00\x00"
    b"\x00\x00\x02\x00" b"\x12\x00\x00\x00" b"1.2.840.10008.1.1\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\x30\x00"
    b"\x00\x00\x10\x01" b"\x02\x00\x00\x00" b"\x07\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x01\x01"
)
P_DATA_TF = (
    b"\x04\x00\x00\x00\x00\x5a"
    b"\x00\x00\x00\x46" b"\x01" b"\x03" + C_ECHO_RQ
    + b"\x00\x00\x00\x0c" b"\x01" b"\x00" b"0123456789"
)

# C-ECHO-RSP (9.3.5.2): 78 bytes
#   (0000,0000) UL 4: 66
#   (0000,0002) UI 18: Verification + NUL
#   (0000,0100) US 2: 0x8030 C-ECHO-RSP
#   (0000,0120) US 2: Message ID Being Responded To 7
#   (0000,0800) US 2: 0x0101
#   (0000,0900) US 2: Status 0x0000
C_ECHO_RSP = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x42\x00\x00\x00"
    b"\x00\x00\x02\x00" b"\x12\x00\x00\x00" b"1.2.840.10008.1.1\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\x30\x80"
    b"\x00\x00\x20\x01" b"\x02\x00\x00\x00" b"\x07\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x01\x01"
    b"\x00\x00\x00\x09" b"\x02\x00\x00\x00" b"\x00\x00"
)

# C-STORE-RQ (9.3.1.1), a C-MOVE sub-operation: 132 bytes
#   (0000,0000) UL 4: 120
#   (0000,0002) UI 26: CT Image Storage "1.2.840.10008.5.1.4.1.1.2" + NUL
#   (0000,0100) US 2: 0x0001 C-STORE-RQ
#   (0000,0110) US 2: Message ID 3
#   (0000,0700) US 2: Priority 0x0002 LOW
#   (0000,0800) US 2: 0x0000 data set present
#   (0000,1000) UI 10: Affected SOP Instance UID "1.2.3.4.5" + NUL
#   (0000,1030) AE 10: Move Originator AE Title "MOVESCU" + 3 spaces
#   (0000,1031) US 2: Move Originator Message ID 99
C_STORE_RQ = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x78\x00\x00\x00"
    b"\x00\x00\x02\x00" b"\x1a\x00\x00\x00" b"1.2.840.10008.5.1.4.1.1.2\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\x01\x00"
    b"\x00\x00\x10\x01" b"\x02\x00\x00\x00" b"\x03\x00"
    b"\x00\x00\x00\x07" b"\x02\x00\x00\x00" b"\x02\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x00\x00"
    b"\x00\x00\x00\x10" b"\x0a\x00\x00\x00" b"1.2.3.4.5\x00"
    b"\x00\x00\x30\x10" b"\x0a\x00\x00\x00" b"MOVESCU   "
    b"\x00\x00\x31\x10" b"\x02\x00\x00\x00" b"\x63\x00"
)

# C-STORE-RSP (9.3.1.2) with a warning and an error comment: 120 bytes
#   (0000,0000) UL 4: 108
#   (0000,0002) UI 26: CT Image Storage + NUL
#   (0000,0100) US 2: 0x8001 C-STORE-RSP
#   (0000,0120) US 2: Message ID Being Responded To 3
#   (0000,0800) US 2: 0x0101
#   (0000,0900) US 2: Status 0xB000 (Coercion of Data Elements)
#   (0000,0902) LO 8: Error Comment "coerced" + space
#   (0000,1000) UI 10: "1.2.3.4.5" + NUL
C_STORE_RSP_WARNING = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x6c\x00\x00\x00"
    b"\x00\x00\x02\x00" b"\x1a\x00\x00\x00" b"1.2.840.10008.5.1.4.1.1.2\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\x01\x80"
    b"\x00\x00\x20\x01" b"\x02\x00\x00\x00" b"\x03\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x01\x01"
    b"\x00\x00\x00\x09" b"\x02\x00\x00\x00" b"\x00\xb0"
    b"\x00\x00\x02\x09" b"\x08\x00\x00\x00" b"coerced "
    b"\x00\x00\x00\x10" b"\x0a\x00\x00\x00" b"1.2.3.4.5\x00"
)

# C-MOVE-RQ (9.3.4.1): 104 bytes
#   (0000,0000) UL 4: 92
#   (0000,0002) UI 28: Study Root MOVE "1.2.840.10008.5.1.4.1.2.2.2" + NUL
#   (0000,0100) US 2: 0x0021 C-MOVE-RQ
#   (0000,0110) US 2: Message ID 11
#   (0000,0600) AE 8: Move Destination "MOVEDEST"
#   (0000,0700) US 2: Priority 0x0001 HIGH
#   (0000,0800) US 2: 0x0000 identifier present
C_MOVE_RQ = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x5c\x00\x00\x00"
    b"\x00\x00\x02\x00" b"\x1c\x00\x00\x00" b"1.2.840.10008.5.1.4.1.2.2.2\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\x21\x00"
    b"\x00\x00\x10\x01" b"\x02\x00\x00\x00" b"\x0b\x00"
    b"\x00\x00\x00\x06" b"\x08\x00\x00\x00" b"MOVEDEST"
    b"\x00\x00\x00\x07" b"\x02\x00\x00\x00" b"\x01\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x00\x00"
)

# C-MOVE-RSP (9.3.4.2), pending, with sub-operation counters: 128 bytes
#   (0000,0000) UL 4: 116
#   (0000,0002) UI 28: Study Root MOVE + NUL
#   (0000,0100) US 2: 0x8021 C-MOVE-RSP
#   (0000,0120) US 2: 11
#   (0000,0800) US 2: 0x0101
#   (0000,0900) US 2: 0xFF00 Pending
#   (0000,1020) US 2: Number of Remaining Sub-operations 4
#   (0000,1021) US 2: Number of Completed Sub-operations 2
#   (0000,1022) US 2: Number of Failed Sub-operations 1
#   (0000,1023) US 2: Number of Warning Sub-operations 0
C_MOVE_RSP_PENDING = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x74\x00\x00\x00"
    b"\x00\x00\x02\x00" b"\x1c\x00\x00\x00" b"1.2.840.10008.5.1.4.1.2.2.2\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\x21\x80"
    b"\x00\x00\x20\x01" b"\x02\x00\x00\x00" b"\x0b\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x01\x01"
    b"\x00\x00\x00\x09" b"\x02\x00\x00\x00" b"\x00\xff"
    b"\x00\x00\x20\x10" b"\x02\x00\x00\x00" b"\x04\x00"
    b"\x00\x00\x21\x10" b"\x02\x00\x00\x00" b"\x02\x00"
    b"\x00\x00\x22\x10" b"\x02\x00\x00\x00" b"\x01\x00"
    b"\x00\x00\x23\x10" b"\x02\x00\x00\x00" b"\x00\x00"
)

# C-CANCEL-RQ (9.3.2.3): 42 bytes
#   (0000,0000) UL 4: 30
#   (0000,0100) US 2: 0x0FFF C-CANCEL-RQ
#   (0000,0120) US 2: Message ID Being Responded To 11
#   (0000,0800) US 2: 0x0101
C_CANCEL_RQ = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x1e\x00\x00\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\xff\x0f"
    b"\x00\x00\x20\x01" b"\x02\x00\x00\x00" b"\x0b\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x01\x01"
)

# N-SET-RSP (10.3.3.2) with a failure: 122 bytes
#   (0000,0000) UL 4: 110
#   (0000,0002) UI 24: MPPS "1.2.840.10008.3.1.2.3.3" + NUL
#   (0000,0100) US 2: 0x8120 N-SET-RSP
#   (0000,0120) US 2: 5
#   (0000,0800) US 2: 0x0101
#   (0000,0900) US 2: Status 0x0106 Invalid attribute value
#   (0000,0901) AT 8: Offending Element (0008,0020) and (0010,0010)
#   (0000,0903) US 2: Error ID 0x0042
#   (0000,1000) UI 4: Affected SOP Instance UID "1.23" (even: no padding)
N_SET_RSP_FAILURE = (
    b"\x00\x00\x00\x00" b"\x04\x00\x00\x00" b"\x6e\x00\x00\x00"
    b"\x00\x00\x02\x00" b"\x18\x00\x00\x00" b"1.2.840.10008.3.1.2.3.3\x00"
    b"\x00\x00\x00\x01" b"\x02\x00\x00\x00" b"\x20\x81"
    b"\x00\x00\x20\x01" b"\x02\x00\x00\x00" b"\x05\x00"
    b"\x00\x00\x00\x08" b"\x02\x00\x00\x00" b"\x01\x01"
    b"\x00\x00\x00\x09" b"\x02\x00\x00\x00" b"\x06\x01"
    b"\x00\x00\x01\x09" b"\x08\x00\x00\x00" b"\x08\x00\x20\x00" b"\x10\x00\x10\x00"
    b"\x00\x00\x03\x09" b"\x02\x00\x00\x00" b"\x42\x00"
    b"\x00\x00\x00\x10" b"\x04\x00\x00\x00" b"1.23"
)
