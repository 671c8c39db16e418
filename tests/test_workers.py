"""``summary --workers N`` is byte-identical to ``--workers 1``."""

import pytest

from fastdicom.cli import main
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
    assert _json(capsys, path, ports_of(path), 3) == one


@pytest.mark.parametrize("extra", [("--hash",), ("--redact",), ("--no-heuristic",)])
def test_workers_identical_with_options(capsys, extra):
    path = REAL / "store_syntaxes.pcap"
    assert _json(capsys, path, ports_of(path), 2, *extra) == _json(capsys, path, ports_of(path), 1, *extra)


@pytest.mark.parametrize("mode", ["drop", "midstream", "reorder"])
def test_workers_identical_on_damaged_captures(capsys, tmp_path, mode):
    src = REAL / "concurrent.pcap"
    p = tmp_path / "m.pcap"
    data = mutate(src.read_bytes(), mode, seed=4)
    p.write_bytes(data[:-100] if mode == "drop" else data)  # and a truncated last record
    assert _json(capsys, p, ports_of(src), 2) == _json(capsys, p, ports_of(src), 1)


def test_several_captures_with_workers(capsys):
    a, b = REAL / "reject_abort.pcap", REAL / "query_retrieve.pcap"
    args = ["summary", str(a), str(b), "--ports", "104 11112 5678 11113", "--format", "json"]
    main(args + ["--workers", "1"])
    one = capsys.readouterr().out
    main(args + ["--workers", "2"])
    assert capsys.readouterr().out == one
