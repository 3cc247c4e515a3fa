"""The whole exporter through each rotation kind, then a restart: every event counted once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from tests.helpers import append, eventually

from wechaty_exporter.exporter.app import create_exporter_app
from wechaty_exporter.exporter.monitor import Monitor
from wechaty_exporter.exporter.settings import ExporterSettings


def rename_create(log: Path) -> None:
    log.rename(log.with_suffix(".log.1"))
    log.touch()


def rename_create_later(log: Path) -> None:
    log.rename(log.with_suffix(".log.1"))


def copytruncate(log: Path) -> None:
    shutil.copy(log, log.with_suffix(".log.1"))
    with log.open("r+") as f:
        f.truncate(0)


def truncate_in_place(log: Path) -> None:
    with log.open("r+") as f:
        f.truncate(0)


def delete_recreate(log: Path) -> None:
    log.unlink()
    log.touch()


def symlink_flip(log: Path) -> None:
    target = Path(os.readlink(log))
    new = target.with_name(target.name + ".next")
    new.touch()
    tmp = log.with_name("flip.tmp")
    tmp.symlink_to(new)
    tmp.replace(log)


ROTATIONS: dict[str, Callable[[Path], None]] = {
    "rename+create": rename_create,
    "rename, create later": rename_create_later,
    "copytruncate": copytruncate,
    "truncate in place": truncate_in_place,
    "delete+recreate": delete_recreate,
    "symlink flipped": symlink_flip,
}


async def start(tmp_path: Path, log: Path, aiohttp_client: Any) -> TestClient:
    settings = ExporterSettings(
        bots=(("bob", (str(log),)),), state_dir=tmp_path / "state", poll_interval=0.1
    )
    client: TestClient = await aiohttp_client(create_exporter_app(Monitor(settings)))
    await eventually(lambda: _ok(client, "/-/ready"))
    return client


async def _ok(client: TestClient, path: str) -> bool:
    return (await client.get(path)).status == 200


async def bob(client: TestClient) -> dict[str, Any]:
    body = await (await client.get("/api/v1/bots")).json()
    return dict(body["bots"][0])


@pytest.mark.parametrize("rotation", list(ROTATIONS))
async def test_rotation_then_restart(tmp_path: Path, aiohttp_client: Any, rotation: str) -> None:
    log = tmp_path / "bob.log"
    if rotation == "symlink flipped":
        real = tmp_path / "real" / "bob-1.log"
        real.parent.mkdir()
        real.touch()
        log.symlink_to(real)
    append(log, "09:00:00 INFO StarterBot Contact<Bob> login")
    client = await start(tmp_path, log, aiohttp_client)
    assert (await bob(client))["logins_total"] == 1

    append(log, "09:10:00 INFO StarterBot Contact<Bob> logout")
    await eventually(lambda: _counts(client, 1, 1))
    ROTATIONS[rotation](log)
    append(log, "09:20:00 INFO StarterBot Contact<Bob> login")
    await eventually(lambda: _counts(client, 2, 1))
    append(log, "09:30:00 INFO StarterBot Contact<Bob> logout")
    await eventually(lambda: _counts(client, 2, 2))
    await client.close()  # a clean stop saves state

    again = await start(tmp_path, log, aiohttp_client)
    assert await _counts(again, 2, 2), await bob(again)
    append(log, "09:40:00 INFO StarterBot Contact<Bob> login")
    await eventually(lambda: _counts(again, 3, 2))
    state = await bob(again)
    assert state["logged_in"] is True
    # Lines are counted as read, so a line read twice (or missed) would show here.
    metrics = await (await again.get("/metrics")).text()
    assert 'wechaty_log_lines_total{bot="bob"} 5.0' in metrics


async def _counts(client: TestClient, logins: int, logouts: int) -> bool:
    b = await bob(client)
    return (b["logins_total"], b["logouts_total"]) == (logins, logouts)
