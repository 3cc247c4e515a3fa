"""`kill -9` of the real exporter at random points of a burst, 50 times, same state dir.

Each round starts `python -m wechaty_exporter serve --state-dir D`, waits until it has read every
line written so far and checks its whole state against the reference replay of those lines,
then writes a burst of 2 000 pattern lines at 10 000 lines/s and SIGKILLs the exporter after a
random delay inside the burst (seeded: the same kill points on every run). Lines written after
the last save are read again at the next start and must be applied exactly once: every round's
lines_total is exact, and the event counters and pending QR equal the reference.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from tests.reliability.conftest import Figures
from tests.reliability.kit import (
    Background,
    ExporterProcess,
    Observed,
    Writer,
    caught_up,
    lines_read,
    reference,
)

SEED = 20261125
KILLS = 50
BURST = 2000
RATE = 10_000.0


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
            assert Observed.of_exporter(exporter, "bob") == Observed.of_state(
                reference(writer.written)
            ), f"after restart {exporter.starts}"
            burst = Background(lambda: writer.write(BURST, rate=RATE))
            burst.start()
            time.sleep(rng.uniform(0.0, BURST / RATE))
            written = writer.count
            exporter.kill9()
            unsaved.append(written - _saved_lines(tmp_path / "state"))
            burst.join()
        exporter.start()
        exporter.wait(lambda: caught_up(exporter, writer.count), "caught up at the end")
        time.sleep(1.2)  # one safety poll: a line applied twice would show by now
        assert lines_read(exporter) == writer.count
        want = Observed.of_state(reference(writer.written))
        assert Observed.of_exporter(exporter, "bob") == want
    finally:
        writer.close()
        exporter.stop()
    assert "Traceback" not in exporter.log_text()
    figures(
        f"{KILLS} SIGKILLs (seed {SEED}), {exporter.starts} starts, {writer.count} lines, "
        f"{want.logins} logins / {want.logouts} logouts / {want.qr_codes} QR codes / "
        f"{want.errors} errors: equal to the reference after every restart; "
        f"lines written after the last save at the kill: median "
        f"{sorted(unsaved)[len(unsaved) // 2]}, max {max(unsaved)}, "
        f"{sum(1 for n in unsaved if n > 0)} kills with some"
    )


def _saved_lines(state_dir: Path) -> int:
    """lines_total in the state file the killed exporter left behind."""
    try:
        doc = json.loads((state_dir / "exporter-state.json").read_text())
        return int(doc["bots"]["bob"]["lines_total"])
    except (OSError, ValueError, KeyError):
        return 0
