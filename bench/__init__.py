"""Benchmarks, one module each: run from the repository root as `python -m bench.<name>` (`--help`).

They reach `tests.emulators` and `tests.fake_adapter` as packages, so no path is edited."""
