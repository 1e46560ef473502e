"""Components: loading `components.yml`, and resolving names typed by people (typos included)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

from storage.status_repo import ComponentSpec, split_names

MAX_NAME = 80  # the status_components.name column
# A group is one word heading its components on the status page, where a longer one would wrap on a
# phone; every platform's message limit and the status_components.group_name column (80) allow it.
MAX_GROUP = 40
# An alias is another name people type for a component ("rest api"), so it gets a name's limit: its
# column has none, but every typed word is compared with every alias, and an error quotes it.
MAX_ALIAS = MAX_NAME
NAME = re.compile(rf"^[a-z0-9][a-z0-9_-]{{0,{MAX_NAME - 1}}}$")
# A typed name must be this similar (rapidfuzz ratio, 0-100) to a name or alias to count as it:
# "paymnets" scores 87.5 against "payments", "api" scores 67 against "app".
RESOLVE_CUTOFF = 75.0
# In free text every word is a candidate, so demand more, and ignore short words ("is", "it").
MENTION_CUTOFF = 80.0
MENTION_MIN_LENGTH = 4


class ComponentsFileError(Exception):
    """components.yml is missing or malformed; the message names the file and the entry."""


def load_components_file(path: Path) -> list[ComponentSpec]:
    """Read the declared components. Format: `components: [{name, group?, aliases?, description?}]`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ComponentsFileError(f"{path}: file not found (set COMPONENTS_FILE)") from None
    except yaml.YAMLError as error:
        raise ComponentsFileError(f"{path}: not valid YAML ({error})") from None
    entries = data.get("components") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ComponentsFileError(f"{path}: expected a top-level `components:` list")
    specs: list[ComponentSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ComponentsFileError(f"{path}: entry {index} needs a `name`")
        name = entry["name"].strip().lower()
        if len(name) > MAX_NAME:
            raise ComponentsFileError(
                f"{path}: entry {index}: the name is {len(name)} characters; keep it to {MAX_NAME}"
            )
        if not NAME.match(name):
            raise ComponentsFileError(
                f"{path}: entry {index}: name '{name}' must be lowercase letters, digits, '-' or '_' "
                "(put spoken forms in `aliases`)"
            )
        if name in seen:
            raise ComponentsFileError(f"{path}: component '{name}' is declared twice")
        seen.add(name)
        group = str(entry.get("group") or "")
        if len(group) > MAX_GROUP:
            raise ComponentsFileError(
                f"{path}: entry {index}: the group is {len(group)} characters; keep it to {MAX_GROUP}"
            )
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ComponentsFileError(f"{path}: entry {index}: `aliases` is a list of strings")
        if (too_long := long_alias([a.strip() for a in aliases])) is not None:
            raise ComponentsFileError(f"{path}: entry {index}: {too_long}")
        # Aliases are stored comma-separated (as `/component add ... aliases=a,b` takes them).
        if (place := next((n for n, a in enumerate(aliases, start=1) if "," in a), None)) is not None:
            raise ComponentsFileError(
                f"{path}: entry {index}: alias {place} holds a comma; list each alias on its own"
            )
        specs.append(
            ComponentSpec(
                name=name,
                aliases=tuple(a.strip().lower() for a in aliases if a.strip()),
                group=group,
                description=str(entry.get("description") or ""),
            )
        )
    return specs


def long_alias(aliases: Sequence[str]) -> str | None:
    """`alias 2 is 95 characters; keep each to 80` for the first alias over MAX_ALIAS, else None: by
    its place in the list, so the error never repeats a long text."""
    for place, alias in enumerate(aliases, start=1):
        if len(alias) > MAX_ALIAS:
            return f"alias {place} is {len(alias)} characters; keep each to {MAX_ALIAS}"
    return None


@dataclass(frozen=True, slots=True)
class Known:
    """What resolution needs of a component: its name and the other names people use for it."""

    name: str
    aliases: tuple[str, ...] = ()

    @classmethod
    def of(cls, component: object) -> Known:
        return cls(name=component.name, aliases=tuple(split_names(component.aliases)))  # type: ignore[attr-defined]


def _choices(known: Sequence[Known]) -> dict[str, str]:
    """Every spoken form -> the component's name. Names first: components.yml may give one component
    an alias that is another's name, and the component called that is the one meant."""
    forms = {item.name.lower(): item.name for item in known}
    for item in known:
        for form in (*item.aliases, item.name.replace("-", " "), item.name.replace("_", " ")):
            forms.setdefault(form.lower(), item.name)
    return forms


def resolve(query: str, known: Sequence[Known]) -> str | None:
    """The component a person meant by `query` ("Payments", "paymnets", "billing" as an alias)."""
    wanted = query.strip().lower()
    if not wanted:
        return None
    forms = _choices(known)
    if wanted in forms:
        return forms[wanted]
    best = process.extractOne(wanted, list(forms), scorer=fuzz.ratio, score_cutoff=RESOLVE_CUTOFF)
    return forms[best[0]] if best else None


_WORD = re.compile(r"[a-z0-9][a-z0-9_-]*")


def mentioned(text: str, known: Sequence[Known]) -> list[str]:
    """Components named in a sentence ("is the api down?", "paymnets broken for anyone?"), in order."""
    words = _WORD.findall(text.lower())
    forms = _choices(known)
    found: list[str] = []
    spans = [*words, *(" ".join(pair) for pair in itertools.pairwise(words))]
    for candidate in spans:
        name = forms.get(candidate)
        if name is None and len(candidate) >= MENTION_MIN_LENGTH:
            best = process.extractOne(candidate, list(forms), scorer=fuzz.ratio, score_cutoff=MENTION_CUTOFF)
            if best and len(best[0]) >= MENTION_MIN_LENGTH:
                name = forms[best[0]]
        if name is not None and name not in found:
            found.append(name)
    return found
