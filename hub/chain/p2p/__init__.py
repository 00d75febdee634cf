"""Peer-to-peer layer of a chain node: frames, messages, peers and the network that ties them to a
:class:`~hub.chain.node.node.ChainNode`. Nothing here decides what is valid: that stays in the node
and the protocol; this layer only moves bytes and keeps misbehaving peers away."""
