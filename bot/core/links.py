"""Links in people's words, shown where they go: a customer's `[Reset your password](https://x)`
relayed to the team must not become a link that shows only its label.

The bot's messages are in the neutral markdown of `OutboundMessage`, where `[label](url)` is a link
on every platform (Discord shows it as is; Slack's rendering makes it `<url|label>`). Every form of
it starts with `](`, so a text with none of those cannot show one.
"""

from __future__ import annotations

import re

# A well-formed one, `[label](url)` or Discord's `[label](<url>)`, read as "label (url)"; the label
# stops at a bracket or line break, so the scan stays linear on a text of 40,000 '['.
_LINK = re.compile(r"\[([^\[\]\n]{1,300})\]\(\s*<?((?:https?://|mailto:)[^\s()<>]+)>?\s*\)")


def unmask_links(text: str) -> str:
    """`text` with each link showing its address: `[label](url)` becomes `label (url)`, and every
    other `](` is broken (`] (`), so no label of the text's own is a link on any platform."""

    def shown(match: re.Match[str]) -> str:
        label, url = match.group(1).strip(), match.group(2)
        return url if label in ("", url) else f"{label} ({url})"

    return _LINK.sub(shown, text).replace("](", "] (")
