"""Persistence for the hub: one SQLite file, ``<data_dir>/hub.db``.

Stdlib ``sqlite3`` only: the data is small and relational, the hub must run on small edge
devices, and the CLI must be able to open the same file while the hub runs. See
:mod:`hub.store.store` for the durability and concurrency choices.
"""

from hub.store.models import StateRow
from hub.store.schema import SCHEMA_VERSION, SchemaError
from hub.store.store import Store
from hub.store.tokens import TokenError

__all__ = ["SCHEMA_VERSION", "SchemaError", "StateRow", "Store", "TokenError"]
