"""What a typed component name resolves to: a component's own name always means that component."""

from __future__ import annotations

from bot.status.components import Known, mentioned, resolve

# components.yml accepts an alias that is another component's name (chat's /component add refuses
# it): declared first, api's alias "web" took the name of the component called web.
API_CALLED_WEB_TOO = [Known(name="api", aliases=("web",)), Known(name="web")]


def test_a_components_own_name_wins_over_another_components_alias() -> None:
    assert resolve("web", API_CALLED_WEB_TOO) == "web"
    assert resolve("api", API_CALLED_WEB_TOO) == "api"


def test_a_sentence_naming_a_component_mentions_that_component() -> None:
    assert mentioned("is web down?", API_CALLED_WEB_TOO) == ["web"]
