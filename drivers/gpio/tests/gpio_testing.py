"""Helpers of the gpio driver's tests (a module of its own name: several test folders have a
conftest.py, and only one of them can be imported as ``conftest``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
HIL = REPO / "hardware-in-loop"
for path in (REPO, HIL):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def load_fake_gpiod():
    """The fake ``gpiod`` package under its own module name, beside the real one in this process."""
    if "fake_gpiod_pkg" in sys.modules:
        return sys.modules["fake_gpiod_pkg"]
    init = HIL / "simulators/fake_gpiod/gpiod/__init__.py"
    spec = importlib.util.spec_from_file_location("fake_gpiod_pkg", init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_gpiod_pkg"] = module
    spec.loader.exec_module(module)
    return module
