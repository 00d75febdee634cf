"""``python gpio_control.py HOST:PORT OP [FIELD=VALUE ...]``: one simulated-chip control operation by
hand, e.g. ``gpio_control.py 127.0.0.1:7790 press chip=gpiochip0 line=17``. The same line protocol as
the Zigbee emulators', so the same client; gpio_sim.py lists the operations.
"""

from zigbee_control import main

if __name__ == "__main__":
    raise SystemExit(main())
