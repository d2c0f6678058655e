"""A bounded on-disk spool: what could not reach Redis waits here, in order, until it can.

Layout: `<root>/<host>-<pid>-<random>/<seq>.jsonl`, one directory per live process, held
by an exclusive `flock` on its `.lock` file. A directory whose lock can be taken belongs
to a process that died: it is adopted and replayed first, so nothing spooled before a
crash or restart is lost. Each line is one JSON entry; a torn last line (a crash in the
middle of a write) is skipped and counted when replayed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

SEGMENT_BYTES = 8 << 20


class SpoolFullError(RuntimeError):
    """The spool reached its size bound: the entry was not written."""


@dataclass(slots=True)
class SpoolStats:
    entries_written: int = 0
    entries_replayed: int = 0
    bytes_on_disk: int = 0
    full_rejections: int = 0
    torn_lines: int = 0
    adopted_dirs: int = 0


class Spool:
    def __init__(
        self, root: Path | str, max_bytes: int = 256 << 20, *, fsync: bool = False
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self.stats = SpoolStats()
        self.root.mkdir(parents=True, exist_ok=True)
        self.dir = self.root / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir()
        self._lock_fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._seq = 0
        self._current: Path | None = None
        self._current_fd: int | None = None
        self._current_bytes = 0
        self._closed: list[Path] = []  # segments ready to replay, oldest first
        self._adopted_fds: list[int] = []
        self._adopt_dead()

    # --- writing --------------------------------------------------------------------

    def append(self, entries: list[dict]) -> None:
        """Write entries (all or none); raise SpoolFullError past the size bound."""
        self.append_lines([orjson.dumps(e) for e in entries])

    def append_lines(self, lines: list[bytes]) -> None:
        """`append` for entries already serialized (one JSON document each, no newline)."""
        data = b"".join(line + b"\n" for line in lines)
        if self.stats.bytes_on_disk + len(data) > self.max_bytes:
            self.stats.full_rejections += len(lines)
            raise SpoolFullError(
                f"spool {self.root} is full ({self.stats.bytes_on_disk} of {self.max_bytes} bytes); "
                "Redis has been unreachable too long: raise the bound or restore Redis"
            )
        if self._current_fd is None or self._current_bytes >= SEGMENT_BYTES:
            self._open_segment()
        assert self._current_fd is not None
        os.write(self._current_fd, data)
        if self.fsync:
            os.fsync(self._current_fd)
        self._current_bytes += len(data)
        self.stats.bytes_on_disk += len(data)
        self.stats.entries_written += len(lines)

    def _open_segment(self) -> None:
        self._close_segment()
        self._seq += 1
        self._current = self.dir / f"{self._seq:012d}.jsonl"
        self._current_fd = os.open(self._current, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        self._current_bytes = 0

    def _close_segment(self) -> None:
        if self._current_fd is not None and self._current is not None:
            os.fsync(self._current_fd)
            os.close(self._current_fd)
            self._closed.append(self._current)
        self._current, self._current_fd, self._current_bytes = None, None, 0

    # --- replaying ------------------------------------------------------------------

    def is_empty(self) -> bool:
        return not self._closed and self._current_bytes == 0

    def next_segment(self) -> Path | None:
        """The oldest segment to replay; the one being written is closed first if it is all."""
        if not self._closed and self._current_bytes > 0:
            self._close_segment()
        return self._closed[0] if self._closed else None

    def read(self, segment: Path) -> Iterator[dict]:
        with open(segment, "rb") as f:
            for line in f:
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    self.stats.torn_lines += 1
                    log.error("spool %s: skipped a torn line (%d bytes)", segment, len(line))

    def done(self, segment: Path, n_entries: int) -> None:
        """The segment reached Redis: forget it."""
        size = segment.stat().st_size
        segment.unlink()
        self._closed.remove(segment)
        self.stats.bytes_on_disk -= size
        self.stats.entries_replayed += n_entries
        parent = segment.parent
        if parent != self.dir and not any(parent.glob("*.jsonl")):
            shutil.rmtree(parent, ignore_errors=True)

    def _adopt_dead(self) -> None:
        for other in sorted(p for p in self.root.iterdir() if p.is_dir() and p != self.dir):
            lock = other / ".lock"
            try:
                fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # its process is alive and replays it itself
            # Keep the lock: no other new process adopts the same directory.
            segments = sorted(other.glob("*.jsonl"))
            if not segments:
                os.close(fd)
                shutil.rmtree(other, ignore_errors=True)
                continue
            self._adopted_fds.append(fd)
            self._closed.extend(segments)
            self.stats.bytes_on_disk += sum(s.stat().st_size for s in segments)
            self.stats.adopted_dirs += 1
            log.warning(
                "spool: replaying %d segment(s) left by a stopped process in %s",
                len(segments),
                other,
            )

    def close(self) -> None:
        """Close the files; what is still spooled stays on disk for the next process."""
        self._close_segment()
        for fd in [*self._adopted_fds, self._lock_fd]:
            with contextlib.suppress(OSError):
                os.close(fd)
        if not any(self.dir.glob("*.jsonl")):
            shutil.rmtree(self.dir, ignore_errors=True)
