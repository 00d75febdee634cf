"""The light client: follows signed headers, their producer schedule and finality, keeps no bodies.

See :mod:`hub.chain.light.client` and ``docs/light-client.md`` for what it can and cannot verify.
"""

from hub.chain.light.client import LightClient, LightClientError, LightHeader, Reason
from hub.chain.light.follower import follow, sync_once
from hub.chain.light.serve import changes_proof

__all__ = ["LightClient", "LightClientError", "LightHeader", "Reason", "changes_proof", "follow", "sync_once"]
