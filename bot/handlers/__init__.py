"""Capabilities, one module each. Each owns a Router; `bot.app` includes them explicitly."""
