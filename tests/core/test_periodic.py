"""The background loops' one shape: a pass every so often, each under its own correlation id, a
failing pass logged and the next one run, and a stop that ends the loop without cutting a pass short."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.core import periodic
from bot.logs import correlation_id

log = logging.getLogger("tests.periodic")


async def test_a_pass_that_fails_is_logged_under_its_id_and_the_next_pass_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    ids: list[str] = []

    async def one_pass() -> None:
        ids.append(correlation_id.get())
        if len(ids) == 1:
            raise RuntimeError("database went away")
        stop.set()

    with caplog.at_level(logging.INFO, logger="tests.periodic"):
        await asyncio.wait_for(periodic.every(0, stop, one_pass, log=log, failed="pass failed; again"), 5)

    assert len(ids) == 2, "the pass after the failure ran"
    assert "-" not in ids and ids[0] != ids[1], "each pass has an id of its own"
    [failure] = [r for r in caplog.records if r.name == "tests.periodic"]
    assert (failure.levelno, failure.getMessage()) == (logging.ERROR, "pass failed; again")
    assert failure.exc_info is not None and "database went away" in caplog.text
    assert getattr(failure, "correlation_id", None) == ids[0], "the failure carries its pass's id"
    assert correlation_id.get() == "-", "the loop leaves no id behind"


async def test_stopping_waits_for_the_pass_in_progress_then_ends_without_waiting_out_the_interval() -> None:
    stop = asyncio.Event()
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[int] = []

    async def slow_pass() -> None:
        started.set()
        await release.wait()
        finished.append(1)

    loop = asyncio.create_task(periodic.every(3600, stop, slow_pass, log=log, failed="failed"))
    await asyncio.wait_for(started.wait(), 5)
    stop.set()
    await asyncio.sleep(0.05)
    assert not loop.done(), "the pass in progress is not cancelled"

    release.set()
    await asyncio.wait_for(loop, 1)  # not the hour the interval would wait

    assert finished == [1], "the pass ran to its end, and no other began after the stop"


async def test_a_stop_during_the_wait_ends_the_loop_without_another_pass() -> None:
    stop = asyncio.Event()
    passes: list[int] = []
    ran = asyncio.Event()

    async def one_pass() -> None:
        passes.append(1)
        ran.set()

    loop = asyncio.create_task(periodic.every(3600, stop, one_pass, log=log, failed="failed"))
    await asyncio.wait_for(ran.wait(), 5)
    stop.set()
    await asyncio.wait_for(loop, 1)

    assert passes == [1]


@pytest.mark.parametrize(("first_even_if_stopped", "passes"), [(False, 0), (True, 1)])
async def test_a_loop_stopped_before_it_starts_runs_its_first_pass_only_when_asked_to(
    first_even_if_stopped: bool, passes: int
) -> None:
    stop = asyncio.Event()
    stop.set()
    ran: list[int] = []

    async def one_pass() -> None:
        ran.append(1)

    await asyncio.wait_for(
        periodic.every(
            3600, stop, one_pass, log=log, failed="failed", first_even_if_stopped=first_even_if_stopped
        ),
        1,
    )

    assert len(ran) == passes
