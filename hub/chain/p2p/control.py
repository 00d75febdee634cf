"""Who holds a peer slot, and the operator's hand on it: the slot policy of a node's network
(see :mod:`hub.chain.p2p.peerslots`) and the runtime calls the RPC makes (add a peer, lift a
ban, list the peers).

A mixin of :class:`~hub.chain.p2p.network.Network` (its state is set up there).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from hub.chain.p2p.addresses import normal_address
from hub.chain.p2p.peer import Peer
from hub.chain.p2p.peerslots import SlotLimits, least_useful
from hub.chain.protocol import dpos

if TYPE_CHECKING:
    from hub.chain.node.node import ChainNode

log = logging.getLogger("hub.chain.p2p")


class PeerLimitError(ValueError):
    """A runtime peer request the node's limits do not allow (the message says which)."""


class PeerControl:
    node: ChainNode
    peers: dict[bytes, Peer]
    bans: dict[str, float]
    slots: SlotLimits
    peer_addresses: list[str]
    _address_keys: dict[str, bytes]

    if TYPE_CHECKING:  # provided by Network
        def _banned(self, what: str) -> bool: ...
        def _spawn(self, coro: Any, name: str) -> None: ...
        async def _dial_loop(self, address: str) -> None: ...

    # --- runtime control (the RPC calls these on the node's event loop) ----------------------------
    def add_peer(self, host: str, port: int) -> bool:
        """Dial ``host:port`` from now on and keep it connected, like a ``--peers`` entry; False
        if it is dialled already. :class:`PeerLimitError` when max_outbound addresses are
        dialled; ValueError for an address that is not HOST:PORT."""
        address = normal_address(f"{host}:{port}")
        if address in self.peer_addresses:
            return False
        if len(self.peer_addresses) >= self.slots.max_outbound:
            raise PeerLimitError(f"{len(self.peer_addresses)} peers are dialled already, the limit "
                                 f"(max_outbound) is {self.slots.max_outbound}")
        self.peer_addresses.append(address)
        self._spawn(self._dial_loop(address), f"p2p-dial-{address}")
        log.info("p2p: peer %s added", address)
        return True

    def unban(self, what: str) -> bool:
        """Lift the ban of a node key (64 hex digits) or of a dialled address (HOST:PORT), and of the
        other name the same peer is banned under; False when neither was banned. ValueError when
        ``what`` is neither a node key nor an address."""
        what = what.strip()
        if len(what) == 64 and all(ch in "0123456789abcdefABCDEF" for ch in what):
            node_key = bytes.fromhex(what)
            names = {node_key.hex(), *(a for a, k in self._address_keys.items() if k == node_key)}
        else:
            try:
                address = normal_address(what)
            except ValueError:
                raise ValueError(f"{what!r} is neither a node key (64 hex digits) nor HOST:PORT") from None
            names = {address}
            if address in self._address_keys:
                names.add(self._address_keys[address].hex())
        lifted = sorted(n for n in names if self._banned(n))
        for name in lifted:
            del self.bans[name]
        if lifted:
            log.info("p2p: ban lifted: %s", ", ".join(lifted))
        return bool(lifted)

    def peer_list(self) -> list[dict[str, Any]]:
        """Every connected peer, every ban in force and every dialled address not connected, as
        JSON-able rows: ``state`` is "connected", "banned" or "dialling"."""
        now = time.monotonic()
        producers = self._producer_keys()
        rows: list[dict[str, Any]] = []
        connected = set()
        for peer in list(self.peers.values()):
            connected.add(peer.node_key)
            if peer.outbound:
                connected.add(peer.address)
            rows.append({"state": "connected", "node_key": peer.node_key.hex(), "address": peer.address,
                         "direction": "outbound" if peer.outbound else "inbound", "height": peer.height,
                         "score": peer.score, "producer": peer.producer_key.hex() if peer.producer_key else None,
                         "kept_because": self._valued(peer, producers), "good_blocks": peer.good_blocks,
                         "connected_seconds": round(now - peer.connected_at, 1), "syncing": peer.syncing,
                         "ban_seconds_left": None})
        for name, until in sorted(self.bans.items()):
            if until > now:
                is_key = ":" not in name
                rows.append({"state": "banned", "node_key": name if is_key else None,
                             "address": None if is_key else name, "direction": None if is_key else "outbound",
                             "height": None, "score": None, "producer": None, "kept_because": None,
                             "good_blocks": None, "connected_seconds": None, "syncing": False,
                             "ban_seconds_left": round(until - now, 1)})
        for address in self.peer_addresses:
            known = self._address_keys.get(address)
            if (known is None or known not in connected) and not self._banned(address):
                rows.append({"state": "dialling", "node_key": known.hex() if known else None, "address": address,
                             "direction": "outbound", "height": None, "score": None, "producer": None,
                             "kept_because": "configured", "good_blocks": None, "connected_seconds": None,
                             "syncing": False, "ban_seconds_left": None})
        return rows

    # --- peer slots ------------------------------------------------------------------------------
    def _producer_keys(self) -> set[bytes]:
        """The genesis producers and those of the current schedule (read without the lock: it
        only decides who keeps a slot)."""
        keys = {bytes.fromhex(k) for k in self.node.genesis.producers}
        try:
            keys.update(dpos.schedule_after(self.node.state))
        except Exception:  # noqa: BLE001 - a block half applied: the genesis set still counts
            pass
        return keys

    def _valued(self, peer: Peer, producers: set[bytes] | None = None) -> str | None:
        """Why this peer is worth its slot whatever strangers come, or None for a stranger."""
        if peer.outbound or peer.node_key in self._address_keys.values():
            return "configured"
        if peer.producer_key is not None and peer.producer_key in (producers or self._producer_keys()):
            return "producer"
        if peer.good_blocks:
            return "served blocks"
        return None

    def _make_room(self, peer: Peer) -> str | None:
        """Make room for a new authenticated peer; why it is refused, or None."""
        if peer.outbound:
            return None  # only addresses the operator named are dialled, at most max_outbound of them
        producers = self._producer_keys()
        valued = self._valued(peer, producers)
        inbound = [p for p in self.peers.values() if not p.outbound and not p.closed.is_set()]
        if not valued:
            same = sum(1 for p in inbound if p.ip == peer.ip and not self._valued(p, producers))
            if same >= self.slots.max_per_address:
                return f"{same} peers from {peer.ip} already (max_per_address)"
        if len(inbound) < self.slots.max_inbound:
            return None
        victim = least_useful(inbound, lambda p: self._valued(p, producers))
        if victim is None:
            # Every slot holds a peer worth keeping: a stranger waits, a valued peer still comes in.
            return None if valued else f"all {len(inbound)} inbound slots hold peers worth keeping"
        log.info("p2p: evicting inbound peer %s (score %d) for %s", victim.name, victim.score, peer.name)
        victim.close("evicted for a new peer")
        if self.peers.get(victim.node_key) is victim:
            del self.peers[victim.node_key]
        return None
