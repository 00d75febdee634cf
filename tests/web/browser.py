"""Driving the dashboard in a real Chromium: Debian's ``chromium`` package through Playwright
(Playwright's own browser download cannot run here, so it is pointed at the system executable).

Screenshots are test artefacts: each test saves its pages under ``$RUFFHUB_ARTEFACTS/screenshots``
(default: pytest's temporary directory, never the checkout), named after the test and the page.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RUFFHUB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def chromium_missing() -> str | None:
    return None if Path(CHROMIUM).exists() else f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)"


def launch(playwright):
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])


def artefacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("RUFFHUB_ARTEFACTS")
    path = Path(root) / "screenshots" if root else tmp_path_factory.getbasetemp() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
