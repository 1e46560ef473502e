"""Reading what an earlier attempt at a message left in a channel: its parts by their metadata, its
files by where they are, right after its last part."""

from __future__ import annotations

from typing import Any

from bot.adapters.slack.earlier import earlier_copy, metadata, still_to_upload

BOT = {"user": "U0BOT", "bot_id": "B0BOT"}


def _said(ts: str, text: str, *, key: str | None = None, part: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = {**BOT, "ts": ts, "text": text}
    if key:
        message["metadata"] = metadata(key, part)
    return message


def _file(ts: str, name: str, size: int, **by: str) -> dict[str, Any]:
    return {**(by or BOT), "ts": ts, "subtype": "file_share", "files": [{"name": name, "size": size}]}


def test_the_files_right_after_the_message_are_its_own_and_a_later_message_ends_them() -> None:
    channel = [
        _file("5.0", "shot.png", 10),  # the next message's file, after its own text
        _said("4.0", "still failing", key="r2"),
        {"user": "U0CASEY", "ts": "3.5", "text": "thanks"},  # a person in between
        _file("3.0", "export.log", 20, user="U0BOT"),  # a share naming only the bot's user
        _file("2.5", "other.png", 10, user="U0OTHER", bot_id="B0OTHER"),  # another app's
        _file("2.0", "shot.png", 10),
        _said("1.0", "my export failed", key="r1"),
    ]

    found = earlier_copy(channel, key="r1", bot_user_id="U0BOT", bot_id="B0BOT")

    assert found.parts == {0: "1.0"}
    assert found.files == (("shot.png", 10), ("export.log", 20))
    assert found.has_all(1) and not found.has_all(2)


def test_nothing_of_the_message_found_means_none_of_its_files_either() -> None:
    channel = [_said("1.0", "other", key="r9"), _file("2.0", "shot.png", 10)]

    found = earlier_copy(channel, key="r1", bot_user_id="U0BOT", bot_id="B0BOT")

    assert (dict(found.parts), found.files) == ({}, ())


def test_each_file_already_there_stands_for_one_of_its_name_and_size() -> None:
    files = [("shot.png", 10), ("shot.png", 10), ("shot.png", 11), ("log.txt", 3)]

    assert still_to_upload(files, [("shot.png", 10)]) == [False, True, True, True]


def test_a_file_known_to_be_there_does_not_stand_for_another_of_the_same_name_and_size() -> None:
    shown = [("shot.png", 10), ("shot.png", 10)]

    assert still_to_upload([("shot.png", 10)], shown, besides=[("shot.png", 10)]) == [False]
    assert still_to_upload([("shot.png", 10)], shown[:1], besides=[("shot.png", 10)]) == [True]
