"""People's links shown where they go: a label of theirs never becomes a link on Slack or Discord."""

from __future__ import annotations

import re

from hypothesis import given

from bot.adapters.slack.translate import to_mrkdwn
from bot.core.links import unmask_links
from tests.strategies import long_texts, texts

_SLACK_LINK = re.compile(r"<[^<>|]+\|[^<>]*>")


def test_a_masked_link_reads_as_its_label_and_its_address() -> None:
    assert unmask_links("see [Reset your password](https://evil.example/login).") == (
        "see Reset your password (https://evil.example/login)."
    )
    assert unmask_links("[docs](<https://evil.example/x>)") == "docs (https://evil.example/x)"
    assert unmask_links("[https://bank.example](https://bank.example)") == "https://bank.example"
    assert unmask_links("[mail us](mailto:a@evil.example)") == "mail us (mailto:a@evil.example)"


def test_any_other_label_next_to_parentheses_is_broken_apart() -> None:
    assert (
        unmask_links('[Bank](https://evil.example "Your bank")')
        == '[Bank] (https://evil.example "Your bank")'
    )
    assert unmask_links("[[x](https://a.example)](https://b.example)") == (
        "[x (https://a.example)] (https://b.example)"
    )


@given(texts())
def test_no_text_keeps_a_link_of_its_own_on_either_platform(text: str) -> None:
    shown = unmask_links(text)
    assert "](" not in shown, "every link form in Discord's and our markdown starts with ]("
    assert not _SLACK_LINK.search(to_mrkdwn(shown))


@given(long_texts())
def test_a_long_text_is_unmasked_whole(text: str) -> None:
    assert "](" not in unmask_links(text)
