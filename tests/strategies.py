"""Hypothesis strategies shared by the property tests: text people write, neutral replies, and the
check that every character of a text survived splitting."""

from __future__ import annotations

from hypothesis import strategies as st

from bot.core.events import Button, ButtonStyle, Field, Mention, OutboundMessage

FENCE = "```"

# Pieces that matter to splitting, escaping and pinging, mixed with arbitrary text.
TOKENS = (
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "\r\n",
    "\u3000",
    FENCE,
    "```python\n",
    "\n```\n",
    "`",
    "@everyone",
    "@here",
    "@channel",
    "@EVERYONE",
    "help@everyone.example",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0STAFF>",
    "<@U0CASEY>",
    "<@U0CASEY|casey>",
    "<#C0GENERAL|general>",
    "<@123456789012345678>",
    "<@!123456789012345678>",
    "<@&987654321098765432>",
    "&amp;",
    "&lt;",
    "&",
    "<",
    ">",
    "|",
    "**bold**",
    "[docs](https://docs.example.com/a?b=c)",
    "[x](mailto:casey@example.com)",
    "- ",
    "\u200b",
    "\u202e",
    "🙂",
    "x" * 120,
    "word ",
)

_pieces = st.one_of(st.sampled_from(TOKENS), st.text(max_size=12))


def texts(*, max_pieces: int = 60) -> st.SearchStrategy[str]:
    """Text a person might write (or paste): words, breaks, code fences, markup, would-be pings."""
    return st.lists(_pieces, max_size=max_pieces).map("".join)


def long_texts() -> st.SearchStrategy[str]:
    """Texts around and beyond the platforms' message limits (2,000; 3,000; 4,096)."""
    return st.builds(
        lambda piece, times, tail: piece * times + tail, texts(max_pieces=8), st.integers(1, 600), texts()
    )


def mentions() -> st.SearchStrategy[Mention]:
    return st.builds(
        Mention,
        kind=st.sampled_from(["user", "group"]),
        id=st.one_of(
            st.from_regex(r"[UWS][A-Z0-9]{6,10}", fullmatch=True),
            st.from_regex(r"[1-9][0-9]{16,18}", fullmatch=True),
        ),
    )


def buttons() -> st.SearchStrategy[Button]:
    return st.builds(
        Button,
        action_id=st.from_regex(r"[a-z][a-z_.:]{0,30}", fullmatch=True),
        label=texts(max_pieces=4).filter(lambda t: bool(t)),
        value=st.from_regex(r"[a-z0-9:-]{0,40}", fullmatch=True),
        style=st.sampled_from(ButtonStyle),
    )


def fields() -> st.SearchStrategy[Field]:
    return st.builds(Field, name=texts(max_pieces=6), value=st.one_of(texts(max_pieces=10), long_texts()))


@st.composite
def outbound_messages(draw: st.DrawFn) -> OutboundMessage:
    """Any reply a handler could build, with people's text anywhere in it."""
    title = draw(st.none() | texts(max_pieces=10) | long_texts())
    text = draw(st.one_of(texts(), long_texts()))
    if not text.strip() and not (title or "").strip():
        text = "."
    return OutboundMessage(
        text=text,
        title=title,
        fields=tuple(draw(st.lists(fields(), max_size=12))),
        buttons=tuple(draw(st.lists(buttons(), max_size=30))),
        mentions=tuple(draw(st.lists(mentions(), max_size=5))),
        footer=draw(st.none() | texts(max_pieces=10)),
    )


def _visible(text: str) -> str:
    return "".join(text.split())


def same_characters(original: str, chunks: list[str]) -> bool:
    """Whether `chunks` hold every non-space character of `original`, in order, give or take the code
    fences a split adds (a closing one at the end of a chunk, an opening one at the start of the next)."""
    target = _visible(original)
    parts = [_visible(chunk) for chunk in chunks]

    # A search over (chunk, position in the text, chunk starts with an added fence); iterative, since
    # a long text makes hundreds of chunks.
    pending = [(0, 0, False)]
    seen = set(pending)
    while pending:
        index, position, reopened = pending.pop()
        if index == len(parts):
            if position == len(target) and not reopened:
                return True
            continue
        part = parts[index]
        if reopened:
            if not part.startswith(FENCE):
                continue
            part = part[len(FENCE) :]
        options = [(part, False)]
        if part.endswith(FENCE) and index + 1 < len(parts):
            options.append((part[: -len(FENCE)], True))
        for body, closes in options:
            state = (index + 1, position + len(body), closes)
            if target.startswith(body, position) and state not in seen:
                seen.add(state)
                pending.append(state)
    return False
