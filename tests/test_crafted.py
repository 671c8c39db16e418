"""Crafted attacks: terminal escapes and rich markup in every text output,
HTML in the report, path traversal and symbolic links in export, a deflate
bomb, and a SYN flood of a million connections.

Memory is measured in a child process (``resource.getrusage`` maximum RSS),
so that a bound that does not hold shows as a number, not as a dead test run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

import pcapgen as G
from fastdicom import cli, core

import fastdicom

# child processes import the very fastdicom this process runs (the source tree
# with its core built in place, or the installed package in CI)
SRC = Path(fastdicom.__file__).resolve().parent.parent

# ------------------------------------------------------------ hostile text
ESCAPES = "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, set the window title
MARKUP = "[bold]X[/bold]"  # rich markup: must print as these very characters
HTML = "<script>alert(1)"
UID = "1.2.3\x1b[2J<script>"
COMMENT = "\x1b[2J\x1b]0;pwned\x07<script>alert(1)</script>[red]x\u202eevil"
PATIENT = "Doe\x1b]0;pwn\x07^<script>alert(1)</script>[bold]"


def hostile_capture(path: Path) -> Path:
    """AE titles, UIDs, a patient name, an error comment and a move destination
    carrying terminal escapes, rich markup and HTML.  A benign association comes
    first, so the framer is in sync when the hostile A-ASSOCIATE-RQ arrives (a
    search for a PDU boundary would not take an AE title with control characters)."""
    c = G.Conversation()
    c.send(0, G.assoc_rq("SCP", "SCU")).send(1, G.assoc_ac("SCP", "SCU"))
    c.send(0, G.release_rq()).send(1, G.release_rp())
    c.send(0, G.assoc_rq(HTML, ESCAPES, [(1, G.CT_STORAGE, (G.EXPLICIT,)), (3, "1.2\x1b[31m<b>[i]", (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac(HTML, ESCAPES, [(1, 0, G.EXPLICIT), (3, 3, G.EXPLICIT)]))
    ds = G.dataset_explicit([
        (0x00080016, "UI", G.CT_STORAGE.encode()), (0x00080018, "UI", UID.encode()),
        (0x00080060, "CS", b"CT\x1b[5m"), (0x00100010, "PN", PATIENT.encode()),
        (0x00100020, "LO", b"ID\x1b[2J</td>"), (0x0020000D, "UI", b"1.2\x07"),
        (0x0020000E, "UI", b"1.3\x9b31m"), (0x00081030, "LO", b"\x1b[2J<img src=x onerror=alert(1)>")])
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, UID))))
    c.send(0, G.p_data((1, 2, ds)))
    c.send(1, G.p_data((1, 3, G.command(
        affected_sop_class_uid=G.CT_STORAGE, command_field=0x8001, message_id_being_responded_to=1,
        command_data_set_type=0x0101, status=0xA700, error_comment=COMMENT, affected_sop_instance_uid=UID))))
    c.send(0, G.p_data((1, 3, G.command(
        affected_sop_class_uid=G.STUDY_MOVE, command_field=0x0021, message_id=2, priority=0,
        command_data_set_type=0, move_destination="\x1b[2J[b]<i>"))))
    c.send(0, G.p_data((1, 2, ds)))
    c.send(0, G.release_rq()).send(1, G.release_rp())
    c.send(0, G.assoc_rq(MARKUP, MARKUP)).send(1, G.assoc_rj(1, 1, 7))
    c.close()
    path.write_bytes(G.pcap(c))
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_capture(tmp_path_factory.mktemp("hostile") / "hostile.pcap")


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def control_chars(text: str) -> list:
    """Characters a terminal would act on: C0 but newline and tab, DEL, C1, bidi
    (a CR only as part of CSV's CRLF)."""
    return sorted({c for c in text.replace("\r\n", "\n") if (c < " " and c not in "\n\t") or c == "\x7f"
                   or 0x80 <= ord(c) < 0xA0 or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069})


TEXT_COMMANDS = [
    ["summary"], ["summary", "--format", "csv"], ["summary", "--follow"], ["pdus"], ["show"],
    ["show", "--tag-subtrees", "--no-sequence-subtrees"], ["expert"], ["analyze"],
    ["summary", "--redact"], ["show", "--redact"],
]


@pytest.mark.parametrize("argv", TEXT_COMMANDS, ids=" ".join)
def test_no_terminal_escapes_in_text_output(hostile, argv):
    status, out, err = run_cli([argv[0], hostile, *argv[1:]])
    assert status in (0, 1), err
    assert control_chars(out + err) == []
    assert "pwned" in out or argv[0] in ("analyze",) or "--follow" in argv  # the values are shown, escaped
    # rich markup in wire values is printed, never interpreted
    if argv[0] in ("summary", "pdus", "show") and "--follow" not in argv and "csv" not in argv:
        assert MARKUP in out, "an AE title with [bold] lost its brackets"


def test_error_comment_markup_kept_in_summary(hostile):
    _status, out, _err = run_cli(["summary", hostile])
    assert "[red]x" in out and "\\x1b[2J" in out


def test_summary_on_a_terminal(hostile):
    """On a terminal rich adds its own colours, but no escape from the wire gets through."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    p = subprocess.Popen([sys.executable, "-m", "fastdicom.cli", "summary", str(hostile)],
                         stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    p.wait(timeout=120)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert p.returncode in (0, 1), text[-2000:]
    # only rich's own SGR sequences (ESC [ ... m) may appear; nothing that clears, moves or titles
    others = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert control_chars(others.replace("\r", "")) == []
    assert "\x1b[2J" not in text and "\x1b]0;" not in text and "\x07" not in text
    assert MARKUP in re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_html_report_has_no_markup_from_the_wire(hostile, tmp_path):
    out = tmp_path / "r.html"
    status, _o, err = run_cli(["report", hostile, "-o", out])
    assert status in (0, 1), err
    html = out.read_text(encoding="utf-8")
    assert control_chars(html.replace("\r", "")) == []
    assert html.count("<script") == 2  # the data block and the report's own script
    assert "<script>alert" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    data = html.split('<script type="application/json" id="fd-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data


def test_export_names_and_manifest_are_safe(hostile, tmp_path):
    out = tmp_path / "out"
    status, _o, err = run_cli(["export", hostile, "-o", out, "--layout", "patient", "--include-commands",
                               "--keep-incomplete"])
    assert status in (0, 1), err
    assert control_chars(err) == []
    names = [str(p.relative_to(out)) for p in out.rglob("*")]
    assert names
    for n in names:
        assert re.fullmatch(r"[0-9A-Za-z._/-]+", n), n
        assert ".." not in n.split("/")
    for line in (out / "manifest.jsonl").read_text().splitlines():
        json.loads(line)  # one JSON object per line: escapes cannot break lines
    assert control_chars((out / "manifest.jsonl").read_text()) == []


def test_export_does_not_follow_symlinks_inside_the_output(hostile, tmp_path):
    """A symbolic link planted in the output folder (a file name or a patient
    folder) is never written through."""
    scratch = tmp_path / "scratch"
    assert run_cli(["export", hostile, "-o", scratch, "--layout", "patient"])[0] == 0
    folder = next(p.name for p in scratch.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = sorted(p.name for p in scratch.rglob("*.dcm"))
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("precious")
    # the patient folder the export will want, planted as a link
    out = tmp_path / "out"
    out.mkdir()
    (out / folder).symlink_to(victim, target_is_directory=True)
    status, _o, err = run_cli(["export", hostile, "-o", out, "--layout", "patient"])
    assert status == 2 and err.count("\n") == 1 and "symbolic links are not followed" in err, err
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]
    assert not (out / ".fastdicom-tmp").exists()  # no temporary file left behind
    # a file name planted as a link: the export takes another name, the target stays
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / files[0]).symlink_to(victim / "keep")
    status, _o, err = run_cli(["export", hostile, "-o", out2])
    assert status == 0, err
    assert (victim / "keep").read_text() == "precious"
    assert (out2 / files[0]).is_symlink() and len(list(out2.glob("*.dcm"))) == len(files) + 1


# ------------------------------------------------------------ child processes
MEASURE = """
import resource, sys, time
from fastdicom import cli
t = time.perf_counter()
status = cli.main(sys.argv[1:])
sys.stdout.flush()
try:  # this process image's peak (ru_maxrss can carry the parent's across fork and exec)
    with open("/proc/self/status") as f:
        peak = int(next(line for line in f if line.startswith("VmHWM")).split()[1])
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("MEASURE", status, peak, time.perf_counter() - t, file=sys.stderr)
"""


def measured(argv, timeout=600):
    """Run ``fastdicom ARGV`` in a child: (status, stdout, stderr, max RSS in MB, seconds)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-c", MEASURE, *map(str, argv)], capture_output=True,
                       text=True, env=env, timeout=timeout)
    m = re.search(r"MEASURE (\d+) (\d+) ([0-9.]+)", p.stderr)
    assert m, p.stderr[-3000:]
    err = p.stderr[:m.start()]
    assert int(m.group(1)) == p.returncode or p.returncode == 0
    return int(m.group(1)), p.stdout, err, int(m.group(2)) / 1024, float(m.group(3))


