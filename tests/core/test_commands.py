"""The command catalogue: usages written from the declared options, routes for platforms that cannot
mix free text and subcommands, and declarations that cannot work refused when the bot is built."""

from __future__ import annotations

import pytest

from bot.core.commands import Catalogue, Command, Option, OptionKind
from bot.core.router import Router


def test_usage_is_written_from_the_options_in_the_order_they_are_typed() -> None:
    number = Option("number", kind=OptionKind.NUMBER)
    assert Command(("ticket", "close"), "Close", (number, Option("reason", required=False))).usage == (
        "/ticket close <number> [reason]"
    )
    assert Command(("ticket",), "Open", (Option("summary", label="what happened"),)).usage == (
        "/ticket <what happened>"
    )
    level = Option("level", choices=("urgent", "low"), spell_choices=True)
    assert Command(("ticket", "priority"), "Priority", (number, level)).usage == (
        "/ticket priority <number> urgent|low"
    )
    many = Option("components", required=False, many=True)
    assert (
        Command(("announce",), "Announce", (many, Option("text"))).usage == "/announce [components…] <text>"
    )
    keywords = (Option("name"), Option("aliases", required=False, keyword=True, label="a,b"))
    assert Command(("component", "add"), "Add", keywords).usage == "/component add <name> [aliases=<a,b>]"
    assert Command(("unsubscribe",), "Stop").usage == "/unsubscribe"


def test_a_free_text_form_beside_subcommands_has_an_implicit_route() -> None:
    new = Command(("ticket",), "Open", (Option("summary"),), implicit="new")
    status = Command(("ticket", "status"), "Status", (Option("number"),))
    catalogue = Catalogue((new, status), {"ticket": "Tickets"})
    assert new.route == ("ticket", "new") and new.arguments == "<summary>"
    assert catalogue.find(["ticket", "new"]) is new and catalogue.find(["ticket", "status"]) is status
    assert catalogue.find(["ticket"]) is None
    assert catalogue.names == ["ticket"] and catalogue.under("ticket") == [new, status]


def test_declarations_no_platform_could_offer_are_refused() -> None:
    status = Command(("ticket", "status"), "Status")
    with pytest.raises(ValueError, match="implicit"):
        Catalogue((Command(("ticket",), "Open"), status), {"ticket": "Tickets"})
    with pytest.raises(ValueError, match="describe it as a group"):
        Catalogue((status,), {})
    with pytest.raises(ValueError, match="two commands"):
        Catalogue((status, status), {"ticket": "Tickets"})
    with pytest.raises(ValueError, match="lowercase"):
        Command(("Ticket",), "Open")
    with pytest.raises(ValueError, match="two options"):
        Command(("ticket", "reply"), "Reply", (Option("text"), Option("text")))
    with pytest.raises(ValueError, match="over 100"):
        Command(("status",), "x" * 101)
    with pytest.raises(ValueError, match="has none"):
        Option("level", spell_choices=True)


def test_staff_commands_say_so_where_a_platform_lists_them() -> None:
    assert (
        Command(("ticket", "claim"), "Take the ticket", staff=True).description == "Take the ticket (staff)"
    )
    assert Command(("status",), "Is everything working?").description == "Is everything working?"


def test_included_routers_bring_their_commands_and_groups() -> None:
    tickets, status = Router("tickets"), Router("status")
    tickets.group("ticket", "Tickets")
    tickets.command("ticket", "Open a ticket", Option("summary"), implicit="new")
    tickets.command("ticket status", "Where it stands", Option("number", kind=OptionKind.NUMBER))
    status.command("status", "Is everything working?", Option("component", required=False))

    catalogue = Router("root").include(tickets, status).catalogue()

    assert [c.usage for c in catalogue.commands] == [
        "/ticket <summary>",
        "/ticket status <number>",
        "/status [component]",
    ]
    assert catalogue.groups == {"ticket": "Tickets"}
