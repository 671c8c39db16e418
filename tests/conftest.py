"""Shared fixtures.  Tests never read ../shared: fixtures live in tests/data."""

import importlib
import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"


def _load(name):
    return importlib.import_module("fastdicom." + name)


@pytest.fixture(params=["py", "c"])
def core_impl(request):
    """Both core twins: every core test runs against each."""
    return _load("_pycore" if request.param == "py" else "_core")


@pytest.fixture(params=["py", "c"])
def walker(request):
    """Both tag-walker twins (``walk_dataset``)."""
    if request.param == "py":
        return _load("_pytagwalk").walk_dataset
    return _load("_core").walk_dataset


def pytest_report_header(config):
    pure = os.environ.get("FASTDICOM_PURE_PYTHON", "")
    return f"fastdicom core: {'pure Python' if pure not in ('', '0') else 'compiled'}"
