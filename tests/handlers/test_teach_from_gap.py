"""Teaching the bot from a knowledge gap of `/support report`: its Teach button offers to attach
the gap's questions to the nearest article, or to draft a new one with `/support kb teach`, each
with a replay of the gap's stored questions and of the other articles' recent answers; nothing is
published before staff saw it. `/support kb check` lists the drafts awaiting approval. SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core.events import Actor, Conversation, Platform
from bot.insights import digest
from bot.insights.lessons import GapRef
from bot.insights.schedule import Schedule
from bot.kb import learned
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.teach import MAX_PHRASING
from storage import decisions_repo
from storage.db import Database
from tests.fake_adapter import SentMessage
from tests.harness import BotHarness, button, make_settings
from tests.kb.test_cli import NEEDS_SEMANTIC

THEME = [
    "how do I change the colour of the dashboard theme?",
    "can I change the dashboard theme colour to dark?",
    "dark mode for the dashboard theme?",
]


def customer(number: int) -> Actor:
    return Actor(platform=Platform.CONSOLE, id=f"C{number + 10}", display_name=f"Customer {number}")


async def a_gap_about_the_theme(bot: BotHarness) -> SentMessage:
    """Three people ask what no article answers; the report shows it as a gap with a Teach button."""
    for number, question in enumerate(THEME):
        await bot.says(customer(number), question)
        bot.clock.advance(minutes=5)
    (report,) = await bot.staff_runs("/support report")
    assert "Knowledge gaps" in {f.name for f in report.delivery.message.fields}
    return report


async def test_the_report_offers_to_teach_each_gap(bot: BotHarness) -> None:
    report = await a_gap_about_the_theme(bot)
    (teach,) = report.delivery.message.buttons
    assert teach.label == "Teach gap 1" and GapRef.parse(teach.value) is not None
    (offer,) = await bot.click(bot.staff, teach, on=report)
    assert offer.delivery.message.title == f"Teach the bot from gap `{teach.value}` (3 people, 3 questions)"
    assert offer.delivery.message.private_to == bot.staff
    assert "This would have answered" in offer.text and "of 3 (before: 0)" in offer.text
    assert f"/support kb teach {teach.value} draft <title> | <answer>" in offer.text
    (refusal,) = await bot.click(bot.customer, teach, on=report)
    assert refusal.text.startswith("That's for the support team only.")


async def an_answer_by_another_article(bot: BotHarness, question: str, *, article: str) -> None:
    """A customer's question another article answered two days ago (under the KB of that day)."""
    async with bot.bot.database.transaction() as session:
        await decisions_repo.record(
            session,
            actor_key="console:C99",
            platform="console",
            conversation_key="console:W1:community",
            question=question,
            band="answer",
            candidates=[(article, 0.9)],
            at=bot.clock.now - timedelta(days=2),
            outcome="answered",
        )


