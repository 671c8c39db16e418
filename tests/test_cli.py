"""The command line through ``fastdicom.cli.main``: every command and format on
the real captures, exit codes, and error messages (never a traceback)."""

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import threading

import pytest

from fastdicom.cli import main
from helpers import REAL

QR = str(REAL / "query_retrieve.pcap")
RA = str(REAL / "reject_abort.pcap")
QR_PORTS = ["--ports", "5678, 11113"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_text(capsys):
    code, out, err = run(capsys, "summary", RA, "--ports", "104 11112")
    assert code == 0
    assert "STORESCU → WRONG_AE" in out and "rejected" in out
    assert "called-AE-title-not-recognized" in out
    assert "A-ABORT from the client (service-user)" in out
    assert "A-ABORT from the server (service-user)" in out
    assert "Operations by command and status class" in out and "C-STORE" in out
    assert "dicom.op.unanswered" in out
    assert "\x1b[" not in out  # no colours when not on a terminal


def test_summary_json_contract(capsys):
    code, out, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    a = doc["associations"][1]
    for key in ("id", "client", "server", "calling_ae", "called_ae", "result", "end", "reject",
                "abort", "contexts", "user_info", "start", "end_time", "operations"):
        assert key in a
    for key in ("id", "abstract_syntax", "abstract_syntax_name", "proposed_transfer_syntaxes",
                "result", "transfer_syntax"):
        assert key in a["contexts"][0]
    op = a["operations"][0]
    for key in ("command", "message_id", "context_id", "affected_sop_class_uid",
                "affected_sop_instance_uid", "request_time", "response_time", "status",
                "status_text", "status_class", "pending_responses", "dataset_bytes"):
        assert key in op
    assert (a["calling_ae"], op["command"], op["status"], op["pending_responses"]) == ("VIEWER", "C-FIND", 0, 3)
    for key in ("association", "message_id", "command", "sop_class_uid", "sop_instance_uid",
                "transfer_syntax", "bytes", "complete"):
        assert key in doc["objects"][0]
    for key in ("id", "severity", "group", "message", "time", "association"):
        assert key in doc["expert"][0]
    move = [o for o in a["operations"] if o["command"] == "C-MOVE"]
    assert [m["status"] for m in move] == [0, 0xA801]
    assert move[1]["status_text"] == "Refused: Move Destination unknown"
    assert move[0]["move_destination"] == "MOVEDEST"


def test_summary_is_deterministic(capsys):
    _, a, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "json")
    _, b, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "json")
    assert a == b


def test_summary_jsonl_and_csv(capsys, tmp_path):
    code, out, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "jsonl")
    recs = [json.loads(x) for x in out.splitlines()]
    assert recs[0]["record"] == "capture"
    kinds = {r["record"] for r in recs}
    assert kinds == {"capture", "association", "operation", "object", "expert"}
    assert sum(r["record"] == "operation" for r in recs) == 8
    out_file = tmp_path / "ops.csv"
    code, out, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "csv", "-o", str(out_file))
    assert code == 0 and out == ""
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert len(rows) == 8
    assert [r["command"] for r in rows].count("C-STORE") == 4
    assert {r["status_class"] for r in rows} == {"success", "failure"}


def test_pdus_text_matches_wireshark_info_style(capsys):
    code, out, _ = run(capsys, "pdus", RA, "--ports", "104 11112")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 19  # tshark shows the same 19 DICOM PDUs
    assert "A-ASSOCIATE request STORESCU --> WRONG_AE" in lines[0]
    assert "A-ASSOCIATE reject  STORESCU <-- WRONG_AE (called-AE-title-not-recognized)" in lines[1]
    assert any("P-DATA, C-STORE-RQ ID=1" in x for x in lines)
    assert any("P-DATA, C-STORE-RSP ID=1 (Success)" in x for x in lines)
    assert any("P-DATA, PDV Fragment" in x for x in lines)
    assert any("P-DATA, CT Image Storage" in x for x in lines)
    assert any("ABORT STORESCU --> STORESCP" in x for x in lines)