# ------------------------------------------------------------ deflate bomb
DEFLATED = "1.2.840.10008.1.2.1.99"
BOMB_BLOCK = 32 << 20  # zeros per flushed deflate block
BOMB_BLOCKS = 36  # 36 x 32 MiB: 1.125 GiB inflated


def deflate_bomb() -> bytes:
    """A raw-deflate data set (explicit VR LE) that inflates to more than 1 GiB:
    a few elements, then pixel data of zeros.  Built from one compressed block
    repeated (each ends with a full flush, so it stands alone)."""
    head = G.dataset_explicit([(0x00080016, "UI", G.CT_STORAGE.encode()),
                               (0x00080018, "UI", b"1.2.3.4.5.6"), (0x00100010, "PN", b"Bomb^Deflate")])
    total = BOMB_BLOCK * BOMB_BLOCKS
    head += struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, total)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(BOMB_BLOCK)) + c.flush(zlib.Z_FULL_FLUSH)
    return first + block * BOMB_BLOCKS + b"\x03\x00"  # an empty final block ends the stream


def bomb_capture(path: Path) -> Path:
    data = deflate_bomb()
    c = G.Conversation(mss=16000)
    c.send(0, G.assoc_rq("PACS", "BOMB", [(1, G.CT_STORAGE, (DEFLATED,))], max_len=65536))
    c.send(1, G.assoc_ac("PACS", "BOMB", [(1, 0, DEFLATED)], max_len=65536))
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3.4.5.6"))))
    step = 65000
    for i in range(0, len(data), step):
        last = i + step >= len(data)
        c.send(0, G.p_data((1, 2 if last else 0, data[i:i + step])))
    c.send(1, G.p_data((1, 3, G.c_store_rsp(1, G.CT_STORAGE, "1.2.3.4.5.6"))))
    c.send(0, G.release_rq()).send(1, G.release_rp()).close()
    path.write_bytes(G.pcap(c))
    return path


