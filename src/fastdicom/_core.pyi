"""Type stubs of the compiled core (_core.pyx); the same API as _pycore."""

from collections.abc import Buffer, Iterable
from typing import Any

from .errors import CaptureFormatError as CaptureFormatError
from .events import *  # noqa: F403

IMPLEMENTATION: str
DEFAULT_PORTS: tuple[int, ...]
COMMAND_GROUP_LENGTH: bytes

SYNC_WINDOW: int
MAX_PIECES: int
MAX_OOO_SEGMENTS: int
MAX_ASSOC_SYNC: int
MAX_FIXED_PDU: int
PCAP_MAX_RECORD: int
PCAPNG_MAX_BLOCK: int
MAX_RESYNC_SECONDS: int
C_REJECT: int
C_NEED: int
C_ACCEPT: int
C_TENTATIVE: int

def check_candidate(b: Buffer, p: int, n: int, sync_max: int) -> tuple[int, int]: ...
def parse_max_length(body: Buffer) -> int: ...
def fnv1a64(data: Buffer) -> int: ...
def walk_dataset(buf: Buffer, syntax: int, *args: Any, **kwargs: Any) -> Any: ...

class Engine:
    implementation: str
    ports: frozenset[int]
    heuristic: bool
    ooo_budget: int
    data_limit: int
    chunk_size: int
    max_assoc_pdu: int
    max_command: int
    max_pdu: int
    max_flows: int
    idle_timeout: int
    heuristic_window: int
    sync_max_pdu: int
    part_k: int
    part_n: int
    history: int

    def __init__(
        self,
        ports: Iterable[int] = ...,
        heuristic: bool = True,
        ooo_budget: int = ...,
        data_limit: int = -1,
        chunk_size: int = ...,
        max_assoc_pdu: int = ...,
        max_command: int = ...,
        max_pdu: int = ...,
        max_flows: int = 100_000,
        idle_timeout: int = ...,
        heuristic_window: int = ...,
        sync_max_pdu: int = ...,
        partition: tuple[int, int] = (0, 1),
        history: int = 16384,
    ) -> None: ...
    def feed(self, data: Buffer) -> None: ...
    def finish(self) -> None: ...
    def pop_events(self) -> list[tuple[Any, ...]]: ...
    def stats(self) -> dict[str, int | str]: ...
    @property
    def counters(self) -> dict[str, int]: ...
