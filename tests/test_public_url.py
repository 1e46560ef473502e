"""Links to the status page in answers: PUBLIC_URL when a team sets it, else the address the bot's
own web server listens on, so moving WEB_PORT moves the links too."""

from __future__ import annotations

from pathlib import Path

from tests.harness import make_settings


def test_without_public_url_links_follow_the_web_servers_port(tmp_path: Path) -> None:
    assert make_settings(tmp_path, web_port=18931).status_page_url == "http://127.0.0.1:18931/"
    assert make_settings(tmp_path).status_page_url == "http://127.0.0.1:8080/"


def test_a_server_on_every_interface_is_linked_on_this_machine(tmp_path: Path) -> None:
    assert (
        make_settings(tmp_path, web_host="0.0.0.0", web_port=9000).status_page_url == "http://127.0.0.1:9000/"
    )
    assert make_settings(tmp_path, web_host="::1", web_port=9000).status_page_url == "http://[::1]:9000/"


def test_public_url_wins_when_set(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, web_port=18931, public_url="https://status.example.com/")
    assert settings.status_page_url == "https://status.example.com/"
