"""Background work done in passes: each under a correlation id of its own, a failure logged and never
raised (the next pass tries again), every so often until the bot stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot.logs import correlation_id, new_correlation_id


async def one_pass(run_pass: Callable[[], Awaitable[object]], *, log: logging.Logger, failed: str) -> None:
    """`run_pass` under a new correlation id; an exception is logged as `failed` on `log` (the
    caller's logger, so the line names its module), with its traceback and that id."""
    token = correlation_id.set(new_correlation_id())
    try:
        await run_pass()
    except Exception:
        log.exception(failed)
    finally:
        correlation_id.reset(token)


async def every(
    seconds: float,
    stop: asyncio.Event,
    run_pass: Callable[[], Awaitable[object]],
    *,
    log: logging.Logger,
    failed: str,
    first_even_if_stopped: bool = False,
) -> None:
    """`one_pass` at once, then every `seconds` until `stop` is set. Stopping waits for a pass in
    progress instead of cancelling it, so no query is abandoned half-way on a connection about to
    close, and starts no other. `first_even_if_stopped`: the first pass runs even when `stop` is
    already set (a bot restarted often still gets that work done)."""
    first = first_even_if_stopped
    while first or not stop.is_set():
        first = False
        await one_pass(run_pass, log=log, failed=failed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
