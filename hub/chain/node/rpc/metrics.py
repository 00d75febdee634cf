"""``GET /metrics`` of a node: head, LIB, peers, mempool, blocks produced and missed (from the
chain's own record, the same figures ``/schedule`` shows), transaction admissions, streams.

Admission rate: ``rate(ruff_node_tx_admissions_total[1m])``, by ``outcome`` (``admitted`` or the
refusal reason), counting every transaction the node judged (RPC, gossip, the CLI's inbox); the
``ruff_rpc_tx_submissions_total`` family counts only what clients sent to this RPC.
"""

from __future__ import annotations

from typing import Any

from hub.chain.protocol import dpos
from hub.crypto.address import address_of, encode_address
from hub.net.prom import CONTENT_TYPE, counter, gauge
from hub.net.prom import render as render_families

__all__ = ["CONTENT_TYPE", "chain_figures", "render"]


def chain_figures(node, now: int) -> dict[str, Any]:
    """Everything read under ``node.lock`` (the caller holds it), in one pass."""
    state, h = node.state, node.head
    produced, missed = {}, {}
    for pk in dpos.schedule_after(state):
        address = address_of(pk)
        shown = encode_address(address)
        produced[shown] = state.get("prod", address, 0)
        missed[shown] = state.get("miss", address, 0)
    own = encode_address(address_of(node.key.public_key)) if getattr(node, "key", None) is not None else None
    own_address = address_of(node.key.public_key) if own else None
    return {"head": h.height, "slot": h.slot, "timestamp": h.timestamp, "lib": node.lib,
            "mempool": len(node.mempool), "mempool_capacity": node.mempool.max_txs,
            "produced": produced, "missed": missed, "own": own,
            "own_produced": state.get("prod", own_address, 0) if own else 0,
            "own_missed": state.get("miss", own_address, 0) if own else 0,
            "admissions": dict(getattr(node, "admissions", None) or {})}


def render(chain: dict, peers: dict, sync: dict, rpc: dict) -> bytes:
    return render_families([
        gauge("ruff_chain_head_height", "Height of the node's head block", chain["head"]),
        gauge("ruff_chain_head_slot", "Slot of the node's head block", chain["slot"]),
        gauge("ruff_chain_head_timestamp_seconds", "Timestamp of the head block", chain["timestamp"] / 1000),
        gauge("ruff_chain_lib_height", "Height of the last irreversible block", chain["lib"]),
        gauge("ruff_node_peers", "Connected peers", label="direction",
              values={"inbound": peers["inbound"], "outbound": peers["outbound"]}),
        gauge("ruff_node_bans", "Node keys and addresses banned now", len(peers["bans"])),
        gauge("ruff_node_syncing", "1 while the node fetches blocks from a peer ahead of it", int(sync["syncing"])),
        gauge("ruff_node_best_peer_height", "Highest head a connected peer announced", sync["best_peer_height"]),
        gauge("ruff_mempool_transactions", "Transactions waiting in the mempool", chain["mempool"]),
        gauge("ruff_mempool_capacity", "Transactions the mempool holds at most", chain["mempool_capacity"]),
        gauge("ruff_node_blocks_produced", "Blocks this node's producer key produced (chain record; 0 when not a producer)",
              chain["own_produced"]),
        gauge("ruff_node_blocks_missed", "Slots this node's producer key missed (chain record)", chain["own_missed"]),
        gauge("ruff_producer_blocks_produced", "Blocks produced by each scheduled producer (chain record)",
              label="producer", values=chain["produced"]),
        gauge("ruff_producer_blocks_missed", "Slots missed by each scheduled producer (chain record)",
              label="producer", values=chain["missed"]),
        counter("ruff_node_tx_admissions", "Transactions judged for the mempool, by outcome (admitted or the reason)",
                label="outcome", values=chain["admissions"]),
        counter("ruff_rpc_tx_submissions", "Transactions clients submitted to this RPC, by outcome",
                label="outcome", values=rpc["submissions"]),
        gauge("ruff_rpc_streams", "Open /stream connections", rpc["streams"]),
        gauge("ruff_rpc_streams_max", "Open /stream connections allowed", rpc["max_streams"]),
    ])
