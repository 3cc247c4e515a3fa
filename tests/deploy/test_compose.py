"""Dockerfile and deploy/docker-compose.yml, checked without a Docker engine.

No engine runs here or in CI, so: the compose file parses; every file it mounts, builds from or
reads exists; every command of this project's image uses real subcommands and flags; the
`render` service's arguments really render configs that promtool and amtool accept; the bots'
and the fallback receiver's config files pass the project's own parsers; and each log the
exporter follows is the self-log a bot writes into the same volume.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from tests.deploy.cli_flags import command_problems
from tests.integration.harness import Tool, require_binary

from wechaty_exporter.config import load_config
from wechaty_exporter.delivery.settings import parse_receiver_settings
from wechaty_exporter.peerbot.settings import parse_bot_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
IMAGE = "wechaty-exporter:latest"
RENDER = DEPLOY / "prometheus" / "profiles" / "render.py"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def _interpolate(value: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with made-up values."""
    return re.sub(
        r"\$\{(\w+)(?::([-?])([^}]*))?\}",
        lambda m: m.group(3) if m.group(2) == "-" else f"test-{m.group(1).lower()}",
        value,
    )


def _ours(service: dict[str, Any]) -> bool:
    return service.get("image") == IMAGE and "entrypoint" not in service


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target → source of each volume entry."""
    out = {}
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        out[target] = source
    return out


def test_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"exporter", "alice", "bob", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert services["render"]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_referenced_file_exists(compose: dict[str, Any]) -> None:
    missing = []
    build = compose["services"]["render"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    if not (context / build["dockerfile"]).is_file():
        missing.append(f"{context / build['dockerfile']}")
    for name, service in compose["services"].items():
        for source in _mounts(service).values():
            if source.startswith("."):
                if not (DEPLOY / source).exists():
                    missing.append(f"{name}: {source}")
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: undeclared secret {secret}"
    for name, secret in compose["secrets"].items():
        # Secrets are created by the operator (the file's header says how), never committed.
        path = DEPLOY / secret["file"]
        assert path.parent == DEPLOY / "secrets", f"secret {name} outside deploy/secrets/"
        assert secret["file"].removeprefix("./") in COMPOSE.read_text()
    assert (DEPLOY / "secrets" / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]
    assert missing == []


def test_commands_use_real_subcommands_and_flags(compose: dict[str, Any]) -> None:
    problems = []
    for name, service in compose["services"].items():
        if _ours(service):
            argv = [_interpolate(str(a)) for a in service["command"]]
            problems += command_problems(argv, f"service {name}")
    assert problems == []


def test_render_service_writes_configs_promtool_and_amtool_accept(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    service = compose["services"]["render"]
    assert service["entrypoint"] == ["python", "/deploy/prometheus/profiles/render.py"]
    assert _mounts(service)["/deploy"] == "./"
    profile, out_dir, *flags = [_interpolate(str(a)) for a in service["command"]]
    assert _mounts(service)[out_dir] == "rendered"
    token = tmp_path / "receiver-token"
    token.write_text("test-token\n")
    flags = [
        f"--credentials-file={token}" if f.startswith("--credentials-file=") else f for f in flags
    ]
    done = subprocess.run(
        [sys.executable, str(RENDER), profile, str(tmp_path / "out"), *flags],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    promtool = Tool(require_binary("promtool", "prometheus"))
    amtool = Tool(require_binary("amtool", "prometheus-alertmanager"))
    promtool.run("check", "config", str(tmp_path / "out" / "prometheus.yml"))
    amtool.run("check-config", str(tmp_path / "out" / "alertmanager.yml"))
    rendered = yaml.safe_load((tmp_path / "out" / "alertmanager.yml").read_text())
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in rendered["receivers"]}
    assert urls["peer-alice"] == "http://alice:9840/alerts"
    assert urls["peer-bob"] == "http://bob:9840/alerts"
    # Prometheus and Alertmanager read what render wrote, from the same volume.
    for name, config in (("prometheus", "prometheus.yml"), ("alertmanager", "alertmanager.yml")):
        other = compose["services"][name]
        (target,) = [t for t, s in _mounts(other).items() if s == "rendered"]
        assert f"--config.file={target}/{config}" in other["command"]


def _with_test_secrets(doc: Any, tmp_path: Path) -> Any:
    """The same document, each /run/secrets/NAME replaced by a file that exists here."""
    if isinstance(doc, dict):
        return {k: _with_test_secrets(v, tmp_path) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_with_test_secrets(v, tmp_path) for v in doc]
    if isinstance(doc, str) and doc.startswith("/run/secrets/"):
        path = tmp_path / PurePosixPath(doc).name
        path.write_text("test-secret\n")
        return str(path)
    return doc


@pytest.mark.parametrize("bot", ["alice", "bob"])
def test_bot_configs_parse_and_their_self_logs_are_what_the_exporter_follows(
    compose: dict[str, Any], bot: str, tmp_path: Path
) -> None:
    services = compose["services"]
    service = services[bot]
    config_flag = next(a for a in service["command"] if a.startswith("--config="))
    config_path = PurePosixPath(config_flag.split("=", 1)[1])
    host_dir = _mounts(service)[str(config_path.parent)]
    raw = yaml.safe_load((DEPLOY / host_dir / config_path.name).read_text())
    errors: list[str] = []
    settings = parse_bot_settings(_with_test_secrets(raw["bot"], tmp_path), errors, "bot")
    assert errors == [] and settings is not None
    assert settings.name == bot
    self_log = settings.self_log_path()
    assert self_log is not None
    volume = _mounts(service)[str(self_log.parent)]
    exporter = services["exporter"]
    exporter_flag = next(a for a in exporter["command"] if a.startswith("--config="))
    exporter_path = PurePosixPath(exporter_flag.split("=", 1)[1])
    exporter_dir = _mounts(exporter)[str(exporter_path.parent)]
    exporter_config = load_config(DEPLOY / exporter_dir / exporter_path.name).exporter
    assert bot in exporter_config.self_log_qr_bots  # QRs only from the unforgeable self-log
    (followed_path,) = dict(exporter_config.bots)[bot]
    followed = PurePosixPath(followed_path)
    assert _mounts(exporter)[str(followed.parent)] == volume
    assert followed.name == self_log.name
    # The other bot is whom this one tells the admin about.
    admin_flag = next(a for a in service["command"] if a.startswith("--admin="))
    assert admin_flag.split("=")[1] == ({"alice", "bob"} - {bot}).pop()


def test_fallback_receiver_config_parses(compose: dict[str, Any], tmp_path: Path) -> None:
    service = compose["services"]["fallback"]
    config_flag = next(a for a in service["command"] if a.startswith("--config="))
    config_path = PurePosixPath(config_flag.split("=", 1)[1])
    raw = yaml.safe_load(
        (DEPLOY / _mounts(service)[str(config_path.parent)] / config_path.name).read_text()
    )
    errors: list[str] = []
    section = _with_test_secrets(raw["receiver"], tmp_path)
    # The operator's secrets/fallback-urls holds apprise URLs, one per line.
    (tmp_path / "fallback_urls").write_text(
        "# e-mail\nmailto://127.0.0.1:25?from=bot@example.com&to=oncall@example.com\n"
    )
    parsed = parse_receiver_settings(section, errors)
    assert errors == [] and parsed is not None
    assert parsed.messenger.kind == "apprise"
    assert [c.service for c in parsed.messenger.channels] == ["E-Mail"]
    assert "WechatyNoRescuer" in parsed.qr_alerts  # no peer is left to send the QR: this does


def test_grafana_gets_the_dashboard_and_a_datasource(compose: dict[str, Any]) -> None:
    mounts = _mounts(compose["services"]["grafana"])
    provider_file = mounts["/etc/grafana/provisioning/dashboards/wechaty.yml"]
    provider = yaml.safe_load((DEPLOY / provider_file).read_text())
    path = provider["providers"][0]["options"]["path"]
    assert (DEPLOY / mounts[path] / "wechaty.json").is_file()
    source = yaml.safe_load(
        (DEPLOY / mounts["/etc/grafana/provisioning/datasources/wechaty.yml"]).read_text()
    )
    assert source["datasources"][0]["url"] == "http://prometheus:9090"


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0"))
    assert re.search(r'^ENTRYPOINT \["wechaty-exporter"\]', text, re.MULTILINE)
    assert '"wechaty-exporter[bot]"' in text and '".[bot]"' in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for item in source.split():
            assert (REPO / item).exists(), f"COPY {item}: no such file"
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert "src" not in ignored and ".venv" in ignored
