"""What a person typed, quoted back inside a reply's code span (`` `/ticket abc` isn't a ticket
number``): whole when short, else its beginning and "…", so a cut never reads as a misreading."""

from __future__ import annotations


def echo(text: str, limit: int) -> str:
    """`text` for the inside of a code span, at most `limit` characters: on one line (a line break
    would end the span on Slack), with its backticks as `'` (one would end the span and let the
    rest be formatting of its own), without invisible controls (a bidi override would reverse the
    rest of our sentence), and "…" in place of what is cut. Mentions are left to the adapters,
    which make every one in a reply inert."""
    # Controls go before spaces are collapsed: one left between a word and a space would leave the
    # space at the span's end once it is gone.
    visible = "".join(c if c.isprintable() else " " if c.isspace() else "" for c in text.replace("`", "'"))
    shown = " ".join(visible.split())
    return shown if len(shown) <= limit else shown[: limit - 1].rstrip() + "…"
