"""deploy/systemd/: the units pass `systemd-analyze verify`, are sandboxed, and run real commands.

`systemd-analyze verify` works without a running systemd (as in this container and CI): it loads
the unit files as given and checks every directive, and that ExecStart's binary exists and is
executable. The units name the production path /opt/wechaty-exporter/bin/wechaty-exporter, so the
test verifies copies in which only that path points at this checkout's console script. Warnings
(an unknown key, a directive in the wrong section) print but exit 0: any output fails the test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.deploy.cli_flags import command_problems

from wechaty_exporter import environment
from wechaty_exporter.cli.flags import build_parser
from wechaty_exporter.delivery.settings import parse_receiver_settings

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
EXPORTER_UNIT = UNITS / "wechaty-exporter.service"
BOT_UNIT = UNITS / "wechaty-exporter-bot@.service"
FALLBACK_UNIT = UNITS / "wechaty-exporter-fallback.service"
FALLBACK_CONFIG = UNITS / "fallback.yml.example"
ENV_EXAMPLE = UNITS / "wechaty-exporter.env.example"
INSTALLED = "/opt/wechaty-exporter/bin/wechaty-exporter"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 (locked down) .. 10 (exposed)


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail(
            "systemd-analyze not found: apt-get install -y systemd (scripts/setup.sh --test does)",
            pytrace=False,
        )
    return path


def _script() -> str:
    script = Path(sys.executable).parent / "wechaty-exporter"
    found = str(script) if script.exists() else shutil.which("wechaty-exporter")
    if not found:
        pytest.fail("the wechaty-exporter console script is not installed (pip install -e .)")
    return found


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units, with ExecStart's production path replaced by this checkout's console script."""
    for unit in (EXPORTER_UNIT, BOT_UNIT, FALLBACK_UNIT):
        text = unit.read_text()
        assert INSTALLED in text, f"{unit.name}: ExecStart should run {INSTALLED}"
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, _script()))
    return tmp_path


def _directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize(
    "unit",
    [
        "wechaty-exporter.service",
        "wechaty-exporter-bot@alice.service",
        "wechaty-exporter-fallback.service",
    ],
)
def test_systemd_analyze_verify(units: Path, unit: str) -> None:
    done = subprocess.run(
        [_systemd_analyze(), "verify", str(units / unit)],
        capture_output=True, text=True, timeout=60, check=False, cwd=units,
    )  # fmt: skip
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and output == "", f"systemd-analyze verify {unit}:\n{output}"


@pytest.mark.parametrize(
    "unit",
    ["wechaty-exporter.service", "wechaty-exporter-bot@.service", FALLBACK_UNIT.name],
)
def test_sandboxing_exposure(units: Path, unit: str) -> None:
    done = subprocess.run(
        [_systemd_analyze(), "security", "--offline=yes", "--no-pager", str(units / unit)],
        capture_output=True, text=True, timeout=60, check=False, cwd=units,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, f"no exposure level in:\n{done.stdout}{done.stderr}"
    assert float(match.group(1)) <= MAX_EXPOSURE, done.stdout


@pytest.mark.parametrize("unit", [EXPORTER_UNIT, BOT_UNIT, FALLBACK_UNIT], ids=lambda p: p.name)
def test_exec_start_runs_real_subcommands_and_flags(unit: Path) -> None:
    (exec_start,) = _directives(unit)["ExecStart"]
    binary, *argv = exec_start.split()
    assert binary == INSTALLED
    assert command_problems(argv, unit.name) == []


def test_the_exporter_may_read_what_the_bots_write() -> None:
    exporter, bot = _directives(EXPORTER_UNIT), _directives(BOT_UNIT)
    assert bot["Group"] == ["wechaty-bots"]
    assert "wechaty-bots" in exporter["SupplementaryGroups"][0].split()
    assert bot["LogsDirectoryMode"] == ["0750"] and bot["UMask"] == ["0027"]
    for unit in (exporter, bot):
        assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
        assert unit["CapabilityBoundingSet"] == [""] and unit["Restart"] == ["on-failure"]
        assert "@system-service" in unit["SystemCallFilter"]
        assert unit["User"] != ["root"] and unit["StateDirectory"]


def test_fallback_config_example_parses_with_its_credentials(tmp_path: Path) -> None:
    """fallback.yml.example reads the files the unit's LoadCredential= hands over."""
    unit = _directives(FALLBACK_UNIT)
    credentials = Path("/run/credentials") / FALLBACK_UNIT.name
    names = {c.split(":", 1)[0] for c in unit["LoadCredential"]}
    text = FALLBACK_CONFIG.read_text()
    assert {str(credentials / name) for name in names} <= set(
        re.findall(r"/run/\S+?(?=[\]\s])", text)
    )
    contents = {
        "fallback-urls": "mailto://127.0.0.1:25?from=bot@example.com&to=oncall@example.com\n",
        "receiver-token": "test-token\n",
    }
    for name in names:
        (tmp_path / name).write_text(contents[name])
    raw = yaml.safe_load(text.replace(str(credentials), str(tmp_path)))
    errors: list[str] = []
    parsed = parse_receiver_settings(raw["receiver"], errors)
    assert errors == [] and parsed is not None
    assert parsed.messenger.kind == "apprise" and parsed.auth is not None
    assert parsed.listen_address == "127.0.0.1:9413"  # the `fallback` URL in alertmanager.yml


def test_env_example_names_only_real_flags() -> None:
    """Every WECHATY_EXPORTER_* variable in the example is one `serve` reads."""
    known = {
        environment.variable(action)
        for parser, action in environment.flags(build_parser())
        if parser.prog.endswith(" serve")
    }
    names = re.findall(r"^#?(WECHATY_EXPORTER_\w+)=", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert names, "no variables in the example"
    assert sorted(set(names) - known) == []
