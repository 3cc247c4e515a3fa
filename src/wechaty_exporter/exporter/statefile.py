"""The state file: every bot's state and every log's read position, saved together.

Both are written in one atomic replace, so after a crash the saved positions and the saved
states always match: lines after the saved position are read again and applied once.
The file holds pending login QRs (credentials) (see `privatefiles`): the state dir is created
0700 and refused when others may write it; the file is written through a random, exclusive 0600
temporary name, read without following a link, and each QR it holds must pass the QR check again
(`qr.check_qr`: hosts and shapes), so a planted or stale file cannot serve a foreign QR.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wechaty_exporter.exporter.files import Cursor
from wechaty_exporter.logs.dialects.qr import DEFAULT_QR_HOSTS, check_qr
from wechaty_exporter.logs.state import BotState
from wechaty_exporter.privatefiles import (
    open_private,
    private_dir,
    remove_stale_temporaries,
    write_private_atomic,
)

log = logging.getLogger(__name__)
VERSION = 1
FILENAME = "exporter-state.json"


@dataclass(slots=True)
class Saved:
    bots: dict[str, BotState] = field(default_factory=dict)
    cursors: dict[str, tuple[str, Cursor]] = field(default_factory=dict)  # path → (bot, cursor)
    # bot → when its counters began (None: from its logs' first line); a bot is absent when the
    # file was written before this was kept (its start is then unknown).
    counting_since: dict[str, float | None] = field(default_factory=dict)


def _read(path: Path) -> bytes:
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _drop_foreign_qrs(
    bots: dict[str, BotState], qr_hosts: Sequence[str], qr_shapes: Sequence[str] | None
) -> None:
    """A saved QR counts only if it still passes the QR check; else it is dropped and counted."""
    for name, state in bots.items():
        if state.qr is not None:
            url, reason = check_qr(state.qr.qrcode, qr_hosts, qr_shapes)
            if url != state.qr.qrcode:
                log.warning("state file: bot %s: saved QR dropped (%s)", name, reason or "altered")
                state.qr = None
                state.rejected_qr_total += 1


def load(
    state_dir: Path,
    qr_hosts: Sequence[str] = DEFAULT_QR_HOSTS,
    qr_shapes: Sequence[str] | None = None,
) -> Saved:
    """The saved state, or an empty one when there is none or it cannot be used (logged).

    Each saved QR is checked again against `qr_hosts` and `qr_shapes` (None: the default
    shapes). Raises UnsafePathError when others may write `state_dir` (created 0700 if missing).
    """
    private_dir(state_dir)
    remove_stale_temporaries(state_dir, FILENAME)
    with contextlib.suppress(OSError):  # the fixed temporary name of earlier versions
        os.unlink(state_dir / (FILENAME + ".tmp"))
    path = state_dir / FILENAME
    try:
        raw = json.loads(_read(path))
        if raw.get("version") != VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {VERSION}")
        bots = {name: BotState.from_dict(body) for name, body in raw["bots"].items()}
        cursors = {
            p: (entry["bot"], Cursor.from_dict(entry["cursor"]))
            for p, entry in raw["files"].items()
        }
        counting = {
            name: None if at is None else float(at)
            for name, at in raw.get("counting_since", {}).items()
            if name in bots
        }
        _drop_foreign_qrs(bots, qr_hosts, qr_shapes)
    except FileNotFoundError:
        return Saved()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        bad = path.with_suffix(".corrupt")
        log.warning("state file %s unusable (%s); moved to %s, starting cold", path, exc, bad)
        with contextlib.suppress(OSError):
            path.replace(bad)
        return Saved()
    return Saved(bots, cursors, counting)


def encode(
    bots: Mapping[str, BotState],
    cursors: Mapping[str, tuple[str, Cursor]],
    counting_since: Mapping[str, float | None] | None = None,
) -> bytes:
    """The state file's bytes: a snapshot, taken where states and positions agree.

    `counting_since` (bot → when its counters began) is a key of its own, which older
    versions ignore, so the file stays version 1 both ways.
    """
    document: dict[str, Any] = {
        "version": VERSION,
        "bots": {name: state.to_dict() for name, state in bots.items()},
        "files": {p: {"bot": b, "cursor": c.to_dict()} for p, (b, c) in cursors.items()},
    }
    if counting_since is not None:
        document["counting_since"] = dict(counting_since)
    return json.dumps(document, separators=(",", ":")).encode()


def write(state_dir: Path, data: bytes) -> None:
    """Replace the state file with `data` atomically: a random, exclusive 0600 temporary file,
    fsync, rename, fsync the directory (blocking; callers on an event loop run it in a thread,
    one write at a time). Raises UnsafePathError when others may write `state_dir`."""
    write_private_atomic(private_dir(state_dir), FILENAME, data)
