"""The zigpy ControllerApplication for ``radio_type``, its database and its network backups.

The network (PAN id, extended PAN id, key, channel) lives in the stick's NVRAM; a user who swaps
the stick, or whose stick was wiped, keeps it only through a backup. zigpy keeps backups in its
database and restores the newest on a stick with no network when started with ``auto_form``; the
latest is also written as JSON (the Open Coordinator Backup format that zigpy-znp's and bellows'
own tools read) under ``backups/``, so a lost database does not lose the network either.

Both files hold the network key: they are 0600 in the plugin's 0700 directory, and the key is added
to the texts the hub scrubs from its log.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.core.redact import also_hide_in_logs

from hub_zigbee.config import ZigbeeConfig

if TYPE_CHECKING:
    import zigpy.application
    import zigpy.backups

log = logging.getLogger("hub.plugins.zigbee")

#: radio_type -> the module holding that radio library's ControllerApplication.
RADIOS = {"znp": "zigpy_znp.zigbee.application", "ezsp": "bellows.zigbee.application"}
#: A radio library's close can wait forever (seen with bellows under load, after an unplug and on a
#: plain hub stop: zigpy's SerialProtocol.wait_until_closed has no timeout). A healthy close takes
#: milliseconds, so it is bounded short: the driver goes on to reopen the stick, and a stopping hub is
#: not held up. Starting is bounded generously, as forming a network scans every channel first.
STOP_TIMEOUT = 3.0
START_TIMEOUT = 120.0
DB_FILE = "zigbee.db"
BACKUP_DIR = "backups"
BACKUP_FILE = "zigbee-network.json"

_quirks_loaded = False


def zigpy_config(config: ZigbeeConfig, data_dir: Path) -> dict[str, Any]:
    """zigpy's configuration: never the internet (no OTA providers, no broadcasts), backups on."""
    out: dict[str, Any] = {
        "device": {"path": config.port, "baudrate": config.baudrate, "flow_control": config.flow_control},
        "database_path": str(data_dir / DB_FILE),
        "ota": {"enabled": False, "providers": [], "broadcast_enabled": False},
        "network": {"channel": config.channel},
        "backup_enabled": True,
        "backup_period": config.backup_period,
    }
    if config.radio_type == "znp" and _is_pty(config.port):
        # zigpy-znp wakes a TI stick by toggling DTR/RTS; a pseudo-terminal (a serial-over-network
        # bridge such as socat or ser2net, or an emulator) has no such lines and the ioctl fails,
        # so the stick is pinged directly, as zigpy-znp does over TCP.
        out["znp_config"] = {"skip_bootloader": False}
    return out


def _is_pty(port: str) -> bool:
    return os.path.realpath(port).startswith("/dev/pts/")


