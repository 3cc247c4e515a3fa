"""Suite-wide hooks.

- A failing test shows the logs of every process its fixtures started.
- Under CI (`CI=true`) a skip is a failure: a test that did not run proves nothing, and a binary
  or capability missing on the CI machine must be fixed there, not reported as green. A skipped
  test, a module skipped at collection, and an xfail that is not strict (xfailed or xpassed)
  fail the run, listed with their reasons at the end. Locally a skip stays a skip.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from tests.integration.harness import Processes


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        return f"xfail without strict=True ({report.outcome}): {wasxfail or 'no reason given'}"
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class SkipsFailUnderCI:
    """Collects what did not run (or ran as a non-strict xfail); fails the session if any."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.found.append((report.nodeid, _reason(report)))

    def test_report(self, item: pytest.Item, report: pytest.TestReport) -> None:
        if hasattr(report, "wasxfail"):
            marker = item.get_closest_marker("xfail")  # None: pytest.xfail() in the test
            strict = marker is not None and marker.kwargs.get(
                "strict", item.config.getini("xfail_strict")
            )
            if not strict:
                self.found.append((report.nodeid, _reason(report)))
        elif report.skipped:
            self.found.append((report.nodeid, _reason(report)))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.found:
            terminalreporter.section("did not run, under CI=true: the run fails", red=True)
            for nodeid, reason in self.found:
                terminalreporter.line(f"{nodeid}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.found and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


CI_SKIPS = pytest.StashKey[SkipsFailUnderCI]()


def pytest_configure(config: pytest.Config) -> None:
    if under_ci():
        plugin = SkipsFailUnderCI()
        config.stash[CI_SKIPS] = plugin
        config.pluginmanager.register(plugin, "skips-fail-under-ci")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Processes):
                report.sections.extend(value.log_sections())
    ci = item.config.stash.get(CI_SKIPS, None)
    if ci is not None:
        ci.test_report(item, report)
    return report
