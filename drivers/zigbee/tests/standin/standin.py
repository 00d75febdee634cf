"""Loaded by ``hub run --plugins-dir`` in these tests: gives ``hub_zigbee.clusters`` the stand-in
``entities_for`` when the cluster mapping is not there yet (it never replaces the real one)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hub_zigbee.clusters as clusters  # noqa: E402

if not hasattr(clusters, "entities_for"):
    from standin_entities import entities_for  # noqa: E402

    clusters.entities_for = entities_for
