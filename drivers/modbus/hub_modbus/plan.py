"""Coalescing: turning a device's register map into as few read requests as the protocol allows.

Other hubs send one request per entity; on an RTU bus at 9,600 baud each request costs a fixed
overhead (addressing, CRC, two 3.5-character silences and the device's turnaround) that dwarfs the
two bytes of a register. So entities of the same register type on the same device are sorted by
address and merged into one request while the span stays within the protocol's limit (125 registers,
2,000 bits) and the hole between neighbours is at most ``max_gap``: reading a few unused registers is
cheaper than another round trip. Some devices refuse to read across a hole (illegal data address);
the poller then splits that block into single reads for good, see :mod:`hub_modbus.poller`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: The protocol's ceilings for one read (Modbus Application Protocol V1.1b3, 6.1-6.4).
MAX_REGISTERS = 125
MAX_BITS = 2000
BIT_TYPES = frozenset({"coil", "discrete_input"})


@dataclass(frozen=True)
class ReadItem:
    """One value to read: ``key`` is the entity it feeds."""

    key: str
    register: str  # coil, discrete_input, input, holding
    address: int
    width: int  # registers (or bits) it spans


@dataclass
class Block:
    """One read request and the items it serves."""

    register: str
    address: int
    count: int
    items: list[ReadItem] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.address + self.count


def plan(
    items: list[ReadItem], *, max_gap: int = 8, max_registers: int = MAX_REGISTERS, max_bits: int = MAX_BITS
) -> list[Block]:
    """Blocks covering every item, fewest first-fit in address order.

    Deterministic (sorted by register type, then address) so that the same map always produces the
    same requests: easier to compare against a bus trace.
    """
    blocks: list[Block] = []
    by_type: dict[str, list[ReadItem]] = {}
    for item in items:
        by_type.setdefault(item.register, []).append(item)
    for register in sorted(by_type):
        limit = max_bits if register in BIT_TYPES else max_registers
        current: Block | None = None
        for item in sorted(by_type[register], key=lambda i: (i.address, -i.width)):
            if item.width > limit:
                raise ValueError(f"{item.key}: {item.width} {register} registers exceed one request's {limit}")
            if current is not None:
                end = max(current.end, item.address + item.width)
                gap = item.address - current.end
                if gap <= max_gap and end - current.address <= limit:
                    current.count = end - current.address
                    current.items.append(item)
                    continue
            current = Block(register, item.address, item.width, [item])
            blocks.append(current)
    return blocks


def split(block: Block) -> list[Block]:
    """One block per item: the fallback for devices that refuse holes (or a single bad address)."""
    return [Block(block.register, i.address, i.width, [i]) for i in block.items]
