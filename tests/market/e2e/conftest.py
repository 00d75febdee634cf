"""Fixtures for the market's tests across processes: an owner's hub on each kind of chain, every
process killed by its id at the end, even when a test fails."""

from __future__ import annotations

import pytest

from tests.market.e2e.kit import Devnet, Embedded, Owner


@pytest.fixture
def embedded(tmp_path):
    """The owner's ``hub run`` with its embedded chain (200 ms slots), the plug bound on chain."""
    chain = Embedded(tmp_path / "owner")
    owner = Owner(tmp_path / "owner", chain).start()
    try:
        owner.bind_on_chain()
        yield owner
    finally:
        owner.hub.stop()


@pytest.fixture
def devnet(tmp_path):
    """Two producer node processes (300 ms slots) and the owner's ``hub run`` following node 0."""
    chain = Devnet(tmp_path / "devnet").start()
    owner = None
    try:
        owner = Owner(tmp_path / "owner", chain).start()
        owner.bind_on_chain()
        yield owner
    finally:
        if owner is not None:
            owner.hub.stop()
        chain.stop()
