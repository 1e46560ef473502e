"""The real Chromium that page tests drive through playwright (which cannot download its own here)."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium_binary() -> str:
    """The Chromium binary's path. Without one the test is skipped, or fails when REQUIRE_CHROMIUM
    is set (CI sets it, so a missing browser can never pass as a skip)."""
    for candidate in (os.environ.get("CHROMIUM_PATH"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    reason = "no Chromium binary found (apt-get install chromium, or set CHROMIUM_PATH)"
    if os.environ.get("REQUIRE_CHROMIUM"):
        pytest.fail(f"REQUIRE_CHROMIUM is set but {reason}")
    pytest.skip(reason)
