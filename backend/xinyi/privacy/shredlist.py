"""The shred list: every closed account, one JSON line each, in a file outside the database.

A database restored from a backup taken before a closure still holds that citizen's wrapped
key. ``xinyi restore-check`` reads this file and closes each listed account again, so a
restore cannot bring a shredded person back. A line is written and fsynced before the
closing unit commits: a closure whose commit then failed is listed, and a replay completes
it (the citizen asked, with the right password).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    subject_bidx: bytes
    account_id: uuid.UUID
    shredded_at: datetime


def append(path: Path, entry: Entry) -> None:
    """One line, flushed and fsynced (and the folder, the first time), before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    line = json.dumps({"subject_bidx": entry.subject_bidx.hex(),
                       "account_id": str(entry.account_id),
                       "shredded_at": entry.shredded_at.isoformat()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def entries(path: Path) -> Iterator[Entry]:
    """Every entry in the file, oldest first; none if there is no file. A torn last line (a
    crash while writing) is skipped: its closure never committed."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                raw = json.loads(line)
                yield Entry(bytes.fromhex(raw["subject_bidx"]), uuid.UUID(raw["account_id"]),
                            datetime.fromisoformat(raw["shredded_at"]))
            except (ValueError, KeyError, TypeError):
                continue
