"""Guards for every test in the checkout (tests/, plugins/, drivers/, hardware-in-loop/): a test writes
under its ``tmp_path``, never into the checkout. A ``hub`` command run without ``--data`` uses
``./hub-data``; a test that forgets it, or runs with the checkout as its working directory, leaves a
hub (and a chain) there that the next developer's ``hub run`` would pick up.

Each test fails at teardown if the checkout gained a top-level entry or the working directory a
``hub-data``; the session fails if ``git status --ignored`` shows anything new at the end (a file a
background process wrote late, or deeper in the tree). Tool caches are expected: pytest's and
hypothesis's (both in .gitignore) and ``__pycache__``.

Under pytest-xdist (``make test``) the session check runs once, in the controller, around every
worker's tests. The per-test check sees the whole checkout: a test that writes into it can also fail
a test running at the same time on another worker; the culprit is the one whose own files are named.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
TOOL_CACHES = {".pytest_cache", ".hypothesis", "__pycache__"}


def _expected(path: str) -> bool:
    parts = Path(path.rstrip("/")).parts
    return bool(parts) and (parts[0] in TOOL_CACHES or "__pycache__" in parts or parts[-1].endswith(".egg-info"))


def _git_status() -> set[str] | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    # New files only ("??" untracked, "!!" ignored): a developer editing tracked files while the tests
    # run is no fault of the tests. An ignored directory (.venv/) stays one line.
    return {line[3:] for line in out.stdout.splitlines()
            if line[:2] in ("??", "!!") and not _expected(line[3:]) and not line[3:].startswith(".venv/")}


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _is_xdist_worker(session.config):  # the controller starts before and ends after the workers
        session.config._checkout_status = _git_status()  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _is_xdist_worker(session.config):
        return
    before = getattr(session.config, "_checkout_status", None)
    after = _git_status()
    if before is None or after is None:
        return
    new = sorted(after - before)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"the tests wrote into the checkout {REPO}: {', '.join(new[:20])}; write under tmp_path"
        if reporter is not None:
            reporter.write("\n")  # after the progress dots
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _checkout_stays_clean(request: pytest.FixtureRequest):
    top = set(os.listdir(REPO))
    cwd = Path.cwd()
    had_cwd_data = (cwd / "hub-data").exists()
    yield
    new = sorted(name for name in set(os.listdir(REPO)) - top if name not in TOOL_CACHES)
    if not had_cwd_data and (cwd / "hub-data").exists() and cwd != REPO:
        new.append(str(cwd / "hub-data"))
    if new:
        pytest.fail(f"{request.node.nodeid} wrote {', '.join(new)} into the checkout {REPO} (or the working "
                    "directory); give every hub command --data/--chain-dir under tmp_path", pytrace=False)
