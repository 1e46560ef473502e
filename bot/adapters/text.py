"""Platform-neutral text helpers shared by adapters: splitting long texts at natural boundaries."""

from __future__ import annotations


def split_text(text: str, limit: int) -> list[str]:
    """Split into chunks of at most `limit` characters, preferring paragraph, line, then word breaks,
    and never leaving a code fence open across chunks."""
    if limit < 20:
        raise ValueError("limit too small to split sensibly")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        chunk, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n ")
        if chunk.count("```") % 2 == 1:
            # Close the fence here and reopen it in the next chunk, trimming to stay under the limit.
            chunk = chunk[: limit - 4] + "\n```"
            rest = "```\n" + rest
        chunks.append(chunk)
    if rest:
        chunks.append(rest)
    return chunks
