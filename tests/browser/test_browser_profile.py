"""A browser session leaves no profile folder in /tmp behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import _PROFILES, ensure_browser, new_driver

pytestmark = pytest.mark.component


def test_quit_removes_the_profile_folder() -> None:
    ensure_browser()
    before = set(_PROFILES)
    driver = new_driver(400, 300)
    try:
        (profile,) = set(_PROFILES) - before
        assert profile.name.startswith("facegate-chromium-") and profile.is_dir()
        assert Path(driver.capabilities["chrome"]["userDataDir"]) == profile
        driver.get("data:text/html,<p>x</p>")
    finally:
        driver.quit()
    assert not profile.exists()
    assert profile not in _PROFILES
