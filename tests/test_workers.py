"""``summary --workers N`` is byte-identical to ``--workers 1``.

``--workers`` counts CPUs: 2 is one process reading ahead on a thread, 4 and
more are processes (one per pair of CPUs) each with a share of the
connections."""

import pytest

from fastdicom.cli import main
from fastdicom.core import PURE_PYTHON
from helpers import REAL, REAL_CAPTURES, ports_of
from mutations import mutate


def _json(capsys, path, ports, workers, *extra):
    code = main(["summary", str(path), "--ports", " ".join(map(str, ports)), "--format", "json",
                 "--workers", str(workers), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize("name", REAL_CAPTURES)
def test_workers_give_identical_output(capsys, name):
    path = REAL / f"{name}.pcap"
    one = _json(capsys, path, ports_of(path), 1)
    assert _json(capsys, path, ports_of(path), 2) == one
    assert _json(capsys, path, ports_of(path), 4) == one
    assert _json(capsys, path, ports_of(path), 6) == one


@pytest.mark.parametrize("extra", [("--hash",), ("--redact",), ("--no-heuristic",)])
def test_workers_identical_with_options(capsys, extra):
    path = REAL / "store_syntaxes.pcap"
    assert _json(capsys, path, ports_of(path), 4, *extra) == _json(capsys, path, ports_of(path), 1, *extra)


@pytest.mark.parametrize("mode", ["drop", "midstream", "reorder"])
def test_workers_identical_on_damaged_captures(capsys, tmp_path, mode):
    src = REAL / "concurrent.pcap"
    p = tmp_path / "m.pcap"
    data = mutate(src.read_bytes(), mode, seed=4)
    p.write_bytes(data[:-100] if mode == "drop" else data)  # and a truncated last record
    one = _json(capsys, p, ports_of(src), 1)
    assert _json(capsys, p, ports_of(src), 2) == one
    assert _json(capsys, p, ports_of(src), 4) == one


def test_several_captures_with_workers(capsys):
    a, b = REAL / "reject_abort.pcap", REAL / "query_retrieve.pcap"
    args = ["summary", str(a), str(b), "--ports", "104 11112 5678 11113", "--format", "json"]
    main(args + ["--workers", "1"])
    one = capsys.readouterr().out
    main(args + ["--workers", "4"])
    assert capsys.readouterr().out == one


def _spy(monkeypatch):
    from fastdicom import capture
    calls = []
    real = capture.summary_parallel

    def spy(names, options, workers, **kw):
        assert kw["read_ahead"] is True  # every process has two CPUs
        calls.append(workers)
        return real(names, options, workers, **kw)

    monkeypatch.setattr(capture, "summary_parallel", spy)
    return calls


def _spy_reads(monkeypatch):
    """The read_ahead of each capture.run in this process."""
    from fastdicom import capture
    seen = []
    real = capture.run

    def spy(*a, read_ahead=None, **kw):
        seen.append(read_ahead)
        return real(*a, read_ahead=read_ahead, **kw)

    monkeypatch.setattr(capture, "run", spy)
    return seen


def test_default_uses_every_cpu_for_a_big_capture(capsys, monkeypatch, tmp_path):
    import gzip
    import json

    from fastdicom import capture, commands
    path = REAL / "store_syntaxes.pcap"
    args = ["summary", str(path), "--ports", " ".join(map(str, ports_of(path))), "--format", "json"]
    main(args + ["--workers", "1"])
    one = capsys.readouterr().out
    calls = _spy(monkeypatch)
    reads = _spy_reads(monkeypatch)
    monkeypatch.setattr(capture, "usable_cpus", lambda: 6)
    # small: one process, one thread, without the cost of starting workers
    main(args)
    assert capsys.readouterr().out == one and calls == [] and reads == [False]
    # "big" (the threshold lowered): three processes on six CPUs, the same output
    monkeypatch.setattr(commands, "AUTO_WORKERS_BYTES", 1)
    main(args)
    assert capsys.readouterr().out == one and calls == [3]
    main(args + ["--workers", "0"])
    assert capsys.readouterr().out == one and calls == [3, 3]
    # two or three CPUs: one process whose capture is read ahead on a thread
    for n in ("2", "3"):
        main(args + ["--workers", n])
        assert capsys.readouterr().out == one and calls == [3, 3] and reads[-1] is True
    main(args + ["--workers", "1"])
    assert capsys.readouterr().out == one and reads[-1] is False
    # what cannot be read twice, and --follow, take one process
    gz = tmp_path / "s.pcap.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    main(["summary", str(gz)] + args[2:])
    got = json.loads(capsys.readouterr().out)
    assert calls == [3, 3] and len(got["associations"]) == len(json.loads(one)["associations"])
    main(args[:2] + ["--ports", " ".join(map(str, ports_of(path))), "--follow"])
    capsys.readouterr()
    assert calls == [3, 3]


def test_parallel_progress_reaches_the_capture_size():
    from fastdicom import capture
    path = REAL / "concurrent.pcap"

    class Recorder:
        def __init__(self):
            self.seen = []

        def set_read(self, n):
            self.seen.append(n)

        def close(self):
            self.closed = True

    rec = Recorder()
    doc = capture.summary_parallel([str(path)], capture.EngineOptions(ports=tuple(ports_of(path))), 2,
                                   progress=lambda: rec)
    assert doc["associations"]
    assert rec.seen and rec.seen == sorted(rec.seen) and rec.seen[-1] == path.stat().st_size
    assert rec.closed


def _early_run(capsys, monkeypatch, guess, argv):
    """``fastdicom`` as cli.entry runs it: walk_early(guess), then main(argv)
    (guess == argv but where a test makes the guess wrong).  Returns the
    output and whether cmd_summary took the early walk."""
    from fastdicom import capture, commands
    monkeypatch.setattr(capture, "usable_cpus", lambda: 2)
    taken = []
    take = commands._take_early

    def spy(*a):
        got = take(*a)
        taken.append(got is not None)
        return got
    monkeypatch.setattr(commands, "_take_early", spy)
    commands.walk_early(guess)
    early = commands._early
    try:
        code = main(argv)
    finally:
        commands.drop_early()
    out, err = capsys.readouterr()
    assert code == 0, err
    assert commands._early is None
    return out, early is not None, bool(taken and taken[0])


@pytest.mark.parametrize("extra", [(), ("--head-bytes", "100"), ("--head-bytes=0", "--redact"),
                                   ("--no-heuristic", "--slowest", "3", "--fail-on", "error"),
                                   ("--follow", "--format", "jsonl")])
def test_the_capture_walked_before_the_command_line_is_parsed(capsys, monkeypatch, extra):
    """cli.entry begins to walk the capture of ``summary FILE`` on two CPUs
    from a guess at the command line, before argparse is imported; the
    parsed command line takes it when it asks for the same: same output."""
    path = REAL / "store_syntaxes.pcap"
    fmt = () if "--format" in extra else ("--format", "json")
    argv = ["summary", str(path), "--ports", " ".join(map(str, ports_of(path))), *fmt, "--workers", "2",
            *extra]
    main(argv[:-2 - len(extra)] + ["--workers", "1", *extra])
    one = capsys.readouterr().out
    out, began, taken = _early_run(capsys, monkeypatch, argv, argv)
    # (the pure-Python core walks on the decoding thread: nothing to begin early)
    assert began == taken == (not PURE_PYTHON) and out == one


@pytest.mark.parametrize("guess", [
    ["summary", "X", "--ports", "1"],  # other engine options: stopped, walked again
    ["summary", "X", "--head-bytes", "7"],
    ["summary", "X", "--no-heuristic"],
])
def test_a_wrong_guess_is_stopped(capsys, monkeypatch, guess):
    path = REAL / "store_syntaxes.pcap"
    argv = ["summary", str(path), "--ports", " ".join(map(str, ports_of(path))), "--format", "json",
            "--workers", "2"]
    main(argv[:-1] + ["1"])
    one = capsys.readouterr().out
    guess = [str(path) if a == "X" else a for a in guess] + ["--workers", "2"]
    out, began, taken = _early_run(capsys, monkeypatch, guess, argv)
    assert began == (not PURE_PYTHON) and not taken and out == one


@pytest.mark.parametrize("guess", [
    ["summary", "X", "--port", "104"],  # abbreviations, options it does not know: no guess
    ["summary", "X", "--max-pdu", "1M"],
    ["summary", "X", "-ojson"],
    ["summary", "X", "X"],  # two captures
    ["summary", "X", "--workers", "1"],  # one CPU: nothing read ahead
    ["summary", "X", "--workers", "4"],  # processes, each with its share
    ["summary", "X", "--workers", "many"],  # what argparse would refuse
    ["summary", "X", "--hash"],  # every byte: read on the decoding thread
    ["summary", "X", "--ports"],
    ["summary", "missing.pcap"],
    ["summary", "-"],
    ["export", "X", "-o", "out"],
    ["summary"],
])
def test_no_guess_where_in_doubt(capsys, monkeypatch, guess):
    from fastdicom import capture, commands
    monkeypatch.setattr(capture, "usable_cpus", lambda: 2)
    monkeypatch.setattr(commands, "AUTO_WORKERS_BYTES", 1)
    path = REAL / "store_syntaxes.pcap"
    commands.walk_early([str(path) if a == "X" else a for a in guess])
    assert commands._early is None
