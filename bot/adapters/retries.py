"""The requests an SDK sends again on its own while delivering a message (slack-sdk's retry handlers,
discord.py's HTTP client), told to the metrics: the core never sees them, only what the SDK gives up
on, which reaches it as a `DeliveryError` and is counted there, so every retry is counted once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from bot.adapters.base import DeliveryFailure, RetryListener

# The retries seen by the delivery running in this task (None: not delivering, e.g. a user lookup).
_SEEN: ContextVar[list[DeliveryFailure] | None] = ContextVar("sdk_retries", default=None)


class SdkRetries:
    """Collects what the SDK retried during one `delivering()` block, then tells the listener.

    `gave_up` names the failure an SDK reports both ways, as a response the hook saw and as the
    error the send raised (discord.py's last 429 when its tries run out): that one was not retried
    by the SDK, and the core counts it."""

    def __init__(self, *, gave_up: Callable[[BaseException], DeliveryFailure | None] | None = None) -> None:
        self._listener: RetryListener | None = None
        self._gave_up = gave_up

    def listen(self, listener: RetryListener) -> None:
        self._listener = listener

    def saw(self, reason: DeliveryFailure) -> None:
        """The SDK is about to send a request again (called from its own hook)."""
        seen = _SEEN.get()
        if seen is not None:
            seen.append(reason)

    @contextmanager
    def delivering(self) -> Iterator[None]:
        seen: list[DeliveryFailure] = []
        token = _SEEN.set(seen)
        try:
            yield
        except BaseException as error:
            last = self._gave_up(error) if self._gave_up is not None else None
            if last in seen:
                seen.remove(last)
            raise
        finally:
            _SEEN.reset(token)
            if self._listener is not None:
                for reason in seen:
                    self._listener(reason)