def test_the_bomb_really_is_one():
    d = zlib.decompressobj(-15)
    n = 0
    data = deflate_bomb()
    assert len(data) < 2 << 20
    for i in range(0, len(data), 1 << 16):
        n += len(d.decompress(data[i:i + (1 << 16)]))
    assert d.eof and n > 1 << 30


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return bomb_capture(tmp_path_factory.mktemp("bomb") / "bomb.pcap")


@pytest.fixture(scope="module")
def baseline_rss(tmp_path_factory):
    """Maximum RSS of 'show' on a small clean capture: the interpreter, pydicom, rich."""
    small = tmp_path_factory.mktemp("small") / "s.pcap"
    small.write_bytes(G.pcap(G.store_conversation(["1.2.3"])))
    return measured(["show", small])[3]


@pytest.mark.parametrize("argv", [
    ["show"], ["expert", "--max-inflate", "16M"], ["summary", "--max-inflate", "16M"],
    ["analyze"], ["export", "--verify"], ["pdus", "--max-inflate", "1M"],
], ids=" ".join)
def test_deflate_bomb_is_capped(bomb, baseline_rss, tmp_path, argv):
    args = [argv[0], bomb, *argv[1:]]
    if argv[0] == "export":
        args += ["-o", tmp_path / "out"]
    status, out, err, rss, secs = measured(args)
    assert status in (0, 1), err
    # the cap (64 MiB by default) holds: nowhere near the 1 GiB inside
    assert rss < baseline_rss + 250, f"{argv}: {rss:.0f} MB (baseline {baseline_rss:.0f} MB)"
    if argv[0] in ("expert", "summary"):  # the expert info
        assert "dicom.object.inflate_cap" in out, out[-2000:]
    if argv[0] == "show":  # the decoded tree says where it stopped
        assert "inflated only to the first 67108864 bytes (--max-inflate)" in out, out[-2000:]
    if argv[0] == "export":
        assert "inflates beyond" in err and "--max-inflate" in err


