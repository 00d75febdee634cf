"""Who gets a peer slot: the limits an operator sets, and which inbound peer makes room for a new one.

Why: 47 strangers with fresh node keys once took every slot of every node, so a restarted honest
node found no room anywhere and produced alone on a fork. Strangers are free to make, so they
compete only among themselves: the peers a node has reason to keep (configured by its operator,
proven producers, peers whose blocks it took) are never evicted and are admitted even over the
inbound limit; outbound slots are only ever taken by addresses the operator named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from hub.chain.p2p import limits
from hub.chain.p2p.peer import Peer


@dataclass(frozen=True)
class SlotLimits:
    max_inbound: int = limits.MAX_INBOUND
    max_outbound: int = limits.MAX_OUTBOUND  # addresses dialled (--peers and add_peer)
    max_per_address: int = limits.MAX_PER_ADDRESS  # inbound strangers from one IP address

    def __post_init__(self) -> None:
        for name in ("max_inbound", "max_outbound", "max_per_address"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")


def least_useful(inbound: Iterable[Peer], valued: Callable[[Peer], object]) -> Peer | None:
    """The inbound peer to evict for a newcomer, or None when every one is worth keeping.

    Among the strangers, those from the address with the most of them (one attacker's
    connections, rarely an honest node's), and of those the lowest score, then the youngest
    (as Bitcoin Core's eviction: an established connection is likelier to be an honest one)."""
    strangers = [p for p in inbound if not valued(p)]
    if not strangers:
        return None
    per_ip = Counter(p.ip for p in strangers)
    most = max(per_ip.values())
    crowded = [p for p in strangers if per_ip[p.ip] == most]
    return min(crowded, key=lambda p: (p.score, -p.connected_at))
