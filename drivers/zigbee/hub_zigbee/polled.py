"""Which entities are polled because their device refused to bind or to report.

Found only at pairing (``ZigbeeEntity.configure``), and pairing is not repeated when the hub
restarts, so the answer is kept in a file: without it a restarted hub would wait for reports that
never come and show a plug's power frozen at its last read.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub_zigbee.clusters.base import ZigbeeEntity

log = logging.getLogger("hub.plugins.zigbee")


class PolledStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: dict[str, list[str]] = self._load()

    def apply(self, ieee: str, entities: Iterable["ZigbeeEntity"]) -> None:
        wanted = set(self.keys.get(ieee, ()))
        for entity in entities:
            if entity.spec.key in wanted:
                entity.needs_polling = True

    def record(self, ieee: str, entities: Iterable["ZigbeeEntity"]) -> None:
        keys = sorted(e.spec.key for e in entities if e.needs_polling)
        if keys == self.keys.get(ieee, []):
            return
        if keys:
            self.keys[ieee] = keys
        else:
            self.keys.pop(ieee, None)
        self._save()

    def forget(self, ieee: str) -> None:
        if self.keys.pop(ieee, None) is not None:
            self._save()

    def _load(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("zigbee: %s is unreadable (%s); devices that cannot report are polled again "
                        "once they are paired again", self.path, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {ieee: [k for k in keys if isinstance(k, str)]
                for ieee, keys in data.items() if isinstance(ieee, str) and isinstance(keys, list)}

    def _save(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(self.keys, fh, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
