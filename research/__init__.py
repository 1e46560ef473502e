"""Experiments that are not product paths: see research/README.md for what each found."""
