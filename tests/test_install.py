"""The README's install path: the wheel built here holds the whole package, installs and runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import wechaty_exporter

REPO = Path(__file__).resolve().parents[1]
SRC = Path(wechaty_exporter.__file__).parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python3 -m pip wheel --no-deps -w dist .`, as the README says (into a temp dir)."""
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("wechaty_exporter-*.whl")
    return path


def test_the_readme_gives_the_install_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "python3 -m pip wheel --no-deps -w dist ." in readme
    assert "pipx install" in readme and "wechaty-exporter serve --log" in readme


def test_the_wheel_holds_every_module_and_the_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in SRC.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            name = "wechaty_exporter/" + path.relative_to(SRC).as_posix()
            assert name in names, f"{name} is missing from {wheel.name}"
    metadata = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert (
        "wechaty-exporter = wechaty_exporter.cli:main"
        in zipfile.ZipFile(wheel).read(metadata).decode()
    )


def test_the_installed_wheel_runs(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path
        )

    where = run("-c", "import wechaty_exporter; print(wechaty_exporter.__file__)")
    assert where.stdout.startswith(str(target)), "the test ran the checkout, not the wheel"
    assert run("-m", "wechaty_exporter", "--version").stdout.startswith("wechaty-exporter ")
    sample = target / "wechaty_exporter" / "samples" / "alice.log"
    replay = run("-m", "wechaty_exporter", "replay", str(sample))
    assert replay.returncode == 0, replay.stderr
    (bot,) = json.loads(replay.stdout)["bots"]
    assert bot["bot"] == "alice" and bot["logged_in"] is True
