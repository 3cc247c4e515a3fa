"""The tailer against real files: a rotation matrix (after grok_exporter's), then edge cases.

Each test runs a real Tailer on files in tmp_path and awaits what it yields. Waiting is on
conditions (lines arrived, a counter moved), never on fixed sleeps. Where the point is that
nothing (more) happens, the test first awaits something that comes after it: a marker line, a
file closed, or the tailer having looked at the path again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import stat
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wechaty_exporter.exporter.files import Cursor
from wechaty_exporter.exporter.follow import Lines, Start
from wechaty_exporter.exporter.tailer import Tailer

WAIT = 10.0  # upper bound for anything we await; a pass takes a small fraction of it


class Run:
    """A Tailer running in a background task, with everything it yielded so far."""

    def __init__(self, tailer: Tailer) -> None:
        self.tailer = tailer
        self.batches: list[Lines] = []
        self.stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Run:
        self._task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, WAIT)

    async def _consume(self) -> None:
        async with contextlib.aclosing(self.tailer.run(self.stop)) as batches:
            async for batch in batches:
                self.batches.append(batch)

    def lines(self, path: str | None = None) -> list[str]:
        return [line for b in self.batches if path in (None, b.path) for line in b.lines]

    async def until(self, what: Callable[[], bool], within: float = WAIT) -> None:
        """Wait until what() holds (checked as the loop turns), failing after `within` seconds."""
        deadline = time.monotonic() + within
        while not what():
            if self._task is not None and self._task.done():
                self._task.result()
                pytest.fail("the tailer stopped")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out; got {self.lines()!r}, stats {self.tailer.stats}")
            await asyncio.sleep(0.005)

    async def until_lines(self, n: int, path: str | None = None) -> list[str]:
        await self.until(lambda: len(self.lines(path)) >= n)
        return self.lines(path)

    def looks(self, path: str) -> list[int]:
        """How often the tailer has looked at `path` (called its follower's check()), counted
        from the first call of this on."""
        follower = self.tailer._by_path[path]  # the tailer's own record of the path
        counter: list[int] | None = getattr(follower, "looks", None)
        if counter is None:
            counter = [0]
            check = follower.check

            def counted(now: float) -> Iterator[Lines]:
                counter[0] += 1
                return check(now)

            follower.check = counted  # type: ignore[method-assign]
            follower.looks = counter  # type: ignore[attr-defined]
        return counter

    async def looked(self, path: str, n: int) -> None:
        """Wait until the tailer has looked at `path` n more times. A look is one pass of the
        run loop, which this coroutine cannot interleave: what the file held before the call is
        then read, counted and logged, so anything it would wrongly produce has come out."""
        looks = self.looks(path)
        target = looks[0] + n
        await self.until(lambda: looks[0] >= target)


def tail(paths: dict[str, Start], **kw: object) -> Run:
    kw.setdefault("use_inotify", False)
    kw.setdefault("poll_interval", 0.02)
    return Run(Tailer(paths, **kw))  # type: ignore[arg-type]


# -- the rotation matrix ------------------------------------------------------------------------


class Writer:
    """A logger: keeps one descriptor open (like node or pm2), or opens the path per line."""

    def __init__(self, path: Path, *, keep_open: bool) -> None:
        self.path = path
        self.keep_open = keep_open
        self.fd: int | None = None
        self.written: list[tuple[int, str]] = []  # (inode written to, line)
        if keep_open:
            self.reopen()

    def reopen(self, path: Path | None = None) -> None:
        """What a logger does on SIGHUP (or when its file name changes)."""
        self.path = path or self.path
        if self.keep_open:
            if self.fd is not None:
                os.close(self.fd)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def line(self, text: str) -> None:
        data = (text + "\n").encode()
        if self.fd is not None:
            os.write(self.fd, data)
            inode = os.fstat(self.fd).st_ino
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
                inode = os.fstat(fd).st_ino
            finally:
                os.close(fd)
        self.written.append((inode, text))

    def lines(self, prefix: str, n: int) -> None:
        for i in range(n):
            self.line(f"{prefix} {i:04d} " + "x" * (i % 50))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


ROTATIONS = [
    "rename_create",
    "rename_create_later",
    "copytruncate",
    "truncate",
    "delete_recreate",
    "symlink_flip",
]


def touch(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("keep_open", [True, False], ids=["keep-open", "reopen"])
async def test_rotation(tmp_path: Path, keep_open: bool, rotation: str, inotify: bool) -> None:
    """Lines written before, around and after a rotation are each seen once, in order per file.

    "late" lines go to the old file after the tailer noticed the rotation, as a logger that
    keeps its file open does until it is told to reopen: the old file is drained for rotate_wait.

    With inotify the poll safety net is set to 30 s, so every wake-up must come from inotify
    (for symlink_flip: from the watch on the target's directory, which is not the link's).
    copytruncate: lines written between logrotate's copy and its truncate are lost to any tailer
    (they are in log.1 only), so this scenario writes nothing in that window; the lines before the
    copy are awaited first for the same reason. truncate/copytruncate write more after the
    truncation than before, so the file may outgrow the old offset before the tailer looks;
    the fingerprint of the first bytes must catch that.
    """
    log = tmp_path / "log"
    targets = tmp_path / "targets"
    targets.mkdir()
    if rotation == "symlink_flip":
        log.symlink_to(targets / "a.log")
        writer = Writer(targets / "a.log", keep_open=keep_open)
    else:
        writer = Writer(log, keep_open=keep_open)
    touch(writer.path)
    poll = 30.0 if inotify else 0.02
    async with tail(
        {str(log): "start"}, use_inotify=inotify, poll_interval=poll, rotate_wait=0.15
    ) as run:
        await run.until(lambda: run.tailer.stats[str(log)].present)
        stats = run.tailer.stats[str(log)]
        writer.lines("before", 40)
        if rotation in ("copytruncate", "truncate"):
            await run.until_lines(40)
            if rotation == "copytruncate":
                shutil.copyfile(log, tmp_path / "log.1")
            os.truncate(log, 0)
            writer.lines("after", 80)
        elif rotation in ("rename_create", "rename_create_later", "delete_recreate"):
            if rotation == "delete_recreate":
                os.unlink(log)
            else:
                os.rename(log, tmp_path / "log.1")
            if rotation != "rename_create_later":
                touch(log)
            if keep_open:  # it goes on writing to the old file until it reopens (SIGHUP)
                writer.lines("around", 5)
                await run.until(lambda: stats.rotations == 1)
                writer.lines("late", 5)
            if rotation == "rename_create_later":
                await run.until(lambda: not stats.present)
            writer.reopen()
            writer.lines("after", 40)
        else:  # symlink_flip, the way `ln -sfn` + `mv -T` does it: atomically
            await run.until_lines(40)  # written to a.log: seen through the targets/ watch
            (tmp_path / "targets2").mkdir()
            b_log = tmp_path / "targets2" / "b.log"
            (tmp_path / "log.tmp").symlink_to(b_log)
            touch(b_log)
            os.replace(tmp_path / "log.tmp", log)
            writer.lines("around", 5)  # the writer still has (or opens) a.log
            await run.until(lambda: stats.rotations == 1)
            writer.lines("late", 5)
            writer.reopen(b_log)
            writer.lines("after", 40)
        await run.until(lambda: len(run.lines()) >= len(writer.written))
        writer.line("last")  # the new file is watched: this one needs a fresh wake-up
        expected = [text for _, text in writer.written]
        await run.until(lambda: "last" in run.lines())
        follower = run.tailer._by_path[str(log)]
        await run.until(lambda: not follower.draining)  # past rotate_wait: the old file closed
        writer.line("closed")  # read after the close: a duplicate from the close is in by now
        expected = [text for _, text in writer.written]
        await run.until(lambda: "closed" in run.lines())
        writer.close()

    got = [(b.cursor.inode, line) for b in run.batches for line in b.lines]
    assert Counter(line for _, line in got) == Counter(expected), "each line exactly once"
    for inode in {inode for inode, _ in writer.written}:
        assert [t for i, t in got if i == inode] == [t for i, t in writer.written if i == inode]
    truncated = rotation in ("copytruncate", "truncate")
    assert (stats.rotations, stats.truncations) == ((0, 1) if truncated else (1, 0))
    assert stats.lines_read == len(expected)
    assert stats.present
    assert stats.problem is None
    assert stats.read_errors == 0
    rotated = [line for b in run.batches if b.rotated for line in b.lines]
    assert all(not line.startswith("after") for line in rotated)


async def test_rotated_file_final_partial_line_is_yielded(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"one\ntwo\nunfinished")
    async with tail({str(log): "start"}, rotate_wait=0.05) as run:
        assert await run.until_lines(2) == ["one", "two"]
        os.rename(log, tmp_path / "log.1")
        log.write_bytes(b"new\n")
        await run.until_lines(4)
    assert [(b.lines, b.rotated) for b in run.batches[1:]] in (
        [(["new"], False), (["unfinished"], True)],
        [(["unfinished"], True), (["new"], False)],
    )
    tail_batch = next(b for b in run.batches if b.rotated)
    assert tail_batch.start_offset == 8
    assert tail_batch.cursor.offset == 18


@pytest.mark.parametrize("rotate_wait", [5.0, 0.0], ids=["still-draining", "closed"])
async def test_symlink_flipped_back_goes_on_where_it_was(
    tmp_path: Path, rotate_wait: float
) -> None:
    """A -> B -> A (blue/green): A is not read again from its start."""
    log, a, b = tmp_path / "log", tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("a1\na2\n")
    b.write_text("")
    log.symlink_to(a)

    def flip(to: Path) -> None:
        (tmp_path / "tmp").symlink_to(to)
        os.replace(tmp_path / "tmp", log)

    async with tail({str(log): "start"}, rotate_wait=rotate_wait) as run:
        stats = run.tailer.stats[str(log)]
        await run.until_lines(2)
        flip(b)
        await run.until(lambda: stats.rotations == 1)
        with b.open("a") as fh:
            fh.write("b1\n")
        await run.until_lines(3)
        with a.open("a") as fh:
            fh.write("a3\n")
        flip(a)
        await run.until(lambda: stats.rotations == 2)
        with a.open("a") as fh:
            fh.write("a4\n")
        await run.until_lines(5)
        with a.open("a") as fh:
            fh.write("a5\n")  # the marker: a re-read of a from its start would come before it
        await run.until_lines(6)
    assert Counter(run.lines()) == Counter(["a1", "a2", "b1", "a3", "a4", "a5"])
    assert [line for line in run.lines() if line.startswith("a")] == ["a1", "a2", "a3", "a4", "a5"]


async def test_truncated_and_rewritten_past_offset_between_looks(tmp_path: Path) -> None:
    """Truncate + rewrite beyond the old offset before the next poll: the fingerprint tells.

    The rewrite happens right after a batch arrives, and the next look is a 0.3 s poll away.
    (A rewrite whose first KiB equals the old one cannot be told from appends: documented.)
    """
    log = tmp_path / "log"
    log.write_text("".join(f"old {i}\n" for i in range(10)))
    async with tail({str(log): "start"}, poll_interval=0.3) as run:
        await run.until_lines(10)
        log.write_text("".join(f"new line {i}\n" for i in range(20)))
        await run.until_lines(30)
    assert run.lines()[10:] == [f"new line {i}" for i in range(20)]
    assert run.tailer.stats[str(log)].truncations == 1


# -- reading ------------------------------------------------------------------------------------


async def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"first\nsecond half")
    async with tail({str(log): "start"}) as run:
        assert await run.until_lines(1) == ["first"]
        with log.open("ab") as fh:
            fh.write(b" still")
        await run.looked(str(log), 2)  # read since: the partial line must not come out
        assert run.lines() == ["first"]
        cursor = run.tailer.cursor(str(log))
        assert cursor is not None
        assert cursor.offset == 6
        with log.open("ab") as fh:
            fh.write(b" done\nthird\n")
        assert await run.until_lines(3) == ["first", "second half still done", "third"]
    assert run.batches[-1].start_offset == 6


async def test_crlf_is_kept_for_the_parser(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"a\r\nb\r\n\r\n")
    async with tail({str(log): "start"}) as run:
        assert await run.until_lines(3) == ["a\r", "b\r", "\r"]


async def test_invalid_utf8_becomes_replacement_characters(tmp_path: Path) -> None:
    log = tmp_path / "log"
    raw = [b"ok \xff\xfe bad", b"\xe4\xb8", "中文 ✓".encode(), b"\x00\x1b[31mred"]
    log.write_bytes(b"\n".join(raw) + b"\n")
    async with tail({str(log): "start"}) as run:
        got = await run.until_lines(4)
    assert got == [r.decode("utf-8", "replace") for r in raw]
    assert "\ufffd" in got[0]
    assert got[2] == "中文 ✓"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.lists(
        st.binary(max_size=12) | st.sampled_from([b"\n", b"\r\n", "é中".encode(), b"\xe4"]),
        max_size=30,
    ).map(b"".join),
    chunk=st.integers(1, 9),
    limit=st.integers(1, 8),
)
def test_lines_do_not_depend_on_chunk_boundaries(
    tmp_path: Path, content: bytes, chunk: int, limit: int
) -> None:
    """Whatever the chunking, the lines are the file's lines, each cut to `limit` bytes."""
    log = tmp_path / "hyp.log"
    log.write_bytes(content)
    complete = content.split(b"\n")[:-1]
    end = content.rfind(b"\n") + 1

    async def main() -> None:
        async with tail({str(log): "start"}, read_chunk=chunk, max_line_bytes=limit) as run:
            cursor = run.tailer.cursor
            await run.until(lambda: (c := cursor(str(log))) is not None and c.offset == end)
        assert run.lines() == [line[:limit].decode("utf-8", "replace") for line in complete]
        cut = sum(len(line) > limit for line in complete)
        tail_cut = len(content) - end > limit
        assert run.tailer.stats[str(log)].lines_cut == cut + tail_cut

    asyncio.run(main())


async def test_huge_line_without_newline_is_cut_with_bounded_memory(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"before\n")
    limit = 65536
    async with tail({str(log): "start"}, max_line_bytes=limit) as run:
        await run.until_lines(1)
        stats = run.tailer.stats[str(log)]
        tracemalloc.start()
        try:
            with log.open("ab") as fh:
                for _ in range(20):
                    fh.write(b"y" * (1 << 20))
            await run.until(lambda: stats.lines_cut == 1)
            cursor = run.tailer.cursor(str(log))
            with log.open("ab") as fh:
                fh.write(b"z\nafter\n")
            got = await run.until_lines(3)  # read after the rest of the 20 MiB: all of it is in
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 6 << 20, f"peak {peak} bytes while following a 20 MiB line"
        assert cursor is not None
        assert cursor.offset == 7
    assert got == ["before", "y" * limit, "after"]
    assert stats.lines_cut == 1
    assert stats.lines_read == 3


async def test_several_paths_at_once(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    paths = [tmp_path / "one" / "out.log", tmp_path / "one" / "err.log", tmp_path / "two" / "x"]
    for p in paths:
        p.write_text("")
    async with tail({str(p): "start" for p in paths}, use_inotify=True, poll_interval=30) as run:
        await run.until(lambda: all(s.present for s in run.tailer.stats.values()))
        for i in range(30):
            for j, p in enumerate(paths):
                with p.open("a") as fh:
                    fh.write(f"{j}:{i}\n")
        await run.until_lines(90)
    for j, p in enumerate(paths):
        assert run.lines(str(p)) == [f"{j}:{i}" for i in range(30)]
        assert run.tailer.stats[str(p)].lines_read == 30


async def test_append_is_seen_promptly_with_inotify(tmp_path: Path) -> None:
    """The poll net is 30 s, longer than any wait here: every line must come through inotify."""
    log = tmp_path / "log"
    log.write_text("")
    async with tail({str(log): "end"}, use_inotify=True, poll_interval=30) as run:
        await run.until(lambda: run.tailer.cursor(str(log)) is not None)
        for i in range(5):
            with log.open("a") as fh:
                fh.write(f"line {i}\n")
            await run.until_lines(i + 1)


async def test_idle_files_cost_little_cpu(tmp_path: Path) -> None:
    """50 quiet files, inotify on: no busy loop (our own reads wake nothing).

    Counted, not timed (bench/b_footprint.py measures idle CPU). The poll net is an hour, so
    after the first pass every look at a file is a wake-up. A line appended to f0 costs looks at
    f0 only; reading it must wake nothing: once a line appended to f1 afterwards has been read
    (inotify reports events in order, so a wake-up caused by reading f0 would have come first),
    f0 has not been looked at again, and no other file was looked at at all.
    """
    paths = [tmp_path / f"f{i}.log" for i in range(50)]
    for p in paths:
        p.write_text("x\n")
    async with tail({str(p): "start" for p in paths}, use_inotify=True, poll_interval=3600) as run:
        await run.until_lines(50)
        looks = [run.looks(str(p)) for p in paths]
        seen = []
        for marker in paths[:2]:
            with marker.open("a") as fh:
                fh.write("marker\n")
            assert await run.until_lines(2, str(marker)) == ["x", "marker"]
            seen.append([n[0] for n in looks])
    assert seen[0][0] >= 1 and seen[1][1] >= 1, seen
    assert seen[1][0] == seen[0][0], "reading f0 woke the tailer for f0 again"
    assert seen[1][2:] == [0] * 48, "a quiet file was looked at"


# -- where reading starts -----------------------------------------------------------------------


async def test_missing_file_is_waited_for_and_read_from_start(tmp_path: Path) -> None:
    log = tmp_path / "log"
    async with tail({str(log): "end"}, use_inotify=True, poll_interval=30) as run:
        stats = run.tailer.stats[str(log)]
        await run.until(lambda: stats.problem is not None)
        assert not stats.present
        assert "not found" in (stats.problem or "")
        assert stats.read_errors == 0
        log.write_text("hello\n")
        assert await run.until_lines(1) == ["hello"]
    assert stats.present
    assert stats.problem is None
    assert stats.rotations == 0


async def test_directory_missing_at_start(tmp_path: Path) -> None:
    """The watch on a directory that appears later is set up by the poll that sees it."""
    log = tmp_path / "later" / "deeper" / "log"
    async with tail({str(log): "start"}, use_inotify=True, poll_interval=0.1) as run:
        await run.until(lambda: run.tailer.stats[str(log)].problem is not None)
        log.parent.mkdir(parents=True)
        log.write_text("one\n")
        assert await run.until_lines(1) == ["one"]
        with log.open("a") as fh:
            fh.write("two\n")
        assert await run.until_lines(2) == ["one", "two"]


async def test_end_skips_existing_lines_and_a_partial_last_line(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"old\nhalf a li")
    async with tail({str(log): "end"}) as run:
        await run.until(lambda: run.tailer.cursor(str(log)) is not None)
        with log.open("ab") as fh:
            fh.write(b"ne\nnew\n")
        assert await run.until_lines(1) == ["new"]
    assert run.batches[0].start_offset == 16


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, ["line1", "line2", "line3"]),
        (6, ["line2", "line3"]),  # a line start
        (8, ["line3"]),  # mid-line: skip to after the next newline
        (18, []),  # the end
        (1000, []),  # clamped to the size
    ],
)
async def test_explicit_offset(tmp_path: Path, offset: int, expected: list[str]) -> None:
    log = tmp_path / "log"
    log.write_text("line1\nline2\nline3\n")
    async with tail({str(log): offset}) as run:
        await run.until(lambda: run.tailer.cursor(str(log)) is not None)
        with log.open("a") as fh:
            fh.write("line4\n")
        assert await run.until_lines(len(expected) + 1) == [*expected, "line4"]


