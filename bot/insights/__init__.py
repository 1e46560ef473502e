"""Insights: what customers asked and how it went, as figures, charts, knowledge gaps and a digest."""
