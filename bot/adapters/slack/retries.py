"""slack-sdk's retry handlers (a dropped connection once, a 429 after its Retry-After), each telling
`SdkRetries` when it sends a request again, so the metrics count what the SDK waited out."""

from __future__ import annotations

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.adapters.base import DeliveryFailure
from bot.adapters.retries import SdkRetries


class _Told(AsyncRetryHandler):
    """slack-sdk calls `prepare_for_next_attempt_async` only when the handler does retry: the
    failure it gives up on is raised instead, and the core counts that one."""

    reason: DeliveryFailure
    retries: SdkRetries

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        self.retries.saw(self.reason)
        await super().prepare_for_next_attempt_async(
            state=state, request=request, response=response, error=error
        )


class _ConnectionErrors(_Told, AsyncConnectionErrorRetryHandler):
    reason = DeliveryFailure.UNAVAILABLE


class _RateLimits(_Told, AsyncRateLimitErrorRetryHandler):
    reason = DeliveryFailure.RATE_LIMITED


def retry_handlers(retries: SdkRetries, *, rate_limit_retries: int) -> list[AsyncRetryHandler]:
    """The handlers a Web API or webhook client gets: slack-sdk's default one and the 429 one."""
    connection, limits = _ConnectionErrors(), _RateLimits(max_retry_count=rate_limit_retries)
    connection.retries = limits.retries = retries
    return [connection, limits]
