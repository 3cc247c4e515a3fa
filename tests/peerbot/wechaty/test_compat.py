"""The python-wechaty shim: wechaty imports on this Python, through one module, patched once."""

from __future__ import annotations

import ast
import importlib
import logging
import subprocess
import sys
from pathlib import Path

import wechaty_exporter
from wechaty_exporter.peerbot import compat as wechaty_compat
from wechaty_exporter.peerbot.messenger import PuppetService, new_bot

SRC = Path(wechaty_exporter.__file__).parent
WECHATY_PACKAGES = {"wechaty", "wechaty_puppet", "wechaty_puppet_service", "wechaty_grpc"}


def test_wechaty_imports_on_this_python() -> None:
    assert sys.version_info >= (3, 11)
    assert wechaty_compat.Wechaty.__module__ == "wechaty.wechaty"
    assert wechaty_compat.ScanStatus.Waiting.value == 2


def test_the_shim_is_still_needed(tmp_path: Path) -> None:
    # If this fails, upstream fixed wechaty/python-wechaty#385: drop the shim.
    probe = subprocess.run(
        [sys.executable, "-c", "import wechaty"], capture_output=True, text=True, cwd=tmp_path
    )
    assert probe.returncode != 0
    assert "mutable default <class 'wechaty_puppet.schemas.puppet.PuppetOptions'>" in probe.stderr


def test_the_hash_fix_is_applied_exactly_once() -> None:
    from wechaty_puppet.schemas.puppet import PuppetOptions

    assert PuppetOptions.__hash__ is object.__hash__
    importlib.reload(wechaty_compat)  # a second import is harmless and changes nothing
    assert PuppetOptions.__hash__ is object.__hash__

    patching = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if "PuppetOptions.__hash__ =" in path.read_text(encoding="utf-8")
    ]
    assert patching == ["peerbot/compat.py"]


def test_only_the_compat_module_imports_wechaty() -> None:
    importers = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(name.split(".")[0] in WECHATY_PACKAGES for name in names):
                importers.add(path.relative_to(SRC).as_posix())
    assert importers == {"peerbot/compat.py"}


def test_each_bot_gets_its_own_puppet_options() -> None:
    # WechatyOptions' default PuppetOptions is one shared instance; new_bot must not use it.
    first = new_bot(PuppetService(endpoint="127.0.0.1:1001", token="one"))
    second = new_bot(PuppetService(endpoint="127.0.0.1:1002", token="two"))
    assert first.puppet.options is not second.puppet.options
    assert (first.puppet.options.end_point, first.puppet.options.token) == ("127.0.0.1:1001", "one")
    assert (second.puppet.options.end_point, second.puppet.options.token) == (
        "127.0.0.1:1002",
        "two",
    )
    assert wechaty_compat.WechatyOptions().puppet_options.token is None


def test_the_plugin_server_is_kept_off_5000_and_off_other_interfaces() -> None:
    bot = new_bot(PuppetService(endpoint="127.0.0.1:1001", token="t"))
    assert bot._plugin_manager.endpoint[0] == "127.0.0.1"
    assert bot._plugin_manager.endpoint[1] != 5000


def test_the_token_stays_out_of_the_log() -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    puppet_log = logging.getLogger("PuppetService")
    puppet_log.addHandler(handler)
    try:
        new_bot(PuppetService(endpoint="127.0.0.1:1001", token="s3cret-token"))
    finally:
        puppet_log.removeHandler(handler)
    assert records, "PuppetService no longer logs at construction: drop the redaction?"
    assert all("s3cret" not in record.getMessage() for record in records)
