"""DIMSE status codes (0000,0900): meaning and class, per service.

PS3.7 Annex C gives the general statuses and the classes; the service
annexes of PS3.4 give the service-specific meanings (C-STORE B.2.3, C-FIND
C.4.1.1.4, C-MOVE C.4.2.1.5, C-GET C.4.3.1.4, and others).  A code's meaning
depends on the service: 0xB000 is "Coercion of Data Elements" for C-STORE
but "Sub-operations Complete - One or more Failures" for C-MOVE and C-GET.
"""

from __future__ import annotations

SUCCESS = "success"
PENDING = "pending"
CANCEL = "cancel"
WARNING = "warning"
FAILURE = "failure"

# PS3.7 C.4 and C.5 (general) plus frequently seen service-class codes
GENERAL = {
    0x0000: "Success",
    0x0001: "Requested optional Attributes are not supported",
    0x0105: "No such attribute",
    0x0106: "Invalid attribute value",
    0x0107: "Attribute list error",
    0x0110: "Processing failure",
    0x0111: "Duplicate SOP instance",
    0x0112: "No such object instance",
    0x0113: "No such event type",
    0x0114: "No such argument",
    0x0115: "Invalid argument value",
    0x0116: "Attribute value out of range",
    0x0117: "Invalid object instance",
    0x0118: "No such SOP class",
    0x0119: "Class-instance conflict",
    0x0120: "Missing attribute",
    0x0121: "Missing attribute value",
    0x0122: "Refused: SOP class not supported",
    0x0123: "No such action type",
    0x0124: "Refused: not authorized",
    0x0210: "Duplicate invocation",
    0x0211: "Unrecognized operation",
    0x0212: "Mistyped argument",
    0x0213: "Resource limitation",
    0xA501: "Refused: General Purpose Scheduled Procedure Step may no longer be updated",
    0xA502: "Refused: wrong Transaction UID",
    0xA503: "Refused: General Purpose Scheduled Procedure Step already IN PROGRESS",
    0xA504: "Refused: related General Purpose Scheduled Procedure Step not IN PROGRESS",
    0xA505: "Refused: Referenced Transaction UID does not match the N-ACTION request",
    0xA510: "Refused: an Initiate Media Creation action was already received",
    0xA700: "Refused: Out of Resources",
    0xB006: "Elements Discarded",
    0xB007: "Data Set does not match SOP Class",
    0xB101: "Synchronization Frame of Reference UID does not match",
    0xB102: "Study Instance UID coercion; event logged under a different Study Instance UID",
    0xB104: "IDs inconsistent in matching a current study; event logged",
    0xB605: "Requested Min Density or Max Density outside of printer's operating range",
    0xC000: "Error: Cannot understand",
    0xC100: "More than one match found",
    0xC101: "Procedural Logging not available for specified Study Instance UID",
    0xC102: "Event Information does not match Template",
    0xC103: "Cannot match event to a current study",
    0xC104: "IDs inconsistent in matching a current study; event not logged",
    0xC200: "Unable to support requested template",
    0xC201: "Media creation request already completed",
    0xC202: "Media creation request already in progress and cannot be interrupted",
    0xC203: "Cancellation denied for unspecified reason",
    0xFE00: "Cancel",
    0xFF00: "Pending",
    0xFF01: "Pending: one or more Optional Keys were not supported",
}

_STORE = {
    0xB000: "Coercion of Data Elements",
    0xB006: "Elements Discarded",
    0xB007: "Data Set does not match SOP Class",
}
_FIND = {
    0xA900: "Identifier does not match SOP Class",
    0xB001: "Matching reached response limit, subsequent request may return additional matches",
    0xFE00: "Matching terminated due to Cancel request",
    0xFF00: "Pending: matches are continuing, current match supplied",
    0xFF01: "Pending: matches are continuing, one or more Optional Keys not supported",
}
_RETRIEVE = {
    0x0000: "Sub-operations Complete - No Failures",
    0xA701: "Refused: Out of Resources - Unable to calculate number of matches",
    0xA702: "Refused: Out of Resources - Unable to perform sub-operations",
    0xA900: "Identifier does not match SOP Class",
    # frame-level and composite instance root retrieve (PS3.4 Y.4.2.1.4, Y.4.3.1.4)
    0xAA00: "None of the frames requested were found in the SOP Instance",
    0xAA01: "Unable to create new object for this SOP Class",
    0xAA02: "Unable to extract frames",
    0xAA03: "Time-based request received for a non-time-based original SOP Instance",
    0xAA04: "Invalid Request",
    0xB000: "Sub-operations Complete - One or more Failures or Warnings",
    0xFE00: "Sub-operations terminated due to Cancel Indication",
    0xFF00: "Pending: sub-operations are continuing",
}
_MOVE = {**_RETRIEVE, 0xA801: "Refused: Move Destination unknown"}

SERVICE_TABLES = {"C-STORE": _STORE, "C-FIND": _FIND, "C-GET": _RETRIEVE, "C-MOVE": _MOVE}

# ranges a service annex defines as a family (PS3.4): (mask, value) -> text
_RANGES = {
    "C-STORE": [(0xFF00, 0xA700, "Refused: Out of Resources"),
                (0xFF00, 0xA900, "Error: Data Set does not match SOP Class"),
                (0xF000, 0xC000, "Error: Cannot understand")],
    "C-FIND": [(0xFF00, 0xA700, "Refused: Out of Resources"),
               (0xF000, 0xC000, "Failed: Unable to process")],
    "C-GET": [(0xF000, 0xC000, "Failed: Unable to process")],
    "C-MOVE": [(0xF000, 0xC000, "Failed: Unable to process")],
}


def status_class(status: int) -> str:
    """PS3.7 C.1-C.5 class of a status code."""
    if status == 0x0000:
        return SUCCESS
    if status in (0xFF00, 0xFF01):
        return PENDING
    if status == 0xFE00:
        return CANCEL
    if status in (0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF:
        return WARNING
    return FAILURE


def status_text(service: str | None, status: int) -> str:
    """What a status code means for ``service`` ("C-STORE", "C-MOVE", ...)."""
    table = SERVICE_TABLES.get(service or "")
    if table and status in table:
        return table[status]
    for mask, value, text in _RANGES.get(service or "", ()):
        if status & mask == value:
            return text
    if status in GENERAL:
        return GENERAL[status]
    if status & 0xFF00 == 0xA700:
        return "Refused: Out of Resources"
    if status & 0xFF00 == 0xA900:
        return "Error: Data Set does not match SOP Class"
    if status & 0xF000 == 0xC000:
        return "Error: Cannot understand/Unable to process"
    return {WARNING: "Warning", FAILURE: "Failure"}.get(status_class(status), "Unknown")
