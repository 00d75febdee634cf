"""What the hub's HTTP servers share: limits on clients (uvicorn), strict JSON, rate-limited logs.

The hub API (hub/api) and the chain node's RPC (hub/chain/node/rpc) are both FastAPI apps served by
uvicorn and both face clients that may be hostile; the defences live here once, below both, so
neither imports the other.
"""
