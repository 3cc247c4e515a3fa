"""KeyLock: one task at a time per key, in arrival order, nothing kept once unused."""

from __future__ import annotations

import asyncio

from wechaty_exporter.delivery.keylock import KeyLock


async def _worker(
    locks: KeyLock, key: str, name: str, log: list[str], gate: asyncio.Event | None = None
) -> None:
    async with locks.hold(key):
        log.append(f"{name} in")
        if gate is not None:
            await gate.wait()
        else:
            await asyncio.sleep(0)  # give every other task a chance to cut in
        log.append(f"{name} out")


def test_one_task_per_key_in_arrival_order() -> None:
    async def scenario() -> list[str]:
        locks = KeyLock()
        log: list[str] = []
        tasks = []
        for name in ("first", "second", "third", "fourth"):
            tasks.append(asyncio.create_task(_worker(locks, "alice", name, log)))
            await asyncio.sleep(0)  # each task queues on the lock before the next one starts
        await asyncio.gather(*tasks)
        assert len(locks) == 0
        return log

    assert asyncio.run(scenario()) == [
        "first in",
        "first out",
        "second in",
        "second out",
        "third in",
        "third out",
        "fourth in",
        "fourth out",
    ]


def test_different_keys_do_not_wait_for_each_other() -> None:
    async def scenario() -> list[str]:
        locks = KeyLock()
        log: list[str] = []
        gate = asyncio.Event()
        alice = asyncio.create_task(_worker(locks, "alice", "alice", log, gate))
        bob = asyncio.create_task(_worker(locks, "bob", "bob", log, gate))
        later = asyncio.create_task(_worker(locks, "alice", "alice again", log))
        for _ in range(5):
            await asyncio.sleep(0)
        assert log == ["alice in", "bob in"]  # both keys held at once; alice's second waits
        assert len(locks) == 2
        gate.set()
        await asyncio.gather(alice, bob, later)
        assert len(locks) == 0
        return log

    log = asyncio.run(scenario())
    assert log.index("alice again in") > log.index("alice out")


def test_a_failing_or_cancelled_holder_frees_its_key() -> None:
    async def scenario() -> None:
        locks = KeyLock()

        async def fail() -> None:
            async with locks.hold("alice"):
                raise ValueError("boom")

        gate = asyncio.Event()
        log: list[str] = []
        stuck = asyncio.create_task(_worker(locks, "bob", "bob", log, gate))
        waiting = asyncio.create_task(_worker(locks, "bob", "bob again", log))
        for _ in range(3):
            await asyncio.sleep(0)
        waiting.cancel()  # cancelled while queued
        stuck.cancel()  # cancelled while holding
        results = await asyncio.gather(fail(), stuck, waiting, return_exceptions=True)
        assert isinstance(results[0], ValueError)
        assert all(isinstance(r, asyncio.CancelledError) for r in results[1:])
        assert log == ["bob in"]
        assert len(locks) == 0
        async with locks.hold("alice"), locks.hold("bob"):  # both usable again
            assert len(locks) == 2
        assert len(locks) == 0

    asyncio.run(scenario())
