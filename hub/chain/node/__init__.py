"""The shell around the pure protocol: block store, mempool, node (fork choice, reorgs), producer.

The p2p network and the RPC (issue #6) plug in through :class:`hub.chain.node.node.ChainNode`'s
``submit`` and ``receive_block``, which already are the whole interface a network needs.
"""
