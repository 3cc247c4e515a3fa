"""Suite-wide hooks: a failing test shows the logs of every process its fixtures started."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.harness import Processes


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Processes):
                report.sections.extend(value.log_sections())
    return report
