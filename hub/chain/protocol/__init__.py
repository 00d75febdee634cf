"""The pure part of the chain: no I/O, no clock, no randomness, no floats.

Everything a node must agree on with every other node lives here, so it can be read (and tested) as
one specification: ``constants`` (the table), ``tx`` and ``payloads`` (what may be signed),
``block`` (headers, Merkle roots), ``state`` (the ledger), ``transition`` (``apply_block``),
``dpos`` (schedule and election), ``forkchoice`` (best chain and finality).
"""