def _private_file(path: Path) -> None:
    """Create ``path`` 0600 before a library opens it, and tighten it if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _load_quirks() -> None:
    """zha-quirks registers its quirks with zigpy when imported; once per process. Its definitions
    trip zigpy's deprecation warnings by the dozen (nothing a user can act on), so those are muted
    while it loads."""
    global _quirks_loaded
    if not _quirks_loaded:
        import zhaquirks

        noisy = [logging.getLogger(name) for name in ("zigpy.zcl", "zigpy.types.basic", "zigpy.quirks")]
        levels = [logger.level for logger in noisy]
        for logger in noisy:
            logger.setLevel(logging.CRITICAL)
        try:
            zhaquirks.setup()
        finally:
            for logger, level in zip(noisy, levels):
                logger.setLevel(level)
        _quirks_loaded = True


class Radio:
    """Starts and stops one ControllerApplication; a new one per connection, as ZHA does, so a
    reconnect begins from zigpy's database exactly like a restart."""

    def __init__(self, config: ZigbeeConfig, data_dir: Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.app: "zigpy.application.ControllerApplication | None" = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def backup_path(self) -> Path:
        return self.data_dir / BACKUP_DIR / BACKUP_FILE

    async def start(self, listener: Any) -> "zigpy.application.ControllerApplication":
        """Open the stick and start the network (restoring a backup onto a blank stick, forming a
        new network only when there is no backup). ``listener`` gets zigpy's device events."""
        # Hundreds of modules: imported off the event loop (seconds on a Pi), once.
        await asyncio.to_thread(_load_quirks)
        cls = importlib.import_module(RADIOS[self.config.radio_type]).ControllerApplication
        _private_file(self.db_path)
        app = cls(zigpy_config(self.config, self.data_dir))
        try:
            await app._load_db()  # noqa: SLF001 - zigpy's own ``new()`` does this between the same steps
            self._offer_disk_backup(app)
            known = app.backups.most_recent_backup()
            if known is not None:  # hidden before the start logs anything about the network
                _hide_key(known.network_info.network_key.key)
            app.add_listener(listener)
            app.backups.add_listener(_BackupWriter(self))
            async with asyncio.timeout(START_TIMEOUT):
                await app.startup(auto_form=True)
        except BaseException:
            await _shutdown(app)
            raise
        for suffix in ("-wal", "-shm"):
            wal = self.db_path.with_name(self.db_path.name + suffix)
            if wal.exists():
                os.chmod(wal, 0o600)
        _hide_key(app.state.network_info.network_key.key)
        self.app = app
        return app

    async def stop(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            await _shutdown(app)

    def _offer_disk_backup(self, app: "zigpy.application.ControllerApplication") -> None:
        """zigpy restores the newest backup in its database; when the database has none (it was
        lost, or this is a new hub given the old one's data), the JSON on disk is the newest."""
        if app.backups.most_recent_backup() is not None or not self.backup_path.exists():
            return
        from zigpy.backups import NetworkBackup

        try:
            backup = NetworkBackup.from_open_coordinator_json(json.loads(self.backup_path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("zigbee: %s is not a network backup zigpy can read (%s); not restoring it",
                      self.backup_path, type(exc).__name__)
            return
        log.info("zigbee: the database has no network backup; offering %s", self.backup_path)
        app.backups.add_backup(backup)

    async def backup_now(self) -> Path:
        """A backup of the running network, written as JSON; returns the file."""
        if self.app is None:
            raise RuntimeError("the Zigbee radio is not connected")
        backup = await self.app.backups.create_backup(load_devices=True)
        return self.write_backup(backup)

    def write_backup(self, backup: "zigpy.backups.NetworkBackup") -> Path:
        folder = self.backup_path.parent
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
        tmp = folder / (BACKUP_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(backup.as_open_coordinator_json(), fh, indent=2)
        os.replace(tmp, self.backup_path)
        return self.backup_path


def _hide_key(key: Any) -> None:
    """The network key, in the forms zigpy and the radio libraries print it, out of the log."""
    if key is not None:
        raw = key.serialize().hex()
        also_hide_in_logs({str(key), raw, raw.upper(), str(key).upper()})


class _BackupWriter:
    """zigpy's BackupManager listener: every backup zigpy makes (at start, periodically) is also
    the JSON on disk."""

    def __init__(self, radio: Radio) -> None:
        self.radio = radio

    def network_backup_created(self, backup: "zigpy.backups.NetworkBackup") -> None:
        try:
            self.radio.write_backup(backup)
        except OSError as exc:
            log.error("zigbee: could not write the network backup: %s", exc)

    def network_backup_removed(self, backup: "zigpy.backups.NetworkBackup") -> None:
        pass


async def _shutdown(app: "zigpy.application.ControllerApplication") -> None:
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await app.shutdown(db=True)
    except TimeoutError:
        log.warning("zigbee: the radio library did not close within %g s; reopening the stick without it",
                    STOP_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - a radio already gone cannot be shut down cleanly
        log.debug("zigbee: shutdown: %s", exc)
    finally:
        _release_db_thread(app)


def _release_db_thread(app: "zigpy.application.ControllerApplication") -> None:
    """zigpy's database runs on aiosqlite's thread, which is not a daemon: left running by a shutdown
    that timed out or was cut off (the hub stopping during a start attempt on a missing stick), it
    kept the process from exiting after `hub run` had logged "stopped" (a thread dump of a CI run
    showed it). Its queue gets aiosqlite's own stop sentinel, so the thread ends after what is queued;
    the database stays consistent (SQLite's journal), only its last checkpoint is skipped."""
    db = getattr(getattr(app, "_dblistener", None), "_db", None)
    if db is not None and getattr(db, "_running", False):
        db._stop_running()  # noqa: SLF001 - aiosqlite has no public way to end its thread without the loop
