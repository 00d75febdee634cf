"""``python ble_control.py HOST:PORT OP [FIELD=VALUE ...]``: one fake BlueZ control operation by hand.

The same line protocol as the Zigbee emulators', so the same client: e.g.
``ble_control.py 127.0.0.1:7730 advertise device=kitchen 'values={"temperature": 25}' count=10``,
``ble_control.py 127.0.0.1:7730 get device=desk characteristic=led``. fake_bluez.py's ``Sim.control``
lists the operations.
"""

from zigbee_control import main

if __name__ == "__main__":
    raise SystemExit(main())
