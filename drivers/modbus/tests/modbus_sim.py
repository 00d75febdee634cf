"""A Modbus TCP device in a process of its own, for tests: ``python modbus_sim.py PORT``.

Forty holding registers on device id 1, all 0 at start. Like a real boiler controller it refuses
(illegal data value) a write above 900 to register 10, so a test can see a device's refusal.
"""

import asyncio
import sys

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

GUARDED, LIMIT = 10, 900


async def action(function_code, start, address, count, registers, values):
    if values and address == GUARDED and values[0] > LIMIT:
        return ExcCodes.ILLEGAL_VALUE
    return None


async def main(port: int) -> None:
    device = SimDevice(1, ([SimData(0, count=1, values=0, datatype=DataType.BITS)],
                           [SimData(0, count=1, values=0, datatype=DataType.BITS)],
                           [SimData(0, count=40, values=0, datatype=DataType.REGISTERS)],
                           [SimData(0, count=1, datatype=DataType.INVALID)]), action=action)
    server = ModbusTcpServer([device], address=("127.0.0.1", port))
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
