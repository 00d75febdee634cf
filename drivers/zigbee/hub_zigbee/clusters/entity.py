"""What every cluster-backed entity shares: listening, binding and reporting, reading, and turning
a ZCL status into the hub's errors.

The state of an entity is computed from zigpy's attribute cache (``cluster.get``), never from a
frame alone: zigpy updates that cache from reports, reads, quirks (a Xiaomi quirk that turns a
manufacturer frame into an occupancy attribute) and its database, so one function per entity
(:meth:`ClusterEntity.compute`) gives the same answer whichever way a value arrived. A command the
device confirms puts the commanded values into the cache (:meth:`ClusterEntity.confirmed`), which
is how "state written when the device confirms" is done without a second code path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from hub.core.commands import CommandRefused
from hub.devices.model import EntitySpec
from hub_zigbee.clusters.base import Reporting, ZigbeeEntity

if TYPE_CHECKING:
    import zigpy.endpoint
    import zigpy.zcl

    from hub.context import EntityHandle

log = logging.getLogger(__name__)

#: zigpy's events carrying a new attribute value: a report, a read, a quirk's local update.
_VALUE_EVENTS = ("attribute_report", "attribute_read", "attribute_updated")


def status_name(status: Any) -> str:
    """``Status.INVALID_VALUE`` -> ``INVALID_VALUE``, an unknown number -> ``0x9a``."""
    name = getattr(status, "name", None)
    return name if name else f"0x{int(status):02x}"


def check_status(result: Any, what: str) -> None:
    """Raise :class:`CommandRefused` naming the ZCL status unless the device said SUCCESS.

    ``result`` is what zigpy returns for a cluster command: the Default Response (``status``), a
    cluster-specific response with a ``status`` field (Door Lock), or, for Write Attributes, a
    list of status records."""
    from zigpy.zcl import foundation

    statuses: list[Any] = []
    if isinstance(result, list) and result and isinstance(result[0], list):  # write_attributes
        statuses = [r.status for r in result[0]]
    elif hasattr(result, "status"):
        statuses = [result.status]
    elif isinstance(result, (list, tuple)) and len(result) >= 2:  # legacy (command_id, status)
        statuses = [result[1]]
    for status in statuses:
        if status != foundation.Status.SUCCESS:
            raise CommandRefused(f"the device refused {what}: ZCL status {status_name(status)}")


class NotYet(Exception):
    """Raised by ``compute`` while a value cannot be shown right: a meter's divisor not read yet
    (a report right after pairing, before the first read). Nothing is written rather than a value
    a thousand times too big, which a bill could take for consumption."""


def factor(cluster: "zigpy.zcl.Cluster", name: str) -> Any:
    """A multiplier or divisor: the device's, 1 if it has none, NotYet while unread."""
    value = cluster.get(name)
    if value:
        return value
    if value == 0 or cluster.is_attribute_unsupported(name):
        return 1
    raise NotYet(name)


class _CommandListener:
    """zigpy still delivers cluster commands from a device (IAS Zone's status change notification,
    its enroll request) through the legacy listener interface only."""

    def __init__(self, entity: "ClusterEntity", cluster: "zigpy.zcl.Cluster") -> None:
        self.entity, self.cluster = entity, cluster

    def cluster_command(self, tsn: int, command_id: int, args: Any) -> None:
        self.entity.cluster_command(self.cluster, command_id, args)