def test_pdus_jsonl_keys(capsys):
    code, out, _ = run(capsys, "pdus", QR, *QR_PORTS, "--format", "jsonl")
    recs = [json.loads(x) for x in out.splitlines()]
    assert len(recs) == 50
    for r in recs:
        assert isinstance(r["time"], float) and ":" in r["src"] and ":" in r["dst"]
        assert r["type"] in range(1, 8) and isinstance(r["length"], int)
    assert [r["type"] for r in recs].count(1) == 4


def test_expert_command(capsys):
    code, out, _ = run(capsys, "expert", RA, "--ports", "104 11112", "--min-severity", "warning")
    assert code == 0
    assert out.count("dicom.assoc.abort") == 2 and out.count("dicom.assoc.reject") == 2
    code, out, _ = run(capsys, "expert", RA, "--format", "jsonl")
    assert all(json.loads(x)["id"] for x in out.splitlines())


def test_fail_on(capsys):
    assert run(capsys, "summary", RA, "--fail-on", "warning")[0] == 1
    assert run(capsys, "summary", RA, "--fail-on", "error")[0] == 0
    assert run(capsys, "summary", QR, *QR_PORTS, "--fail-on", "error")[0] == 1  # C-MOVE failure


def test_errors_are_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "summary", str(tmp_path / "missing.pcap"))
    assert code == 2 and err.count("\n") == 1 and "missing.pcap" in err and "Traceback" not in err
    bad = tmp_path / "not.pcap"
    bad.write_bytes(b"hello world, this is not a capture")
    code, out, err = run(capsys, "summary", str(bad))
    assert code == 2 and "not a pcap or pcapng capture" in err and err.count("\n") == 1
    code, out, err = run(capsys, "summary", RA, "--ports", "70000")
    assert code == 2 and "--ports" in err
    code, out, err = run(capsys, "summary")
    assert code == 2
    code, out, err = run(capsys, "nosuchcommand")
    assert code == 2


def test_gzip_and_stdin(capsys, tmp_path, monkeypatch):
    gz = tmp_path / "ra.pcap.whatever"
    gz.write_bytes(gzip.compress(open(RA, "rb").read()))
    _, plain, _ = run(capsys, "summary", RA, "--format", "json")
    _, zipped, _ = run(capsys, "summary", str(gz), "--format", "json")
    def strip(text):
        doc = json.loads(text)
        del doc["captures"]
        for rows in (doc["associations"], doc["objects"], doc["expert"], doc["tcp_attempts"]):
            for r in rows:
                r.pop("capture", None)
        return doc
    assert strip(plain) == strip(zipped)
    proc = subprocess.run([sys.executable, "-m", "fastdicom.cli", "pdus", "-", "--follow"],
                          input=open(RA, "rb").read(), capture_output=True)
    assert proc.returncode == 0 and len(proc.stdout.decode().splitlines()) == 19


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_pipe_is_read_as_a_stream(capsys, tmp_path, workers):
    """A named pipe (what ``<(zcat x.pcap.gz)`` gives too): read as it comes,
    never sought, never opened twice (it would lose its bytes), plain or
    gzip, as the file itself."""
    data = open(RA, "rb").read()
    _, plain, _ = run(capsys, "summary", RA, "--format", "json")
    want = json.loads(plain)["associations"]
    for content in (data, gzip.compress(data)):
        fifo = tmp_path / f"pipe{len(content)}"
        os.mkfifo(fifo)
        writer = threading.Thread(target=fifo.write_bytes, args=(content,), daemon=True)
        writer.start()
        try:
            code, out, err = run(capsys, "summary", str(fifo), "--format", "json", "--workers", workers)
        finally:
            writer.join(timeout=10)
        assert code == 0, err
        assert not writer.is_alive()
        doc = json.loads(out)
        assert doc["captures"][0]["size"] is None and doc["captures"][0]["bytes"] == len(data)
        assert [{k: v for k, v in a.items() if k != "capture"} for a in doc["associations"]] == \
            [{k: v for k, v in a.items() if k != "capture"} for a in want]


