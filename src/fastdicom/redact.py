"""Redaction of patient-identifying values (``--redact``), after the PS3.15
Annex E Basic Application Level Confidentiality Profile.

Every output path (summary, pdus, show, expert, export manifest, report)
passes wire values through here when redaction is on, so a report can be
shared with a vendor.  UIDs and AE titles are kept: they identify equipment
and objects, which is what troubleshooting needs; the profile's UID
replacement would break correlation between outputs.
"""

from __future__ import annotations

REDACTED = "<redacted>"

# PS3.15 Table E.1-1 attributes whose basic-profile action removes or replaces
# a value that identifies the patient or the people around the study.
PHI_TAGS = frozenset({
    0x00080050,  # Accession Number
    0x00080080,  # Institution Name
    0x00080081,  # Institution Address
    0x00080090,  # Referring Physician's Name
    0x00080092,  # Referring Physician's Address
    0x00080094,  # Referring Physician's Telephone Numbers
    0x00081040,  # Institutional Department Name
    0x00081048,  # Physician(s) of Record
    0x00081050,  # Performing Physician's Name
    0x00081060,  # Name of Physician(s) Reading Study
    0x00081070,  # Operators' Name
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x00100021,  # Issuer of Patient ID
    0x00100030,  # Patient's Birth Date
    0x00100032,  # Patient's Birth Time
    0x00100040,  # Patient's Sex
    0x00101000,  # Other Patient IDs
    0x00101001,  # Other Patient Names
    0x00101005,  # Patient's Birth Name
    0x00101010,  # Patient's Age
    0x00101020,  # Patient's Size
    0x00101030,  # Patient's Weight
    0x00101040,  # Patient's Address
    0x00101060,  # Patient's Mother's Birth Name
    0x00101090,  # Medical Record Locator
    0x00102154,  # Patient's Telephone Numbers
    0x00102160,  # Ethnic Group
    0x00102180,  # Occupation
    0x001021B0,  # Additional Patient History
    0x00104000,  # Patient Comments
    0x00200010,  # Study ID
    0x00321032,  # Requesting Physician
    0x00400006,  # Scheduled Performing Physician's Name
    0x00401001,  # Requested Procedure ID
    0x00080020,  # Study Date
    0x00080030,  # Study Time
    0x00080021,  # Series Date
    0x00080022,  # Acquisition Date
    0x00080023,  # Content Date
    0x00080031,  # Series Time
    0x00080032,  # Acquisition Time
    0x00080033,  # Content Time
})

# summary keys holding such values
PHI_KEYS = frozenset({
    "patient_name", "patient_id", "patient_birth_date", "accession_number", "study_date",
    "primary_field", "referring_physician",
})


def is_phi(tag: int) -> bool:
    # private groups may carry anything: treat their values as identifying
    return tag in PHI_TAGS or bool((tag >> 16) & 1)


def redact_value(tag: int, value):
    return REDACTED if is_phi(tag) and value not in (None, "") else value


def redact_summary_fields(d: dict) -> dict:
    return {k: (REDACTED if k in PHI_KEYS and v not in (None, "") else v) for k, v in d.items()}


def redact_document(doc):
    """Walk a JSON-like document and blank every PHI key."""
    if isinstance(doc, dict):
        return {k: (REDACTED if k in PHI_KEYS and v not in (None, "") else redact_document(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [redact_document(v) for v in doc]
    return doc
