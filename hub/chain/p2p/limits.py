"""The p2p layer's numbers, in one table (networking only: none of these is consensus).

They bound what one peer can make this node hold or do: memory per connection, work per message,
how long a bad peer stays away.
"""

from __future__ import annotations

MIB = 1 << 20
#: A frame is at least this large a ceiling; a chain whose blocks are bigger raises it (see frame_limit).
MAX_FRAME_BYTES = 8 * MIB
LENGTH_PREFIX = 4  # bytes, big-endian
SEND_QUEUE = 512  # frames waiting for a slow peer before it is dropped rather than slowing us
SEND_QUEUE_BYTES = 64 * MIB  # and bytes: a peer asking for batches it never reads cannot fill our memory
HANDSHAKE_TIMEOUT = 5.0  # seconds for the whole handshake (hellos and auths both ways)
#: Before a peer has proved its key it may send only a hello and an auth (~250 and ~200 bytes): a
#: larger frame is refused unread, so an unauthenticated connection cannot make us hold 8 MiB.
HANDSHAKE_FRAME_BYTES = 1024
#: Inbound connections still in their handshake: more are closed at once (one address: fewer).
PENDING_HANDSHAKES = 64
PENDING_PER_ADDRESS = 8
#: Read-ahead of an inbound connection's stream: what a peer can make us buffer beyond the frame
#: being read is about twice this (asyncio pauses the socket there). Dialled peers keep 2 MiB.
INBOUND_READ_AHEAD = 256 * 1024
WRITE_TIMEOUT = 10.0  # seconds one frame may take to leave before the peer counts as stalled
SYNC_BATCH = 200  # blocks asked for per get_blocks
SYNC_TIMEOUT = 10.0  # seconds to wait for a batch before asking another peer
MAX_HEADERS = 2000  # headers served per get_headers
TX_BATCH = 512  # transactions per announce_txs frame (a full batch of transfers is ~110 KB)
TX_BATCH_BYTES = 1 * MIB  # and bytes: 512 transactions of the largest size would not fit a frame
TX_FLUSH_SECONDS = 0.05  # how long a transaction may wait for others to share its frame (see docs/benchmarks.md)
TX_QUEUE = 20_000  # gossiped transactions waiting for admission; more are dropped (10 s at 2,000/s)
TX_QUEUE_BYTES = 32 * MIB  # and bytes
TX_ADMIT_BATCH = 2048  # transactions admitted per thread hop at most
# Seen-sets hold up to their limit and remember each hash until at least half as many came after it
# (two generations, see seen.py).
SEEN_LIMIT = 100_000  # per seen-set (blocks, transactions), for de-duplication: the last 50,000 at least
PEER_KNOWN_TXS = 16_384  # per peer: transactions it is known to have (the last 8,192: ~4 s at 2,000/s)
SEEN_BLOCK_BYTES = 8_192  # hashes of announced blocks' bytes (the last 4,096: over an hour of 1 s slots)
#: Protocol bound of ``announce_txs``' ``also`` (node keys a frame went to); a sender names at most these.
MAX_PEERS = 50
# Peer slots (``hub chain node --max-inbound/--max-outbound/--max-per-address``). Outbound peers are
# only the addresses the operator named, so a stranger cannot take them; inbound slots are what
# strangers compete for, and a full set evicts its least useful peer for a newcomer (network.py).
MAX_INBOUND = 48
MAX_OUTBOUND = 64  # a 50-node loopback devnet dials 49
MAX_PER_ADDRESS = 8  # inbound peers from one IP address that the node knows nothing good about
PING_SECONDS = 15.0  # a ping to every peer this often
PING_TIMEOUT = 20.0  # and a peer that has not answered it this long after is dropped
#: How far a block's slot may start after our clock says now. A producer never signs a slot before
#: it starts, so more means a skewed clock or a producer trying to take the slots in between.
MAX_CLOCK_AHEAD_MS = 1000
REDIAL_SECONDS = 1.0
SCORE_START = 100
SCORE_DROP = 0  # at or below this the peer is dropped and banned
BAN_SECONDS = 120.0
# What each kind of misbehaviour costs (SCORE_START / cost = how many are tolerated).
COST_GARBAGE = 25  # undecodable frame payload or malformed message
COST_INVALID_BLOCK = 20
COST_INVALID_TX = 10
COST_UNKNOWN_TYPE = 5
COST_FUTURE_BLOCK = 5  # may be our clock that is wrong, so cheap
COST_SYNC_TIMEOUT = 25  # a get_blocks not answered within SYNC_TIMEOUT: four and the peer is banned
COST_FATAL = SCORE_START  # oversized or truncated frame: the stream cannot be trusted any more


def frame_limit(max_block_bytes: int) -> int:
    """Room for the largest block this chain allows plus its header and framing."""
    return max(MAX_FRAME_BYTES, max_block_bytes + MIB)