def test_several_captures(capsys):
    code, out, _ = run(capsys, "summary", RA, QR, "--ports", "104 11112 5678 11113", "--format", "json")
    doc = json.loads(out)
    assert len(doc["captures"]) == 2 and len(doc["associations"]) == 8
    assert [a["id"] for a in doc["associations"]] == list(range(8))


def test_follow_prints_operations_as_they_complete(capsys):
    code, out, _ = run(capsys, "summary", QR, *QR_PORTS, "--follow", "--format", "jsonl")
    ops = [json.loads(x) for x in out.splitlines()]
    assert len(ops) == 8 and {o["command"] for o in ops} == {"C-STORE", "C-FIND", "C-MOVE"}


def test_sample_and_help(capsys):
    code, out, _ = run(capsys, "sample")
    assert code == 0 and out.strip().endswith("store_reject_abort.pcap")
    for cmd in ("summary", "export", "pdus", "expert", "sample"):
        code, out, _ = run(capsys, cmd, "--help")
        assert code == 0 and "Example:" in out


def test_export_command(capsys, tmp_path):
    code, out, err = run(capsys, "export", RA, "-o", str(tmp_path / "x"), "--verify")
    assert code == 0
    assert "2 objects written" in err and "verify: 2 of 2 files read back" in err
    code, out, err = run(capsys, "export", RA, "-o", str(tmp_path / "y"), "--no-direct-io", "--verify")
    assert code == 0 and "verify: 2 of 2 files read back" in err
    for f in (tmp_path / "x").iterdir():  # the page cache or O_DIRECT: the same files
        assert f.read_bytes() == (tmp_path / "y" / f.name).read_bytes()


def test_redact(capsys):
    code, out, _ = run(capsys, "summary", str(REAL / "store_syntaxes.pcap"), "--format", "json", "--redact")
    doc = json.loads(out)
    names = [o.get("patient_name") for o in doc["objects"] if o.get("patient_name")]
    assert names and set(names) == {"<redacted>"}


def test_follow_honours_the_filter(capsys):
    code, out, _ = run(capsys, "summary", QR, *QR_PORTS, "--follow", "--format", "jsonl",
                       "-Y", 'dicom.op.command == "C-MOVE"')
    assert [(json.loads(x)["command"], json.loads(x)["status"]) for x in out.splitlines()] == \
        [("C-MOVE", 0), ("C-MOVE", 0xA801)]
    code, out, _ = run(capsys, "summary", QR, *QR_PORTS, "--follow", "--format", "jsonl",
                       "-Y", 'dicom.assoc.calling == "LOADER"')
    assert len(out.splitlines()) == 3


def test_head_bytes_bounds_what_summary_reads(capsys):
    ss = str(REAL / "store_syntaxes.pcap")
    _, out, _ = run(capsys, "summary", ss, "--format", "json", "--head-bytes", "0")
    none = json.loads(out)
    _, out, _ = run(capsys, "summary", ss, "--format", "json")
    full = json.loads(out)
    assert not any(o.get("patient_id") for o in none["objects"])
    assert sum(1 for o in full["objects"] if o.get("patient_id")) == 11
    # completeness and sizes do not depend on how much was read
    assert [(o["bytes"], o["complete"]) for o in none["objects"]] == \
        [(o["bytes"], o["complete"]) for o in full["objects"]]


