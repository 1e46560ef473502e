"""The support conversation's domain logic: intents, tickets, escalation and their messages."""
