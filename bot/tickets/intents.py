"""Pure readings of what a customer's words ask for: a person, a ticket, or signs of frustration."""

from __future__ import annotations

import re
from collections.abc import Iterable

from rapidfuzz import fuzz

_PERSON = (
    r"(a |an |some |real |actual |live )*(human( being)?|person|people|agent|representative|rep"
    r"|operator|someone|somebody|staff|support team|engineer)"
)
_ASK_FOR_PERSON = re.compile(
    rf"\b(talk|speak|chat|connect|transfer|escalate)\b.{{0,25}}\b(to|with|me to)\b\s*{_PERSON}\b"
    rf"|\b(get|want|need|give me|let me (talk to|speak to|reach))\s*(me\s*)?{_PERSON}\b"
    r"|^\s*(human|agent|representative|operator|a human|a person|real person)\b[\s!.?please]*$"
    r"|\b(is there|are there) (a |any )?(human|person|one|anyone|someone)\b"
    r".{0,20}\b(there|available|I can talk)"
    r"|\bescalate (this|it|my)\b",
    re.IGNORECASE,
)

_ASK_FOR_TICKET = re.compile(
    r"\b(open|create|file|raise|start|submit|log|make)\b\s+(me\s+)?(a\s+|an\s+|new\s+)*(support\s+)?"
    r"(ticket|case|support request|request for support)\b",
    re.IGNORECASE,
)

_STRONG_NEGATIVE = re.compile(
    # "trash", "garbage" and "joke" are also product words (restore from the trash, garbage
    # collection): they count only as a verdict ("this is garbage").
    r"\b(useless|ridiculous|terrible|awful|horrible|unacceptable|pathetic|worst"
    r"|(is|are|was|what) (such |a |an |absolute |complete |total )*(joke|garbage|trash|rubbish)"
    r"|furious|angry|livid|fed up|sick of|wtf|what the hell|scam|rip[- ]?off|disgrace|incompetent"
    r"|this is insane|waste of (my )?time|nobody (helps|answers|cares)|still (broken|waiting|not working))\b",
    re.IGNORECASE,
)

_QUESTION_START = re.compile(
    r"^\s*(how|what|why|when|where|who|which|can|could|would|will|is|are|do|does|did|should|may|any(one|body)?)\b",
    re.IGNORECASE,
)
_PROBLEM = re.compile(
    r"\b(error|errors|fail(s|ed|ing|ure)?|broken|bug|crash(es|ed|ing)?|down|wrong|missing|stuck|can'?t|cannot"
    r"|couldn'?t|unable|doesn'?t|does not|won'?t|not (working|loading|showing|receiving|getting)"
    r"|issue|problem"
    r"|help|charged|refund|locked out|lost|reset|timeout|timed out|outage|need|leak(ed)?|exposed"
    r"|compromised|hacked|blocked|declined|expired|disappeared|slow)\b",
    re.IGNORECASE,
)


_THANKS = re.compile(
    r"^\W*(thanks|thank you|thank u|thx|ty|tysm|cheers|many thanks|much appreciated|appreciate it"
    r"|great|perfect|awesome|brilliant|all good|all set|got it|that worked|that did it|it works|works now"
    r"|sorted|solved|fixed)\b",
    re.IGNORECASE,
)


_NOT_SOLVED = re.compile(
    r"(\b(but|still|again|however|error|fail\w*|broken|not|cannot|issue|problem|wrong)\b|n't\b)",
    re.IGNORECASE,
)


def is_thanks(text: str) -> bool:
    """A short thank-you or "all good", not a new problem ("thanks, but it still fails")."""
    stripped = text.strip()
    return bool(_THANKS.search(stripped)) and _nothing_more(stripped)


def _nothing_more(stripped: str) -> bool:
    """Short, and with no problem still there nor a question ("thanks, but it still fails")."""
    return len(stripped.split()) <= 10 and not _NOT_SOLVED.search(stripped) and "?" not in stripped


_YES = re.compile(
    r"^\W*(yes|yep|yeah|yup|ok|okay|sure|it did|that fixed it|that did it|fixed it|it'?s fixed"
    r"|it'?s solved|all good now)\b",
    re.IGNORECASE,
)


def says_solved(text: str) -> bool:
    """An answer in words to "Did this solve it?" that says yes ("yes!", "ok thanks", "that fixed
    it"), or a thank-you; not one that goes on about a problem ("yes but it still fails"). In a DM
    with no ticket, the same words after an answer are an acknowledgement, not a question."""
    stripped = text.strip()
    return bool(_THANKS.search(stripped) or _YES.search(stripped)) and _nothing_more(stripped)


def asks_for_person(text: str) -> bool:
    return bool(_ASK_FOR_PERSON.search(text))


def asks_for_ticket(text: str) -> bool:
    return bool(_ASK_FOR_TICKET.search(text))


def is_shouting(text: str) -> bool:
    # Error codes (ERR_SSL_PROTOCOL_ERROR, HTTP500) and short acronyms (API, CSV, SSO) are written in
    # capitals; only the words around them tell whether someone is shouting.
    words = [w for w in re.findall(r"[^\W\d_]+(?:[\d_][\w]*)?", text) if not re.search(r"[\d_]", w)]
    letters = [c for w in words if len(w) > 4 or not w.isupper() for c in w]
    if len(letters) < 12:
        return False
    upper = sum(1 for c in letters if c.isupper())
    return upper / len(letters) >= 0.7


def frustration(text: str) -> str | None:
    """Why the text reads as frustrated, or None: strong words, shouting, or "!!!"."""
    if _STRONG_NEGATIVE.search(text):
        return "strong negative words"
    if is_shouting(text):
        return "shouting"
    if "!!!" in text or re.search(r"[!?]{4,}", text):
        return "repeated exclamation marks"
    return None


def is_repeat(text: str, earlier: Iterable[str], *, similarity: float = 85.0) -> bool:
    """The same question asked again (wording may differ slightly). A longer, more precise question
    that contains an earlier short one ("my invoice" -> "my invoice address is wrong, how do I change
    it?") is a rephrasing, not a repeat: the two must also be of similar length."""
    normalized = text.strip().lower()
    if len(normalized) < 8:
        return False
    words = len(normalized.split())
    for before in earlier:
        other = before.strip().lower()
        shorter, longer = sorted((words, len(other.split())))
        if shorter / max(longer, 1) < 0.6:
            continue
        if fuzz.token_set_ratio(normalized, other) >= similarity:
            return True
    return False


def looks_like_support_request(text: str) -> bool:
    """In a busy community channel, answer only what reads like a question or a problem report,
    not chatter ("thanks!", "lol")."""
    stripped = text.strip()
    return stripped.endswith("?") or bool(_QUESTION_START.search(stripped)) or bool(_PROBLEM.search(stripped))