@pytest.mark.parametrize("command", ["summary", "analyze"])
def test_json_output_layout(capsys, command):
    """Containers are indented, each record is one compact line, and the text
    parses to what the plain JSON encoder would have written."""
    from fastdicom import summary
    code, out, _ = run(capsys, command, QR, *QR_PORTS, "--format", "json")
    assert code in (0, 1)
    doc = json.loads(out)
    lines = out.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and out.endswith("}\n")
    if command == "summary":
        ops = [op for a in doc["associations"] for op in a["operations"]]
        assert ops
        # every operation is on a line of its own, in full
        op_lines = [json.loads(ln.strip().rstrip(",")) for ln in lines
                    if ln.lstrip().startswith('{"command": ')]
        assert op_lines == ops
    buf = io.StringIO()
    summary.write_json(doc, buf)
    assert buf.getvalue() == out  # deterministic
    odd = {"a": [{"b": [1, {"c": None}]}], 1: {"x": []}, None: float("inf"), "t": (1, 2),
           "s": {3}}
    buf = io.StringIO()
    summary.write_json(odd, buf)
    assert json.loads(buf.getvalue()) == json.loads(json.dumps(odd, default=str))
    # big enough to be written in several pieces
    big = {"rows": [{"id": i, "items": [{"k": i}], "n": {str(i % 7): [{"x": None}]}} for i in range(3000)]}
    buf = io.StringIO()
    summary.write_json(big, buf)
    assert json.loads(buf.getvalue()) == big and buf.getvalue().count("\n") > 3000


def test_summary_text_lists_every_association(capsys, tmp_path):
    """Hundreds of associations: every one has its row and its contexts,
    in columns, with the JSON's counts."""
    import pcapgen as G
    convs = [G.store_conversation([f"1.2.3.{i}.1"], client_ae=f"CT{i:03d}",
                                  client=(f"10.1.{i // 250}.{i % 250 + 1}", 40000 + i),
                                  t0=1_700_000_000.0 + i * 0.01) for i in range(300)]
    cap = tmp_path / "many.pcap"
    cap.write_bytes(G.pcap(*convs))
    code, out, _ = run(capsys, "summary", str(cap))
    assert code == 0
    rows = [ln for ln in out.splitlines() if " → 10.0.0.2:104 " in ln]
    assert len(rows) == 300
    assert [int(r.split()[0]) for r in rows] == list(range(300))
    assert all("accepted  released" in r for r in rows)
    assert sum(1 for ln in out.splitlines() if ln.startswith("Association ") and "presentation contexts" in ln) == 300
    assert "C-STORE      300" in out


def test_the_command_line_paces_the_garbage_collector(monkeypatch, capsys):
    """Collections every GC_THRESHOLD allocations, set once, by the command
    line only (the library leaves the collector alone)."""
    import gc

    from fastdicom import api, commands
    from helpers import REAL
    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "set_threshold", lambda *t: calls.append(t))
    with api.open(str(REAL / "echo_dcmtk.pcap")) as cap:
        list(cap.operations())
    assert calls == []
    assert main(["summary", str(REAL / "echo_dcmtk.pcap"), "-o", "/dev/null"]) == 0
    assert calls == ["freeze", (commands.GC_THRESHOLD, 10, 10)]


def test_the_command_exits_without_teardown_but_with_its_output(tmp_path):
    """``fastdicom`` (cli.entry) skips the interpreter's teardown: the
    output is all there, functions registered to run at exit still run, the
    status is main()'s."""
    def run(*args):
        code = ("import atexit, sys; atexit.register(lambda: print('at exit', file=sys.stderr)); "
                "from fastdicom.cli import entry; sys.argv = ['fastdicom', *sys.argv[1:]]; entry()")
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)

    ok = run("summary", "--format", "json", str(REAL / "echo_dcmtk.pcap"))
    assert ok.returncode == 0 and ok.stderr.strip().endswith("at exit")
    assert json.loads(ok.stdout)["associations"]  # the whole document, flushed
    bad = run("summary", str(tmp_path / "missing.pcap"))
    assert bad.returncode == 2 and "missing.pcap" in bad.stderr and "at exit" in bad.stderr


