"""The pure part of the chain: no I/O, no clock, no randomness, no floats (a ``state_change`` may
report a finite float, which the rules carry but never compute with).

Everything a node must agree on with every other node lives here, so it can be read (and tested) as
one specification: ``constants`` (the table), ``tx`` and ``payloads`` (what may be signed),
``block`` (headers, Merkle roots), ``state`` (the ledger), ``rules`` and ``devices`` (what each
transaction type checks and does), ``transition`` (``apply_block``), ``dpos`` (schedule and
election), ``forkchoice`` (best chain and finality).
"""
