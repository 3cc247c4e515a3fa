"""`kill -9` of the real exporter at random points of a burst, 50 times, same state dir.

Each round starts `python -m wechaty_exporter serve --state-dir D`, waits until it has read every
line written so far and checks its whole state against the oracle (the writer's own record of
what its lines say, kit.Truth: no replay through the code under test), then writes a burst of
2 000 pattern lines at 10 000 lines/s and SIGKILLs the exporter after a random delay inside the
burst (seeded: the same kill points on every run). Lines written after the last save are read
again at the next start and must be applied exactly once: every round's lines_total is exact,
and the event counters, pending QR and user equal the oracle's.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from tests.reliability.conftest import Figures
from tests.reliability.kit import (
    Background,
    ExporterProcess,
    Writer,
    caught_up,
    lines_read,
)

SEED = 20261125
KILLS = 50
BURST = 2000
RATE = 10_000.0


@pytest.mark.timeout(1200)  # a hang guard, not a speed bound: 51 starts on a busy machine
def test_kill9_at_random_points_of_a_burst(tmp_path: Path, figures: Figures) -> None:
    rng = random.Random(SEED)
    log = tmp_path / "bob.log"
    writer = Writer(log, keep_open=True)
    exporter = ExporterProcess(tmp_path, [("bob", log)], state_dir=tmp_path / "state")
    unsaved: list[int] = []  # lines written after the last save at each kill: read again
    try:
        for _ in range(KILLS):
            exporter.start()
            exporter.wait(lambda: caught_up(exporter, writer.count), "caught up after restart")
            writer.check(exporter, f"after restart {exporter.starts}")
            burst = Background(lambda: writer.write(BURST, rate=RATE))
            burst.start()
            time.sleep(rng.uniform(0.0, BURST / RATE))
            written = writer.count
            exporter.kill9()
            unsaved.append(written - _saved_lines(tmp_path / "state"))
            burst.join()
        exporter.start()
        exporter.wait(lambda: caught_up(exporter, writer.count), "caught up at the end")
        writer.write(1)  # the marker: once it is read, a line applied twice would show too
        exporter.wait(lambda: caught_up(exporter, writer.count), "the marker line read")
        assert lines_read(exporter) == writer.count
        want = writer.check(exporter, "at the end")
    finally:
        writer.close()
        exporter.stop()
    assert "Traceback" not in exporter.log_text()
    figures(
        f"{KILLS} SIGKILLs (seed {SEED}), {exporter.starts} starts, {writer.count} lines, "
        f"{want.logins} logins / {want.logouts} logouts / {want.qr_codes} QR codes / "
        f"{want.errors} errors: equal to the oracle after every restart; "
        f"lines written after the last save at the kill: median "
        f"{sorted(unsaved)[len(unsaved) // 2]}, max {max(unsaved)}, "
        f"{sum(1 for n in unsaved if n > 0)} kills with some",
        seed=SEED,
        kills=KILLS,
        starts=exporter.starts,
        lines=writer.count,
        logins=want.logins,
        logouts=want.logouts,
        qr_codes=want.qr_codes,
        unsaved_median=sorted(unsaved)[len(unsaved) // 2],
        unsaved_max=max(unsaved),
        kills_with_unsaved=sum(1 for n in unsaved if n > 0),
    )


def _saved_lines(state_dir: Path) -> int:
    """lines_total in the state file the killed exporter left behind."""
    try:
        doc = json.loads((state_dir / "exporter-state.json").read_text())
        return int(doc["bots"]["bob"]["lines_total"])
    except (OSError, ValueError, KeyError):
        return 0