async def saved_cursor(log: Path) -> Cursor:
    async with tail({str(log): "start"}) as run:
        await run.until(lambda: (c := run.tailer.cursor(str(log))) is not None and c.offset > 0)
        cursor = run.tailer.cursor(str(log))
    assert cursor is not None
    assert Cursor.from_dict(json.loads(json.dumps(cursor.to_dict()))) == cursor
    return cursor


async def test_resume_from_matching_cursor(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("a\nb\n")
    cursor = await saved_cursor(log)
    with log.open("a") as fh:
        fh.write("c\n")
    async with tail({str(log): cursor}) as run:
        assert await run.until_lines(1) == ["c"]
    stats = run.tailer.stats[str(log)]
    assert (stats.rotations, stats.truncations) == (0, 0)


async def test_resume_from_cursor_when_file_was_copied_back(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("a\nb\n")
    cursor = await saved_cursor(log)
    shutil.copyfile(log, tmp_path / "copy")
    os.replace(tmp_path / "copy", log)
    with log.open("a") as fh:
        fh.write("c\n")
    async with tail({str(log): cursor}) as run:
        assert await run.until_lines(1) == ["c"]
    assert os.stat(log).st_ino != cursor.inode


async def test_resume_when_file_is_now_shorter_than_the_fingerprint(tmp_path: Path) -> None:
    """The saved head cannot be checked any more: the file counts as replaced, read from 0."""
    log = tmp_path / "log"
    log.write_text("aaaa\nbbbb\n")
    cursor = await saved_cursor(log)
    log.write_text("aaaa\n")
    async with tail({str(log): cursor}) as run:
        assert await run.until_lines(1) == ["aaaa"]
    stats = run.tailer.stats[str(log)]
    assert (stats.rotations, stats.truncations) == (1, 0)


async def test_resume_from_cursor_when_file_was_cut_short(tmp_path: Path) -> None:
    """Same first bytes, shorter than the saved offset: truncated while we were down."""
    log = tmp_path / "log"
    log.write_text("x" * 2000 + "\nmore\n")
    cursor = await saved_cursor(log)
    assert cursor.fingerprint_len == 1024
    os.truncate(log, 1500)
    with log.open("a") as fh:
        fh.write("\nfresh\n")
    async with tail({str(log): cursor}) as run:
        assert await run.until_lines(2) == ["x" * 1500, "fresh"]
    assert run.tailer.stats[str(log)].truncations == 1


async def test_resume_from_cursor_when_file_was_replaced(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("old 1\nold 2\n")
    cursor = await saved_cursor(log)
    os.rename(log, tmp_path / "log.1")
    log.write_text("new 1\n")
    async with tail({str(log): cursor}) as run:
        assert await run.until_lines(1) == ["new 1"]
    assert run.tailer.stats[str(log)].rotations == 1


def test_cursor_from_dict_rejects_garbage() -> None:
    good = Cursor(5, 1, 2, "0" * 64, 5).to_dict()
    assert Cursor.from_dict(good) == Cursor(5, 1, 2, "0" * 64, 5)
    for bad in (
        {},
        {**good, "offset": -1},
        {**good, "inode": "1"},
        {**good, "offset": True},
        {**good, "fingerprint": "xyz"},
        {**good, "fingerprint_len": 4096},
    ):
        with pytest.raises(ValueError, match="cursor"):
            Cursor.from_dict(bad)


def test_bad_start_is_rejected() -> None:
    with pytest.raises(ValueError, match="start"):
        Tailer({"x": "middle"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="start"):
        Tailer({"x": -1})


# -- things that are not readable files ---------------------------------------------------------


async def not_a_file(run: Run, path: Path, what: str, caplog: pytest.LogCaptureFixture) -> None:
    stats = run.tailer.stats[str(path)]
    await run.until(lambda: stats.read_errors > 0)
    await run.looked(str(path), 3)  # several looks since: counted and logged once, not each time
    assert not stats.present
    assert stats.read_errors == 1
    assert stats.problem is not None
    assert what in stats.problem
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and str(path) in r.message
    ]
    assert len(warnings) == 1
    assert what in warnings[0].message


async def test_fifo_at_path_is_never_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "log"
    os.mkfifo(log)
    async with tail({str(log): "start"}) as run:
        await not_a_file(run, log, "FIFO", caplog)
        log.unlink()
        log.write_text("fine now\n")
        assert await run.until_lines(1) == ["fine now"]
        assert run.tailer.stats[str(log)].present


async def test_directory_at_path(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    log.mkdir()
    async with tail({str(log): "start"}) as run:
        await not_a_file(run, log, "directory", caplog)
        log.rmdir()
        log.write_text("fine now\n")
        assert await run.until_lines(1) == ["fine now"]
        assert run.tailer.stats[str(log)].problem is None


@contextlib.contextmanager
def unprivileged_thread() -> Iterator[None]:
    """Make permissions bite in this thread, even for root.

    Root reads a mode-000 file anyway (CAP_DAC_OVERRIDE). Capabilities belong to a thread, so
    drop DAC_OVERRIDE and DAC_READ_SEARCH from this thread's effective set (the event loop runs
    here) and give them back afterwards. Not root: nothing to do.
    """
    if os.geteuid() != 0:
        yield
        return

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.skip("root, and capget() failed: cannot make a permission error happen")
    saved = [(d.effective, d.permitted, d.inheritable) for d in data]
    data[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capset(ctypes.byref(header), data) != 0:
        pytest.skip("root, and capset() failed: cannot make a permission error happen")
    try:
        yield
    finally:
        for d, (e, p, i) in zip(data, saved, strict=True):
            d.effective, d.permitted, d.inheritable = e, p, i
        assert libc.capset(ctypes.byref(header), data) == 0


async def test_permission_denied(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / "log"
    log.write_text("secret\n")
    log.chmod(0)
    with unprivileged_thread():
        try:
            os.close(os.open(log, os.O_RDONLY))
            pytest.skip("this process reads mode-000 files anyway")
        except PermissionError:
            pass
        async with tail({str(log): "start"}) as run:
            await not_a_file(run, log, "permission denied", caplog)
            log.chmod(stat.S_IRUSR | stat.S_IWUSR)
            assert await run.until_lines(1) == ["secret"]
            assert run.tailer.stats[str(log)].present


async def test_run_can_resume_after_it_stopped(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("1\n")
    tailer = Tailer({str(log): "start"}, use_inotify=False, poll_interval=0.02)
    async with Run(tailer) as run:
        await run.until_lines(1)
    with log.open("a") as fh:
        fh.write("2\n")
    async with Run(tailer) as run:
        assert await run.until_lines(1) == ["2"]
