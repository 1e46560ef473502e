"""The handlers' command catalogue: `/support help` is written from it, every command it declares
reaches a handler, and the usages the status commands show in their errors are the ones help shows."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import build_router
from bot.core.dispatch import Outcome
from bot.handlers import incidents
from tests.harness import BotHarness

CUSTOMER_LINES = [
    "- `/support help`: What I can do, and the commands you can use",
    "- `/ticket <what happened>`: Open a ticket so a person helps you",
    "- `/ticket status <number>`: Where your ticket stands and what happens next",
    "- `/tickets [mine]`: Your open tickets",
    "- `/ticket reply <number> <text>`: "
    "Add to your ticket (staff: answer the customer, or reply in the ticket's staff thread)",
    "- `/status [component]`: Is everything working? The state of every component, or of one",
    "- `/subscribe [components…]`: Get status updates here (a DM: yours; a channel: staff or admins)",
    "- `/unsubscribe`: Stop status updates here",
    "- `/subscriptions`: What this channel (staff: every channel) is subscribed to",
]
STAFF_LINES = [
    "- `/ticket note <number> <text>`: Add an internal note the customer never sees",
    "- `/ticket claim <number>`: Take the ticket",
    "- `/ticket close <number> [reason]`: Ask the customer to confirm it is solved; they see the reason",
    "- `/ticket priority <number> urgent|high|normal|low`: Change the first-response target",
    "- `/support questions [days]`: The questions that keep coming back, and how they went",
    "- `/support report [days]`: How support went over a period: figures, answer quality, knowledge gaps",
    "- `/support kb reload`: Load the knowledge base again after editing it",
    "- `/support kb check`: How the knowledge base answers, and the drafts awaiting approval",
    "- `/support kb approve <id>`: Publish an article drafted from a lesson",
    "- `/support kb forget <id>`: Undo a phrasing the bot was taught, or a declined topic",
    "- `/support kb teach <gap> <how>`: Teach the bot from a knowledge gap (attach, draft, or decline)",
    "- `/support privacy export <platform:user_id>`: Write everything stored about a person to a file",
    "- `/support privacy erase <platform:user_id>`: Erase a person's words and identity (asks to confirm)",
    "- `/incident open <components> <impact> <title>`: Open an incident and tell every subscribed channel",
    "- `/incident update <id> <status> [impact=<impact>] <message>`: "
    "Post an update (and a new impact), threaded under the first notice; reopens a resolved one",
    "- `/incident resolve <id> [message]`: Resolve; customers who asked are told",
    "- `/incident postmortem <id> <text>`: "
    "Publish a resolved incident's postmortem on the status page (not broadcast)",
    "- `/component set <name> <status>`: Set a component's status (history is kept)",
    "- `/component add <name> [group=<group>] [aliases=<a,b>]`: Add a component",
    "- `/component history <name>`: A component's status history",
    "- `/maintenance schedule <components> <start> <end> <title>`: Schedule maintenance and announce it",
    "- `/maintenance end <id> [note]`: End a window early, or cancel one, and tell the subscriptions",
    "- `/announce [components…] <text>`: Broadcast an announcement to the subscriptions",
]


async def test_help_lists_every_declared_command_customers_see_theirs(bot: BotHarness) -> None:
    (customer,) = await bot.customer_runs("/support help")
    (staff,) = await bot.staff_runs("/support help")

    listed = [line for line in customer.text.splitlines() if line.startswith("- `/")]
    assert listed == CUSTOMER_LINES
    assert "**Staff**" not in customer.text
    staff_part = staff.text.split("**Staff**", 1)[1]
    assert [line for line in staff_part.splitlines() if line.startswith("- `/")] == STAFF_LINES


async def test_every_declared_command_reaches_a_handler_that_knows_it(bot: BotHarness) -> None:
    """Typed bare, as staff, each command gets its own answer (usually its usage), never "I don't
    know": help cannot advertise, nor Discord offer, a command no handler answers."""
    for command in build_router().catalogue().commands:
        sent = await bot.staff_runs(f"/{command.qualified_name}")
        assert bot.last_outcome in (Outcome.HANDLED, Outcome.USER_ERROR), command.usage
        assert sent and not any("I don't know" in m.text for m in sent), (command.usage, sent[-1].text)


def test_each_status_command_example_is_typed_as_that_command() -> None:
    """The usage in a status command's error comes from its declaration; its example is written by
    hand, so it must at least start with the command it illustrates."""
    usages = (
        incidents.INCIDENT_OPEN,
        incidents.INCIDENT_UPDATE,
        incidents.INCIDENT_RESOLVE,
        incidents.COMPONENT_SET,
        incidents.COMPONENT_ADD,
        incidents.COMPONENT_HISTORY,
        incidents.maintenance_usage(datetime.now(UTC)),
        incidents.ANNOUNCE,
    )
    declared = {command.usage: command for command in build_router().catalogue().commands}
    for usage in usages:
        command = declared[usage.usage]
        assert usage.example.startswith(f"/{command.qualified_name} "), usage


async def test_ticket_help_tells_staff_the_close_reason_reaches_the_customer(bot: BotHarness) -> None:
    (help_text,) = await bot.staff_runs("/ticket help")
    (close_line,) = [line for line in help_text.text.splitlines() if "/ticket close" in line]
    assert close_line.endswith("they see the reason"), close_line
    (close,) = [c for c in build_router().commands if c.path == ("ticket", "close")]
    assert {o.name: o.description for o in close.options}["reason"] == "Shown to the customer"

    # And they do: the reason is in the question the customer is asked.
    await bot.customer_says("can I talk to a human please")
    sent = await bot.staff_runs("/ticket close 1 fixed in 2.4.1")
    (question,) = [m for m in sent if m.channel_id == "community"]
    assert "(fixed in 2.4.1)" in question.text