class ClusterEntity(ZigbeeEntity):
    """A :class:`ZigbeeEntity` whose state is a function of attributes of its clusters."""

    #: The key's suffix after ``"<endpoint>_"``.
    what: ClassVar[str]
    capability: ClassVar[str]

    def __init__(self, endpoint: "zigpy.endpoint.Endpoint", *, device_class: str | None = None,
                 unit: str | None = None, options: dict | None = None, what: str | None = None) -> None:
        super().__init__(endpoint)
        what = what or self.what
        #: What the entity is, for its name ("Hall plug power"); see entities_for's ``name``.
        self.label = what.replace("_", " ")
        self.spec = EntitySpec(key=f"{endpoint.endpoint_id}_{what}", capability=self.capability,
                               device_class=device_class, unit=unit, options=options or {})
        #: cluster -> the attribute names whose changes this entity shows.
        self.watched: dict[zigpy.zcl.Cluster, set[str]] = {}
        self.static: dict[zigpy.zcl.Cluster, set[str]] = {}
        self._unsubscribe: list[Any] = []
        self._held = False

    # -- helpers for subclasses ---------------------------------------------------------------
    def watch(self, cluster: "zigpy.zcl.Cluster", *reporting: Reporting, also: tuple[str, ...] = (),
              static: tuple[str, ...] = ()) -> None:
        """Show changes of ``reporting``'s attributes (reporting configured at pairing), of
        ``also``'s (read at each refresh: a colour mode) and of ``static``'s (read once, then from
        zigpy's cache: a divisor, a zone type)."""
        self.watched.setdefault(cluster, set()).update(r.attribute for r in reporting)
        self.watched[cluster].update(also, static)
        self.static.setdefault(cluster, set()).update(static)
        if reporting:
            self.reporting.setdefault(cluster, []).extend(reporting)

    def compute(self) -> tuple[Any, dict] | None:
        """The state from zigpy's attribute cache, or None while nothing is known."""
        raise NotImplementedError

    @contextmanager
    def held(self) -> Iterator[None]:
        """Write once at the end of a command of several ZCL steps (on, then level, then colour),
        so no half-done state shows in between; whatever was confirmed is written even if a later
        step is refused."""
        self._held = True
        try:
            yield
        finally:
            self._held = False
            self.publish()

    def publish(self) -> None:
        """Write the state if it changed (a report repeating the value writes nothing)."""
        if self._held:
            return
        try:
            state = self.compute()
        except NotYet:
            return
        if state is None:
            return
        value, attributes = state
        current = self.handle.state if self.handle is not None else None
        if self._last == (value, attributes) and current is not None and current.available:
            return
        self.write(value, **attributes)

    def confirmed(self, cluster: "zigpy.zcl.Cluster", values: dict[str, Any]) -> None:
        """The device accepted a command: its attributes now hold ``values``."""
        for name, value in values.items():
            cluster.update_attribute(cluster.find_attribute(name).id, value)
        self.publish()

    async def call(self, cluster: "zigpy.zcl.Cluster", command: str, what: str, *args: Any, **kwargs: Any) -> Any:
        """Send a cluster command, raising CommandRefused unless the device answers SUCCESS."""
        result = await getattr(cluster, command)(*args, **kwargs)
        check_status(result, what)
        return result

    async def write_attribute(self, cluster: "zigpy.zcl.Cluster", values: dict[str, Any], what: str) -> None:
        result = await cluster.write_attributes(values)
        check_status(result, what)
        self.publish()  # zigpy put the written values into its cache without an event

    def cluster_command(self, cluster: "zigpy.zcl.Cluster", command_id: int, args: Any) -> None:
        """A cluster command from the device; most entities need none."""

    # -- the contract ---------------------------------------------------------------------------
    def attach(self, handle: "EntityHandle") -> None:
        self.handle = handle
        for cluster in self.watched:
            for event in _VALUE_EVENTS:
                self._unsubscribe.append(cluster.on_event(event, self._on_value))
            listener = _CommandListener(self, cluster)
            cluster.add_listener(listener)
            self._unsubscribe.append(lambda c=cluster, lst=listener: c.remove_listener(lst))
        # What zigpy's database remembers, for republish() when a sleepy device next speaks; not
        # written now, since the device has not spoken yet (the gateway refreshes or republishes).
        try:
            state = self.compute()
        except NotYet:
            state = None
        if state is not None:
            self._last = state

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self.handle = None

    def _on_value(self, event: Any) -> None:
        for cluster, names in self.watched.items():
            if cluster.cluster_id == event.cluster_id and event.attribute_name in names:
                try:
                    self.publish()
                except Exception:  # a listener must not break zigpy's frame handling
                    log.exception("%s: could not write the state", self.spec.key)
                return

    async def configure(self) -> None:
        from zigpy.zcl import ReportingConfig, foundation

        if self.endpoint.device.skip_configuration:
            return  # the quirk says this device neither binds nor reports as the spec says
        for cluster, reporting in self.reporting.items():
            bound = await cluster.bind()
            if bound and bound[0] != 0:  # ZDO status: reports would not reach the coordinator
                self.needs_polling = True
                log.info("%s: %s cannot be bound (%s); polled instead", self.spec.key, cluster.name,
                         status_name(bound[0]))
            results = await cluster.configure_reporting_multiple({
                cluster.find_attribute(r.attribute): ReportingConfig(
                    min_interval=r.min_interval, max_interval=r.max_interval,
                    reportable_change=r.reportable_change)
                for r in reporting
            })
            refused = [r for r in results if r.status != foundation.Status.SUCCESS]
            if refused:
                self.needs_polling = True
                log.info("%s: %s cannot report %s (%s); polled instead", self.spec.key, cluster.name,
                         ", ".join(str(r.attrid) for r in refused),
                         ", ".join(status_name(r.status) for r in refused))

    async def refresh(self) -> None:
        for cluster, names in self.watched.items():
            static = self.static.get(cluster, set())
            for group, cached in ((names - static, False), (static, True)):
                wanted = sorted(n for n in group if not cluster.is_attribute_unsupported(n))
                if wanted:
                    await cluster.read_attributes(wanted, allow_cache=cached)
        self.publish()