# --------------------------------------------------------------- SYN flood
def syn_flood(path: Path, count: int) -> Path:
    """``count`` SYNs from distinct addresses and ports to 10.0.0.2:104, one
    record each (Ethernet, IPv4, TCP): written with numpy, in a second."""
    import numpy as np
    frame = bytearray(b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00")
    frame += struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, b"\x0a\0\0\x01", b"\x0a\0\0\x02")
    frame += struct.pack(">HHIIBBHHH", 40000, 104, 12345, 0, 5 << 4, 0x02, 65535, 0, 0)
    rec = np.frombuffer(struct.pack("<IIII", 1_700_000_000, 0, len(frame), len(frame)) + bytes(frame),
                        dtype=np.uint8)
    a = np.tile(rec, (count, 1))
    k = np.arange(count, dtype=np.uint32)
    a[:, 0:4] = (1_700_000_000 + k // 1_000_000).astype("<u4").view(np.uint8).reshape(count, 4)
    a[:, 4:8] = (k % 1_000_000).astype("<u4").view(np.uint8).reshape(count, 4)
    src = (0x0A000000 | (1 + k // 60000) << 8 | 0).astype(">u4")
    a[:, 16 + 26:16 + 30] = src.view(np.uint8).reshape(count, 4)
    a[:, 16 + 34:16 + 36] = (1024 + k % 60000).astype(">u2").view(np.uint8).reshape(count, 2)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        f.write(a.tobytes())
    return path


SYNS = 100_000 if core.PURE_PYTHON else 1_000_000


def test_syn_flood_memory_bounded_by_max_connections(tmp_path):
    path = syn_flood(tmp_path / "flood.pcap", SYNS)
    t = time.perf_counter()
    status, out, err, rss, secs = measured(["summary", path, "--format", "json", "--max-connections", "2000"])
    assert status in (0, 1), err
    doc = json.loads(out)
    stats = doc["captures"][0]["stats"]
    assert stats["records"] == SYNS and stats["flows"] == SYNS
    assert stats["evicted_flows"] == SYNS - 2000
    assert any(e["id"] == "tcp.flows.full" for e in doc["expert"])
    assert len(doc["tcp_attempts"]) <= 10_000  # the decoder keeps a bounded sample
    assert rss < 200, f"{rss:.0f} MB for {SYNS} SYNs"
    assert time.perf_counter() - t < 300


# ------------------------------------------------------- every bound reports
def _expert_ids(argv):
    status, out, err = run_cli(argv + ["--format", "json"])
    assert status in (0, 1), err
    return {e["id"] for e in json.loads(out)["expert"]}


def test_bound_max_ooo_bytes_reports(tmp_path):
    c = G.Conversation()
    c.send(0, G.assoc_rq("PACS", "CT01", [(1, G.CT_STORAGE, (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac("PACS", "CT01", [(1, 0, G.EXPLICIT)]))
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3"))))
    k = len(c.frames)
    c.send(0, G.p_data((1, 2, G.ct_dataset("1.2.3", pixels=8192))))
    c.frames[k + 1], c.frames[k + 3] = c.frames[k + 3], c.frames[k + 1]  # two segments held out of order
    c.send(1, G.p_data((1, 3, G.c_store_rsp(1, G.CT_STORAGE, "1.2.3"))))
    c.send(0, G.release_rq()).send(1, G.release_rp()).close()
    path = tmp_path / "reordered.pcap"
    path.write_bytes(G.pcap(c))
    assert "tcp.ooo.budget" not in _expert_ids(["summary", path])
    assert "tcp.ooo.budget" in _expert_ids(["summary", path, "--max-ooo-bytes", "1000"])


def test_bound_max_pdu_reports(tmp_path):
    path = tmp_path / "s.pcap"
    path.write_bytes(G.pcap(G.store_conversation(["1.2.3"])))  # a 2 KiB data set in one PDU
    assert "dicom.pdu.invalid" not in _expert_ids(["summary", path])
    assert "dicom.pdu.invalid" in _expert_ids(["summary", path, "--max-pdu", "1K"])


def test_bound_max_depth_reports(tmp_path):
    def nested(depth):  # undefined-length sequences, each item holding the next one
        body = G.dataset_explicit([(0x00100010, "PN", b"Deep^Nest")])
        for _ in range(depth):
            seq = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
            item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
            body = seq + item + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        return G.dataset_explicit([(0x00080016, "UI", G.CT_STORAGE.encode()),
                                   (0x00080018, "UI", b"1.2.3")]) + body

    c = G.Conversation()
    c.send(0, G.assoc_rq("PACS", "DEEP", [(1, G.CT_STORAGE, (G.EXPLICIT,))]))
    c.send(1, G.assoc_ac("PACS", "DEEP", [(1, 0, G.EXPLICIT)]))
    c.send(0, G.p_data((1, 3, G.c_store_rq(1, G.CT_STORAGE, "1.2.3"))))
    c.send(0, G.p_data((1, 2, nested(200))))
    c.send(1, G.p_data((1, 3, G.c_store_rsp(1, G.CT_STORAGE, "1.2.3"))))
    c.send(0, G.release_rq()).send(1, G.release_rp()).close()
    path = tmp_path / "deep.pcap"
    path.write_bytes(G.pcap(c))
    assert "dicom.dataset.depth" in _expert_ids(["summary", path])  # 200 levels > 64
    assert "dicom.dataset.depth" not in _expert_ids(["summary", path, "--max-depth", "300"])
    status, out, _err = run_cli(["show", path, "--max-depth", "10"])
    assert status == 0 and "nested too deep" in out


def test_bound_max_total_bytes_reports(tmp_path):
    from fastdicom import capture
    from fastdicom.decoder import Decoder
    from fastdicom.export import Exporter
    path = tmp_path / "s.pcap"
    path.write_bytes(G.pcap(G.store_conversation([f"1.2.3.{k}" for k in range(4)])))
    ex = Exporter(str(tmp_path / "out"), max_total_bytes=5000)
    dec = Decoder([ex])
    ex.bind(dec)
    try:
        capture.run([str(path)], dec, capture.EngineOptions(data_limit=-1))
    finally:
        ex.close()
    assert [e.id for e in dec.expert].count("export.cap") == 1
    assert ex.counts["capped"] >= 1 and 1 <= ex.counts["written"] < 4
    status, _out, err = run_cli(["export", path, "-o", tmp_path / "cli", "--max-total-bytes", "5K"])
    assert status == 0 and "not written past --max-total-bytes" in err


@pytest.mark.parametrize("argv", [["--max-inflate", "1x"], ["--max-connections", "0"], ["--max-depth", "-1"]])
def test_bad_bound_values_are_usage_errors(argv):
    status, _out, err = run_cli(["summary", "x.pcap", *argv])
    assert status == 2 and "error: argument" in err


def test_pdus_and_show_do_not_keep_data_set_heads(tmp_path):
    """'pdus' and 'show' keep PDU records only while the sinks see them: the
    data set heads (64 KiB, 16 MiB for show) must go with them, or memory grows
    with the number of objects."""
    from fastdicom import capture, show
    from fastdicom.decoder import Decoder
    path = tmp_path / "s.pcap"
    path.write_bytes(G.pcap(G.store_conversation([f"1.2.3.{k}" for k in range(20)])))
    seen = []

    class Sink:
        def on_pdu(self, rec):
            seen.extend(p.transfer.head is not None for p in rec.pdvs if p.last_data and p.transfer)

    dec = Decoder([Sink(), show.PduLister(io.StringIO())], keep_pdus=True, keep_heads=False)
    capture.run([str(path)], dec, capture.EngineOptions())
    assert len(seen) == 20 and all(seen)  # the sinks saw every head
    assert all(t.head is None for t in dec.objects)  # and none was kept


# ------------------------------------------- A-ASSOCIATE of tiny items
def tiny_items_rq() -> bytes:
    """An A-ASSOCIATE-RQ of almost 1 MiB holding 80,000 presentation context
    items of one one-character transfer syntax each."""
    body = struct.pack(">HH", 1, 0) + b"PACS".ljust(16) + b"FLOOD".ljust(16) + bytes(32)
    body += G._item(0x10, b"1.2.840.10008.3.1.1.1")
    one = G._item(0x20, bytes([1, 0, 0, 0]) + G._item(0x40, b"1"))
    body += one * ((1 << 20) // len(one) - 10)
    return G.pdu(1, body)


def test_association_pdu_of_tiny_items_is_bounded():
    from fastdicom import pdu
    body = tiny_items_rq()[6:]
    t = time.perf_counter()
    a = pdu.decode_associate(body, True)
    assert time.perf_counter() - t < 2
    assert len(a.contexts_rq) == pdu.MAX_CONTEXTS
    assert len(a.problems) <= pdu.MAX_PROBLEMS + 1
    assert "not kept: " in a.problems[-1][1]["why"]


def test_many_associations_of_tiny_items_memory(tmp_path):
    """What every association keeps of its RQ is bounded: 30 associations of
    1 MiB RQs of tiny items cost little more than one."""
    rq = tiny_items_rq()
    convs = []
    for k in range(30):
        c = G.Conversation(client=("10.0.0.1", 40000 + k), mss=65000)
        c.send(0, rq).send(1, G.assoc_rj(1, 1, 7)).close()
        convs.append(c)
    path = tmp_path / "tiny.pcap"
    path.write_bytes(G.pcap(*convs))
    status, out, err, rss, secs = measured(["summary", path, "--format", "json"])
    assert status in (0, 1), err
    doc = json.loads(out)
    assert len(doc["associations"]) == 30
    assert rss < 150, f"{rss:.0f} MB"


def test_many_huge_command_sets_memory(tmp_path):
    """Commands are kept with their operations for the whole run: a command set
    of 100,000 tiny unknown elements is kept bounded (known elements, a few
    unknown ones, the raw bytes only up to 64 KiB)."""
    filler = b"".join(struct.pack("<HHI", 0, 0x2000 + (k % 0xD000), 0) for k in range(110_000))
    c = G.Conversation(mss=65000)
    c.send(0, G.assoc_rq("PACS", "ECHO", [(1, G.VERIFICATION, (G.IMPLICIT,))], max_len=0))
    c.send(1, G.assoc_ac("PACS", "ECHO", [(1, 0, G.IMPLICIT)], max_len=0))
    for mid in range(1, 31):
        c.send(0, G.p_data((1, 3, G.c_echo_rq(mid) + filler)))
        c.send(1, G.p_data((1, 3, G.c_echo_rsp(mid))))
    c.send(0, G.release_rq()).send(1, G.release_rp()).close()
    path = tmp_path / "cmds.pcap"
    path.write_bytes(G.pcap(c))
    status, out, err, rss, secs = measured(["summary", path, "--format", "json"])
    assert status in (0, 1), err
    doc = json.loads(out)
    assert [op["status"] for op in doc["associations"][0]["operations"]] == [0] * 30
    assert rss < 150, f"{rss:.0f} MB"