@pytest.mark.parametrize("argv", [
    ["summary", "a.pcap", "b.pcap", "--format", "json", "-o", "x.json", "--workers", "2", "-Y",
     "dicom.op.status != 0", "--max-pdu", "64K", "--hash", "--head-bytes", "100"],
    ["export", "a.pcap", "-o", "out", "--layout", "patient", "--keep-incomplete", "--no-direct-io"],
    ["pdus", "a.pcap", "--format", "jsonl", "--follow", "--ports", "104,5678"],
    ["show", "a.pcap", "--no-sequence-subtrees", "--tag-subtrees", "--max-value-length", "9"],
    ["expert", "a.pcap", "--min-severity", "warning", "--fail-on", "error"],
    ["analyze", "a.pcap", "--format", "json", "--redact"],
    ["report", "a.pcap", "-o", "r.html", "--title", "night"],
    ["batch", "dir", "-o", "tables", "--workers", "3", "--partition-bytes", "1G"],
    ["sample", "query_retrieve"],
    ["fields", "userinfo", "--format", "json"],
    ["fields"],
])
def test_only_the_named_command_is_built_in_full(argv):
    """build_parser(argv) builds only the named command's parser; it parses
    exactly as the parser with every command built does."""
    from fastdicom.cli import build_parser
    full = build_parser([])  # no command named: all of them in full
    assert build_parser(argv).parse_args(argv) == full.parse_args(argv)
    lazy = build_parser(argv)
    others = [n for n in lazy._subparsers._group_actions[0].choices if n != argv[0]]
    assert others and all(not lazy._subparsers._group_actions[0].choices[n]._actions[1:]
                          for n in others)  # named, not built


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for name in ("summary", "export", "pdus", "show", "expert", "analyze", "report", "batch",
                 "sample", "fields"):
        assert f"    {name} " in listed
    assert main(["sumary", "x.pcap"]) == 2
    assert "invalid choice: 'sumary'" in capsys.readouterr().err


@pytest.mark.parametrize("columns", ["50", "120", "", "junk"])
def test_help_is_as_wide_as_argparse_makes_it(monkeypatch, columns):
    """cli's help formatters find the width without shutil, as argparse does with it."""
    import argparse

    from fastdicom.cli import build_parser
    monkeypatch.setenv("COLUMNS", columns)
    top = build_parser(["summary"])
    summary = top._subparsers._group_actions[0].choices["summary"]
    for parser, stock in ((top, argparse.HelpFormatter),
                          (summary, argparse.RawDescriptionHelpFormatter)):
        ours = parser.format_help()
        parser.formatter_class = stock
        assert ours == parser.format_help()


