"""The knowledge base: YAML entries, matchers with calibrated confidence, and the answer/clarify/
escalate decision. Pure: no platform SDK, no database."""