async def test_staff_draft_an_article_from_a_gap_see_its_replay_and_approve_it(
    bot: BotHarness, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    ref = report.delivery.message.buttons[0].value
    await an_answer_by_another_article(
        bot, "change the dashboard theme colour to dark please?", article="sso-setup"
    )
    await an_answer_by_another_article(bot, "where can I download my invoices?", article="invoice-download")
    answer = "Open **Settings → Appearance** and pick one."
    (drafted,) = await bot.staff_runs(f"/support kb teach {ref} draft Change the dashboard theme | {answer}")
    assert drafted.text.startswith(
        f"Drafted `change-the-dashboard-theme` from gap `{ref}`; "
        "`/support kb approve change-the-dashboard-theme` publishes it."
    )
    assert (
        "This would have answered 3 of 3 (before: 0), and would have taken 1 question away from other "
        "articles (of 2 they answered lately)." in drafted.text
    )
    stored = learned.read(kb / "learned.yml")
    (article,) = stored.pending
    assert (article.title, article.taught_by, article.from_ticket) == (
        "Change the dashboard theme",
        "console:S1",
        None,
    )
    assert sorted(p.text for p in stored.phrasings) == sorted(THEME)

    (check,) = await bot.staff_runs("/support kb check")
    assert "1 draft awaiting approval:" in check.text
    assert "- `change-the-dashboard-theme` (Change the dashboard theme), taught by console:S1" in check.text
    assert "`/support kb approve change-the-dashboard-theme`" in check.text
    not_yet = await bot.says(customer(7), "how do I change the colour of the dashboard theme?")
    assert all(m.delivery.message.title != "Change the dashboard theme" for m in not_yet), (
        "a draft answers nobody"
    )

    await bot.staff_runs("/support kb approve change-the-dashboard-theme")
    (answer,) = await bot.says(customer(8), "how do I change the colour of the dashboard theme?")
    assert answer.delivery.message.title == "Change the dashboard theme"
    (check,) = await bot.staff_runs("/support kb check")
    assert "No drafts await approval." in check.text


async def test_a_drafted_answer_keeps_the_no_break_spaces_it_was_typed_with(
    bot: BotHarness, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    ref = report.delivery.message.buttons[0].value
    # French puts a no-break space before ":" and "?"; the answer reaches customers once approved.
    answer = "Ouvrez **Réglages\u00a0→ Apparence**\u00a0: le thème sombre y est\u00a0!"
    await bot.staff_runs(f"/support kb teach\u00a0{ref} draft\u00a0Thème sombre | {answer}")
    (article,) = learned.read(kb / "learned.yml").pending
    assert (article.title, article.answer) == ("Thème sombre", answer)


async def test_staff_attach_a_gaps_questions_to_an_article_after_seeing_the_replay(
    bot: BotHarness, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    ref = report.delivery.message.buttons[0].value
    (preview,) = await bot.staff_runs(f"/support kb teach {ref} attach sso-setup")
    assert "Attach to `sso-setup`: This would have answered" in preview.text
    assert not (kb / "learned.yml").exists(), "nothing is taught before staff confirm"
    (taught,) = await bot.click(bot.staff, button(preview, "Attach to sso-setup"), on=preview)
    assert taught.text.startswith(
        f"Taught `sso-setup` 3 questions of gap `{ref}` (phrasings `p1`, `p2`, `p3`)."
    )
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    assert set(THEME) <= set(holder.get("sso-setup").questions)  # type: ignore[union-attr]
    (again,) = await bot.click(bot.staff, button(preview, "Attach to sso-setup"), on=preview)
    assert "already has every one of these questions" in again.text


async def test_teaching_from_a_gap_says_what_is_wrong_and_is_for_staff(bot: BotHarness) -> None:
    report = await a_gap_about_the_theme(bot)
    ref = report.delivery.message.buttons[0].value
    (unknown,) = await bot.staff_runs("/support kb teach g-banana attach sso-setup")
    assert unknown.text.startswith("`g-banana` is not a gap's name")
    (gone,) = await bot.staff_runs(f"/support kb teach g9999{ref[1:]} attach sso-setup")
    assert "is no longer a gap" in gone.text
    for half in (
        f"/support kb teach {ref}",
        f"/support kb teach {ref} draft no bar here",
        f"/support kb teach {ref} attach",
    ):
        (usage,) = await bot.staff_runs(half)
        assert "Which gap, and how should I teach it?" in usage.text, half
    (no_article,) = await bot.staff_runs(f"/support kb teach {ref} attach no-such-article")
    assert "There is no article `no-such-article`" in no_article.text
    (refusal,) = await bot.customer_runs(f"/support kb teach {ref} draft Theme | Use settings.")
    assert refusal.text.startswith("That's for the support team only.")
    (refusal,) = await bot.customer_runs("/support kb check")
    assert refusal.text.startswith("That's for the support team only.")


async def test_quoted_gap_questions_are_clipped_and_inert(bot: BotHarness) -> None:
    loud = "@everyone <!here> <@U999> **how** do I `change` the dashboard theme colour? " + "x" * 20_000
    for number, question in enumerate([loud, *THEME[1:]]):
        await bot.says(customer(number), question)
    (report,) = await bot.staff_runs("/support report")
    (offer,) = await bot.click(bot.staff, report.delivery.message.buttons[0], on=report)
    message = offer.delivery.message
    assert message.mentions == ()
    assert "<!here>" not in message.text and "<@U999>" not in message.text and "**how**" not in message.text
    assert max(len(line) for line in message.text.splitlines()) < 1000


async def digest_posted(bot: BotHarness, *, due: datetime, schedule: Schedule, base: Path) -> SentMessage:
    """The weekly digest due at `due`, as posted in the staff channel."""
    sent = await digest.send_digest(bot.bot.dispatcher, due=due, schedule=schedule, base=base)
    assert sent is not None
    (post,) = [m for m in bot.staff_posts() if m.delivery.message.title == sent.message.title]
    return post


async def test_the_weekly_digest_offers_the_same_teach_buttons(bot: BotHarness, tmp_path: Path) -> None:
    for number, question in enumerate(THEME):
        await bot.says(customer(number), question)
    post = await digest_posted(
        bot,
        due=bot.clock.now + timedelta(hours=1),
        schedule=Schedule(0, time(9, 0), ZoneInfo("UTC")),
        base=tmp_path,
    )
    (teach,) = post.delivery.message.buttons
    assert teach.label == "Teach gap 1"
    (offer,) = await bot.click(bot.staff, teach, on=post)
    assert "This would have answered" in offer.text and offer.delivery.message.private_to == bot.staff


async def test_a_digest_of_the_week_the_clocks_went_back_finds_its_gap_again(
    bot: BotHarness, tmp_path: Path
) -> None:
    # Paris left summer time on 25 October 2026: the week to Monday 26 October 09:00 is 169 hours.
    schedule = Schedule(0, time(9, 0), ZoneInfo("Europe/Paris"))
    due = datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    bot.clock.now = schedule.previous(due) + timedelta(minutes=10)  # in the week's first hour
    for number, question in enumerate(THEME):
        await bot.says(customer(number), question)
        bot.clock.advance(minutes=5)
    bot.clock.now = due
    post = await digest_posted(bot, due=due, schedule=schedule, base=tmp_path)
    (teach,) = post.delivery.message.buttons
    assert teach.value.split("-")[1] == f"{169 * 60}m", "the week's own length, not 7 × 24 hours"
    (offer,) = await bot.click(bot.staff, teach, on=post)
    assert offer.delivery.message.title == f"Teach the bot from gap `{teach.value}` (3 people, 3 questions)"
    draft = f"/support kb teach {teach.value} draft Dark theme | Settings, then Theme."
    (drafted,) = await bot.staff_runs(draft)
    assert drafted.text.startswith(f"Drafted `dark-theme` from gap `{teach.value}`"), drafted.text


async def test_kb_check_says_when_the_learned_file_cannot_be_read(bot: BotHarness, kb: Path) -> None:
    (kb / "learned.yml").write_text("articles: [this is: not, a list of items\n")
    (check,) = await bot.staff_runs("/support kb check")
    assert check.delivery.message.title == "Knowledge base check"
    assert "6 entries loaded from" in check.text
    assert "The learned file cannot be read:" in check.text and "not valid YAML" in check.text


async def test_staff_decline_a_gap_and_questions_like_it_go_to_the_team_until_forgotten(
    bot: BotHarness, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    (teach,) = report.delivery.message.buttons
    (offer,) = await bot.click(bot.staff, teach, on=report)
    assert "Not ours (escalate questions like these to the team, always): From now on I would escalate" in (
        offer.text
    )
    assert f"Decline it: `/support kb teach {teach.value} decline`" in offer.text
    assert not (kb / "learned.yml").exists(), "nothing is declined before staff click"

    (declined,) = await bot.click(bot.staff, button(offer, "Not ours"), on=offer)
    assert declined.text.startswith(
        f"Declined gap `{teach.value}` as topic `n1` (3 questions): questions like these now go to the "
        "team. Undo: `/support kb forget n1`."
    )
    (topic,) = learned.read(kb / "learned.yml").declined
    assert (topic.id, sorted(topic.questions), topic.taught_by, topic.from_gap) == (
        "n1",
        sorted(THEME),
        "console:S1",
        teach.value,
    )

    await bot.says(customer(5), "dark mode for my dashboard theme, please?")
    (card,) = [m for m in bot.staff_posts() if "dark mode for my dashboard theme" in m.text]
    assert "the team handles questions like this in person" in card.text
    (after,) = await bot.staff_runs("/support report")
    assert after.delivery.message.buttons == (), "a declined topic is settled, not a gap"
    (check,) = await bot.staff_runs("/support kb check")
    assert "1 declined topic (questions like these are escalated):" in check.text
    assert "- `n1`: 3 questions" in check.text and "`/support kb forget n1`" in check.text

    (forgot,) = await bot.staff_runs("/support kb forget n1")
    assert forgot.text.startswith("Forgot declined topic `n1` (3 questions")
    assert learned.read(kb / "learned.yml").declined == ()
    await bot.says(customer(6), "dark mode for my dashboard theme, please now?")
    (card,) = [m for m in bot.staff_posts() if "dark mode for my dashboard theme, please now" in m.text]
    assert "I wasn't sure how to answer" in card.text


async def test_a_forgotten_topic_brings_back_what_it_caught_and_its_id_is_not_given_again(
    bot: BotHarness, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    (teach,) = report.delivery.message.buttons
    (offer,) = await bot.click(bot.staff, teach, on=report)
    await bot.click(bot.staff, button(offer, "Not ours"), on=offer)
    await bot.says(customer(5), "dark mode for my dashboard theme, please?")
    (card,) = [m for m in bot.staff_posts() if "dark mode for my dashboard theme" in m.text]
    assert "the team handles questions like this in person" in card.text

    await bot.staff_runs("/support kb forget n1")
    (report,) = await bot.staff_runs("/support report")
    (gap,) = report.delivery.message.buttons
    (offer,) = await bot.click(bot.staff, gap, on=report)
    assert offer.delivery.message.title.endswith("(4 people, 4 questions)"), (
        "the caught question is a gap again"
    )
    (declined,) = await bot.click(bot.staff, button(offer, "Not ours"), on=offer)
    assert "as topic `n2` (4 questions)" in declined.text, "n1 was forgotten: a new decline is not n1 again"
    assert [topic.id for topic in learned.read(kb / "learned.yml").declined] == ["n2"]


def _long(question: str) -> str:
    """The question padded with filler words past the clip of a stored phrasing, the clip landing
    on a space (as it does for about one long question in six)."""
    text = question + (" an" if (MAX_PHRASING - 1 - len(question)) % 2 else "")
    text += " a" * ((MAX_PHRASING - 1 - len(text)) // 2)
    assert len(text) == MAX_PHRASING - 1
    return text + " the" * 10


async def test_a_declined_gap_of_long_questions_is_settled_too(bot: BotHarness) -> None:
    for number, question in enumerate(THEME):
        await bot.says(customer(number), _long(question))
        bot.clock.advance(minutes=5)
    (report,) = await bot.staff_runs("/support report")
    (gap,) = report.delivery.message.buttons
    (offer,) = await bot.click(bot.staff, gap, on=report)
    await bot.click(bot.staff, button(offer, "Not ours"), on=offer)
    (after,) = await bot.staff_runs("/support report")
    assert after.delivery.message.buttons == (), "the questions the topic holds are not a gap"


async def test_declining_by_command_shows_the_replay_before_anything_is_written(
    bot: BotHarness, kb: Path
) -> None:
    report = await a_gap_about_the_theme(bot)
    ref = report.delivery.message.buttons[0].value
    (preview,) = await bot.staff_runs(f"/support kb teach {ref} decline")
    assert preview.delivery.message.title.startswith(f"Decline gap `{ref}`")
    assert "Not ours: From now on I would escalate 3 of these 3 questions (before, I answered 0" in (
        preview.text
    )
    assert not (kb / "learned.yml").exists()
    (usage,) = await bot.staff_runs(f"/support kb teach {ref} decline now please")
    assert "Which gap, and how should I teach it?" in usage.text
    (declined,) = await bot.click(bot.staff, button(preview, "Not ours"), on=preview)
    assert "as topic `n1`" in declined.text
    (refusal,) = await bot.click(bot.customer, button(preview, "Not ours"), on=preview)
    assert refusal.text.startswith("That's for the support team only.")
    assert len(learned.read(kb / "learned.yml").declined) == 1


@pytest.mark.parametrize("matcher", [pytest.param("semantic", marks=NEEDS_SEMANTIC)])
async def test_a_gap_with_nothing_to_decline_still_offers_its_lessons(
    database: Database, tmp_path: Path, kb: Path, matcher: str
) -> None:
    """The semantic matcher places questions of punctuation alone, and two people asking them are a
    gap; declining it has no question to keep, which the offer says instead of failing."""
    harness = await BotHarness.create(
        make_settings(tmp_path, kb_path=str(kb), matcher=matcher), database=database
    )
    try:
        for number, text in enumerate(["??", "???", "?!"]):
            dm = Conversation(
                platform=Platform.CONSOLE, workspace_id="W1", channel_id=f"D-{number}", is_direct=True
            )
            await harness.says(customer(number), text, conversation=dm)
            harness.clock.advance(minutes=5)
        (report,) = await harness.staff_runs("/support report")
        (gap,) = report.delivery.message.buttons
        (offer,) = await harness.click(harness.staff, gap, on=report)
        assert offer.delivery.message.title is not None and offer.delivery.message.title.startswith("Teach")
        assert "Not ours: There is no question to decline." in offer.text
        assert "Not ours" not in {b.label for b in offer.delivery.message.buttons}
        (refusal,) = await harness.staff_runs(f"/support kb teach {gap.value} decline")
        assert "There is no question to decline." in refusal.text
    finally:
        await harness.close()


async def test_a_declined_topic_keeps_the_gaps_most_typical_questions_first(
    bot: BotHarness, kb: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.kb import teach

    monkeypatch.setattr(teach, "MAX_DECLINED_QUESTIONS", 1)
    report = await a_gap_about_the_theme(bot)
    (offer,) = await bot.click(bot.staff, report.delivery.message.buttons[0], on=report)
    await bot.click(bot.staff, button(offer, "Not ours"), on=offer)
    (topic,) = learned.read(kb / "learned.yml").declined
    example = report.delivery.message.fields[-1].value  # the report's first example of the gap
    assert len(topic.questions) == 1 and topic.questions[0] in example


async def test_a_gap_name_whose_time_cannot_be_is_not_a_gap_name(bot: BotHarness) -> None:
    """A name typed (or a button value sent) with an end time past the year 9999 is a typo to
    point out, not an error to apologise for."""
    (reply,) = await bot.staff_runs("/support kb teach g1-7-ffffffffff attach export-failed")
    assert reply.text.startswith("`g1-7-ffffffffff` is not a gap's name"), reply.text