def test_start_up_leaves_heavy_modules_for_later():
    """Parsing a summary's arguments and opening its capture import neither
    shutil (with zlib, bz2, lzma), gzip nor json: the walk starts first."""
    code = ("import sys; from fastdicom import cli, commands, capture; "
            f"a = cli.build_parser(['summary', {RA!r}]).parse_args(['summary', {RA!r}]); "
            "s = capture.walk_ahead(a.captures[0], commands.engine_options(a, 65536), True); "
            "s and s.close(); print(sorted(m for m in ('shutil', 'gzip', 'json') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), check=True).stdout
    assert out.strip() == "[]"


def test_file_output_writes_on_a_thread_of_its_own(tmp_path):
    """-o FILE: text gathered, encoded and written by the output thread, in order."""
    import _thread
    import time

    from fastdicom.commands import FileOutput, output
    path = tmp_path / "out.txt"
    pieces = [f"line {i} \u00e9\u20ac\n" * (i % 50) for i in range(12000)]
    threads = _thread._count()
    with output(str(path)) as out:
        assert isinstance(out, FileOutput)
        for k, p in enumerate(pieces):
            out.write(p)
            if k % 997 == 0:
                out.flush()
    assert path.read_text(encoding="utf-8") == "".join(pieces)
    assert len("".join(pieces)) > 3 * FileOutput.PIECE  # several pieces went to the thread
    deadline = time.monotonic() + 5
    while _thread._count() > threads and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _thread._count() == threads  # the thread has ended


def test_file_output_bounds_the_pieces_waiting():
    """At most FileOutput.DEPTH pieces wait for (or are in) the file's write:
    the next one waits for room, so memory stays bounded however slow the file."""
    import threading
    import time

    from fastdicom.commands import FileOutput
    gate = threading.Event()
    written = []

    class SlowFile:
        def write(self, b):
            gate.wait()
            written.append(len(b))

        def flush(self):
            pass

        def close(self):
            pass
    out = FileOutput(SlowFile())
    handed = []

    def produce():
        for k in range(FileOutput.DEPTH + 3):
            out.write("x" * FileOutput.PIECE)
            handed.append(k)
    th = threading.Thread(target=produce)
    th.start()
    deadline = time.monotonic() + 10
    while len(handed) < FileOutput.DEPTH and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(handed) == FileOutput.DEPTH  # the next piece waits for room
    gate.set()
    th.join()
    out.close()
    assert written == [FileOutput.PIECE] * (FileOutput.DEPTH + 3)


def test_file_output_errors(tmp_path):
    from fastdicom.commands import output
    if os.path.exists("/dev/full"):
        with pytest.raises(OSError) as e:
            with output("/dev/full") as out:
                out.write("x" * (3 << 20))
        assert "No space" in str(e.value)
    # an error of the command is not hidden by the output's, and the thread ends
    with pytest.raises(KeyError):
        with output(str(tmp_path / "o.txt")) as out:
            out.write("partial")
            raise KeyError("boom")
    assert (tmp_path / "o.txt").read_text() == "partial"


def test_summary_output_file_opened_early(capsys, tmp_path, monkeypatch):
    """summary -o FILE opens FILE before the capture is read: an unwritable
    path fails at once; a longer old file is written over and cut to the new
    content; a run that fails before writing leaves an old file as it was
    and creates none."""
    from fastdicom import capture
    read = []
    real = capture.walk_ahead
    monkeypatch.setattr(capture, "walk_ahead", lambda *a, **k: read.append(1) or real(*a, **k))
    code, _, err = run(capsys, "summary", QR, *QR_PORTS, "-o", str(tmp_path / "no" / "s.json"),
                       "--workers", "1")
    assert code == 2 and "No such file or directory" in err and not read
    assert not (tmp_path / "no").exists()
    want_code, want, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "json")
    old = tmp_path / "s.json"
    old.write_text("x" * (len(want) * 3))
    code, _, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "json", "-o", str(old))
    assert code == want_code and old.read_text(encoding="utf-8") == want
    old.write_text("old content")
    code, _, err = run(capsys, "summary", str(tmp_path / "missing.pcap"), "-o", str(old))
    assert code == 2 and "missing.pcap" in err and old.read_text() == "old content"
    code, _, _ = run(capsys, "summary", str(tmp_path / "missing.pcap"), "-o", str(tmp_path / "new.json"))
    assert code == 2 and not (tmp_path / "new.json").exists()
    # an empty summary still empties the old file (nothing is left of it)
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    code, _, _ = run(capsys, "summary", str(empty), "--format", "csv", "-o", str(old))
    assert code == 0 and "old content" not in old.read_text()


def test_summary_to_a_file_is_what_standard_output_gets(capsys, tmp_path):
    code, out, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "json")
    code2, _, _ = run(capsys, "summary", QR, *QR_PORTS, "--format", "json", "-o", str(tmp_path / "s.json"))
    assert code == code2 and (tmp_path / "s.json").read_text(encoding="utf-8") == out
