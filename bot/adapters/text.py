"""Platform-neutral text helpers shared by adapters: splitting long texts at natural boundaries."""

from __future__ import annotations

FENCE = "```"


def _cut(text: str, limit: int) -> int:
    """Where to end a chunk of at most `limit` characters: a paragraph or line break, else a space,
    else exactly at the limit."""
    window = text[:limit]
    cut = max(window.rfind("\n\n"), window.rfind("\n"))
    if cut < limit // 2:
        cut = window.rfind(" ")
    if cut < limit // 2:
        cut = limit
        # Not through a run of backticks: half a fence is no fence, and the code would lose its block.
        while cut > limit // 2 and text[cut - 1 : cut + 1] == "``":
            cut -= 1
        if text[cut - 1 : cut + 1] == "``":
            cut = limit
    return cut


def split_text(text: str, limit: int) -> list[str]:
    """Split into chunks of at most `limit` characters, preferring paragraph, line, then word breaks,
    never leaving a code fence open across chunks and never dropping a character of the text (only
    the whitespace at a break outside code)."""
    if limit < 20:
        raise ValueError("limit too small to split sensibly")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _cut(rest, limit)
        if rest[:cut].count(FENCE) % 2 == 1:
            # The chunk ends inside code: leave room to close the fence (reopened in the next chunk).
            cut = _cut(rest, limit - len(FENCE) - 1)
        chunk, rest = rest[:cut], rest[cut:]
        if chunk.count(FENCE) % 2 == 1:
            # Inside code every space counts (indentation): only the break's own newline goes.
            chunks.append(f"{chunk.removesuffix(chr(10))}\n{FENCE}")
            rest = f"{FENCE}\n{rest.removeprefix(chr(10))}"
        else:
            if chunk.strip():  # a run of whitespace (tabs, say) is not a message of its own
                chunks.append(chunk.rstrip())
            rest = rest.lstrip("\n ")
    if rest.strip() or (rest and not chunks):
        chunks.append(rest)
    return chunks
