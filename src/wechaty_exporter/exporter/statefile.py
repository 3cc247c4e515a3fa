"""The state file: every bot's state and every log's read position, saved together.

Both are written in one atomic replace, so after a crash the saved positions and the saved
states always match: lines after the saved position are read again and applied once.
The file holds pending login QRs (credentials), so it is created readable by its owner only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wechaty_exporter.exporter.files import Cursor
from wechaty_exporter.logs.state import BotState

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


def load(state_dir: Path) -> Saved:
    """The saved state, or an empty one when there is none or it cannot be used (logged)."""
    path = state_dir / FILENAME
    try:
        raw = json.loads(path.read_bytes())
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
    """Replace the state file with `data` atomically: temp file, fsync, rename, fsync the
    directory (blocking; callers on an event loop run it in a thread, one write at a time)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / FILENAME
    tmp = state_dir / (FILENAME + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
