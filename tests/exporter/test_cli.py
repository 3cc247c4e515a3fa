"""The command line: help, exit codes, replay output, check-config."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wechaty_exporter.cli import main

SAMPLES = Path(__file__).parents[2] / "src" / "wechaty_exporter" / "samples"
DIALECTS = Path(__file__).parents[1] / "data" / "dialects"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", *args], capture_output=True, text=True
    )


def test_help_names_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    for command in ("serve", "replay", "check-config", "receiver"):
        assert command in out.stdout
    serve = run("serve", "--help").stdout
    assert "--log NAME=PATH" in serve and "--state-dir" in serve


def test_replay_json_on_the_samples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(SAMPLES / "alice.log"), str(SAMPLES / "bob.log")]) == 0
    bots = {b["bot"]: b for b in json.loads(capsys.readouterr().out)["bots"]}
    assert bots["alice"]["logged_in"] is True and bots["alice"]["user"] == "Alice Bot"
    assert bots["alice"]["qr"] is None
    assert bots["bob"]["logged_in"] is False
    assert bots["bob"]["qr"] == "https://login.weixin.qq.com/l/4ZqF9mXwTg=="
    local = datetime(2026, 11, 25, 9, 47, 56, 2000).astimezone()  # asctime is local time
    assert bots["bob"]["last_logout"] == local.astimezone(UTC).isoformat(timespec="milliseconds")


def test_replay_prometheus(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--bot", "bob", "--format", "prometheus", str(SAMPLES / "bob.log")]) == 0
    samples = {
        (s.name, s.labels.get("bot")): s.value
        for f in text_string_to_metric_families(capsys.readouterr().out)
        for s in f.samples
    }
    assert samples[("wechaty_bot_logged_in", "bob")] == 0
    assert samples[("wechaty_qr_pending", "bob")] == 1
    assert samples[("wechaty_log_errors_total", "bob")] == 1


def test_replay_names_bots_from_files_and_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = tmp_path / "carol-out.log", tmp_path / "carol-error.log"
    out.write_text("09:00:00 INFO StarterBot Contact<Carol> login\n")
    err.write_text("09:00:05 ERR StarterBot something broke\n")
    assert main(["replay", str(out), str(err), f"dave={out}"]) == 0
    bots = {b["bot"]: b for b in json.loads(capsys.readouterr().out)["bots"]}
    assert set(bots) == {"carol", "dave"}
    assert len(bots["carol"]["log_files"]) == 2


# The samples' expectations count Login events; the state machine counts logins, and a Confirmed
# scan after a logout is a re-login (python-wechaty writes no second login line).
STATE_COUNTS = {"python-wechaty.log": {"logins": 2}}


def test_every_dialect_has_a_sample() -> None:
    expected = json.loads((DIALECTS / "expected.json").read_text())
    assert len(expected) >= 9
    assert sorted(expected) == sorted(p.name for p in DIALECTS.glob("*.log"))


@pytest.mark.parametrize("name", sorted(p.name for p in DIALECTS.glob("*.log")))
def test_replay_every_dialect_sample(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected = json.loads((DIALECTS / "expected.json").read_text())[name]
    expected.update(STATE_COUNTS.get(name, {}))
    assert main(["replay", "--bot", "x", str(DIALECTS / name)]) == 0
    bot = json.loads(capsys.readouterr().out)["bots"][0]
    assert bot["logged_in"] == expected["logged_in"]
    assert bot["qr"] == expected["qr"]
    assert bot["user"] == expected["user"]
    assert bot["logins_total"] == expected["logins"]
    assert bot["logouts_total"] == expected["logouts"]
    assert bot["qr_codes_total"] == expected["qr_codes"]


def test_check_config(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("bots:\n  bob:\n    logs: [/var/log/bob.log]\n")
    ok = run("check-config", str(good))
    assert ok.returncode == 0 and "OK (1 bot(s), 1 log file(s)" in ok.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("exporter:\n  poll_interval: soon\nbots:\n  bob: {}\n  'x y': {logs: [a]}\n")
    out = run("check-config", str(bad))
    assert out.returncode == 1, "a file with problems exits 1, as --help says"
    assert "1 when it has problems" in " ".join(run("check-config", "--help").stdout.split())
    assert "3 problem(s)" in out.stderr
    assert "exporter.poll_interval" in out.stderr and "bots.bob.logs: required" in out.stderr
    assert run("check-config").returncode == 2  # usage: FILE missing


def test_serve_without_logs_says_what_to_do() -> None:
    out = run("serve")
    assert out.returncode == 2 and "give --log NAME=PATH" in out.stderr


def test_serve_with_bad_log_flag() -> None:
    out = run("serve", "--log", "bob")
    assert out.returncode == 2 and "--log expects NAME=PATH" in out.stderr


def test_serve_with_unreadable_token_file(tmp_path: Path) -> None:
    out = run("serve", "--log", f"bob={tmp_path}/b.log", "--web.qr-token-file", "/nonexistent")
    assert out.returncode == 2 and "cannot read /nonexistent" in out.stderr


def test_serve_on_a_busy_address_fails_before_claiming_to_serve(tmp_path: Path) -> None:
    log = tmp_path / "bob.log"
    log.write_text("")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "wechaty_exporter", "serve", "--log", f"bob={log}",
             "--web.listen-address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "serving on" not in out.stderr and "watching" not in out.stderr
