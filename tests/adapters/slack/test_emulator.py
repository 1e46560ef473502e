"""The Slack emulator holds the bot to Slack's rules: pace per channel and workspace, content limits,
membership, faults on demand. Driven with the real slack-sdk client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.emulators.slack import SlackEmulator


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(channel_rate=1.0, burst=3, workspace_rate=4.0, workspace_burst=4) as emulator:
        for channel in ("C1", "C2", "C3"):
            emulator.add_channel(channel)
        yield emulator


def client(slack: SlackEmulator, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token or slack.token, base_url=slack.base_url)


async def post(web: AsyncWebClient, channel: str) -> int | str:
    """200, or the status and Retry-After of a refusal as 'status/retry-after'."""
    try:
        await web.chat_postMessage(channel=channel, text="hi")
    except SlackApiError as error:
        retry_after = error.response.headers.get("Retry-After") or error.response.headers.get("retry-after")
        return f"{error.response.status_code}/{retry_after}/{error.response['error']}"
    return 200


async def test_one_channel_allows_a_short_burst_then_answers_429_with_retry_after(
    slack: SlackEmulator,
) -> None:
    web = client(slack)
    results = [await post(web, "C1") for _ in range(4)]
    assert results == [200, 200, 200, "429/1/ratelimited"]
    assert await post(web, "C2") == 200, "another channel has its own pace"


async def test_the_workspace_cap_applies_across_channels(slack: SlackEmulator) -> None:
    web = client(slack)
    results = [await post(web, channel) for channel in ("C1", "C2", "C3", "C1", "C2")]
    assert results[:4] == [200, 200, 200, 200]
    assert results[4] == "429/1/ratelimited"

    other = slack.add_workspace("T0OTHER", token="xoxb-other", bot_user_id="U0OTHERBOT")
    slack.add_channel("C9", team=other.team_id)
    assert await post(client(slack, "xoxb-other"), "C9") == 200, "workspaces are independent"
    assert slack.calls_to("chat.postMessage")[-1].team_id == "T0OTHER"


async def test_faults_on_demand(slack: SlackEmulator) -> None:
    web = client(slack)
    slack.fail_next("chat.postMessage", error="channel_not_found")
    slack.fail_next("chat.postMessage", status=503)
    assert await post(web, "C1") == "200/None/channel_not_found"
    with pytest.raises(Exception):  # noqa: B017 - slack-sdk raises on a non-JSON 503 page
        await web.chat_postMessage(channel="C1", text="hi")
    assert await post(web, "C1") == 200
    assert [(c.status, c.error) for c in slack.calls_to("chat.postMessage")] == [
        (200, "channel_not_found"),
        (503, "internal_error"),
        (200, None),
    ]


async def test_slacks_rules_for_channels_and_content(slack: SlackEmulator) -> None:
    slack.workspace_rate = None  # refused calls count against the pace too; this test is about the rules
    web = client(slack)
    slack.add_channel("C0OLD", archived=True)
    slack.add_channel("C0OUT", bot_member=False)
    slack.add_channel("G0SECRET", private=True, bot_member=False)
    assert await post(web, "C0OLD") == "200/None/is_archived"
    assert await post(web, "C0OUT") == "200/None/not_in_channel"
    assert await post(web, "G0SECRET") == "200/None/channel_not_found"
    assert await post(web, "C0NOPE") == "200/None/channel_not_found"
    await web.conversations_join(channel="C0OUT")
    assert await post(web, "C0OUT") == 200

    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await web.chat_postMessage(channel="C2", text="x", blocks=too_long)
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await client(slack, "xoxb-wrong").auth_test()


async def test_wait_for_sees_past_and_future_calls(slack: SlackEmulator) -> None:
    web = client(slack)
    await web.chat_postMessage(channel="C1", text="first")
    mark = slack.mark()
    assert (await slack.wait_for("chat.postMessage")).params["text"] == "first"
    with pytest.raises(AssertionError, match=r"no chat\.postMessage call within"):
        await slack.wait_for("chat.postMessage", since=mark, timeout=0.05)
