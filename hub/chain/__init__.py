"""The Ruff chain: ``protocol`` is the pure state machine, ``node`` the shell of storage and timing
around it, ``embedded`` the built-in plugin that runs a one-producer chain inside ``hub run``."""
