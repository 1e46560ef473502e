"""`components.yml` as a team writes it: each mistake is one line naming the file and the entry,
before anything reaches the database (a name or group longer than its column failed the start on
PostgreSQL with "value too long")."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.status.components import ComponentsFileError, load_components_file


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("components:\n  - group: Platform\n", "entry 1 needs a `name`"),
        ("components:\n  - name: Pay Ments\n", "entry 1: name 'pay ments' must be lowercase letters"),
        (f"components:\n  - name: {'a' * 81}\n", "entry 1: the name is 81 characters; keep it to 80"),
        (
            f"components:\n  - name: api\n    group: {'P' * 41}\n",
            "entry 1: the group is 41 characters; keep it to 40",
        ),
        ("components:\n  - name: api\n  - name: API\n", "component 'api' is declared twice"),
        ("components:\n  - name: api\n    aliases: rest\n", "entry 1: `aliases` is a list of strings"),
        (
            f"components:\n  - name: api\n  - name: pay\n    aliases: [billing, {'b' * 81}]\n",
            "entry 2: alias 2 is 81 characters; keep each to 80",
        ),
        (
            "components:\n  - name: api\n    aliases: [rest, 'public api, v2']\n",
            "entry 1: alias 2 holds a comma; list each alias on its own",
        ),
        ("components: {api: 1}\n", "expected a top-level `components:` list"),
        ("components: [\n", "not valid YAML"),
    ],
)
def test_a_mistake_in_components_yml_is_named_with_its_entry(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "components.yml"
    path.write_text(text)
    with pytest.raises(ComponentsFileError) as raised:
        load_components_file(path)
    assert str(raised.value).startswith(f"{path}: ") and says in str(raised.value), raised.value


def test_the_longest_name_and_group_allowed_load(tmp_path: Path) -> None:
    path = tmp_path / "components.yml"
    path.write_text(f"components:\n  - name: {'a' * 80}\n    group: {'P' * 40}\n")
    (spec,) = load_components_file(path)
    assert (len(spec.name), len(spec.group)) == (80, 40)


def test_an_alias_as_long_as_a_name_loads(tmp_path: Path) -> None:
    path = tmp_path / "components.yml"
    path.write_text(f"components:\n  - name: api\n    aliases: [rest api, {'r' * 80}]\n")
    (spec,) = load_components_file(path)
    assert spec.aliases == ("rest api", "r" * 80)
