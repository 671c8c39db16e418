"""``fastdicom show``: a tree per PDU with decoded command and data set elements."""

import json

from fastdicom.cli import main
from helpers import REAL

SS = str(REAL / "store_syntaxes.pcap")


def show(capsys, *args):
    code = main(["show", SS, *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_association_request_tree(capsys):
    out = show(capsys, "-Y", "dicom.pdu.type == 1")
    assert out.startswith("Frame 4: 127.0.0.1:36377 → 127.0.0.1:11112, A-ASSOCIATE-RQ (0x01), length 956")
    assert "    Calling AE Title: 'CT01            '" in out
    assert "    Presentation Context: ID 7, Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7)" in out
    assert "        Transfer Syntax: Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99)" in out
    assert "        Maximum Length: 16382" in out


def test_command_and_data_set_elements(capsys):
    out = show(capsys, "-Y", "frame.number <= 41 and dicom.pdu.type == 4")
    assert "(0000,0100)        2 Command Field [US] 1 (C-STORE-RQ)" in out
    assert "(0000,0700)        2 Priority [US] 2 (LOW)" in out
    assert "CT Image Storage: 38870 bytes" in out
    assert "(0010,0010)       22 Patient's Name [PN] CompressedSamples^CT1" in out
    assert "(0009,1001)       14 Full fidelity [GEMS_IDEN_01] [LO] GE_GENESIS_FF" in out
    # a sequence as a subtree, items nested under it
    assert "            (0010,1002)       72 Other Patient IDs Sequence [SQ] <2 items>\n" \
           "                Item #1 (28 bytes)\n" \
           "                    (0010,0020)        8 Patient ID [LO] ABCD1234" in out


def test_flat_sequences_tag_subtrees_and_cut_values(capsys):
    out = show(capsys, "-Y", "frame.number <= 41 and dicom.pdu.type == 4", "--no-sequence-subtrees",
               "--tag-subtrees", "--max-value-length", "20")
    assert "Item #1 (28 bytes)" in out
    assert "                Tag: (0010,0010)\n                VR: PN\n                Length: 22" in out
    assert "1.2.840.10008.5.1.4…" in out


def test_deflated_and_encapsulated_data_sets(capsys):
    out = show(capsys, "-Y", "dicom.pdv.ctx == 7 or dicom.pdv.ctx == 11")
    assert "Secondary Capture Image Storage: 4296 bytes" in out  # deflated: inflated for display
    assert "(0008,0016)" in out
    assert "Pixel Data [OB] <encapsulated:" in out and "Fragment #1" in out and "(Basic Offset Table)" in out


def test_json_tree_and_redact(capsys):
    out = show(capsys, "-Y", "frame.number <= 41 and dicom.pdu.type == 4", "--format", "json", "--redact")
    trees = [json.loads(x) for x in out.splitlines()]
    labels = []
    stack = list(trees)
    while stack:
        n = stack.pop()
        labels.append(n["label"])
        stack.extend(n.get("children", ()))
    assert any("Patient's Name [PN] <redacted>" in x for x in labels)
    assert not any("CompressedSamples" in x for x in labels)
    assert trees[0]["type"] == 4 and trees[0]["src"] == "127.0.0.1:36377"
