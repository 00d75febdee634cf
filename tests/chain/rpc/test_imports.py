"""A node loads neither click nor the CLI: the RPC once imported private helpers from
``hub/chain/cli.py``, pulling the whole command tree into every node and forming an import cycle."""

from __future__ import annotations

import subprocess
import sys

NODE_MODULES = ["hub.chain.node.rpc", "hub.chain.node.rpc.ops_routes", "hub.chain.p2p.service", "hub.chain.p2p.network"]


def test_the_node_and_its_rpc_do_not_import_click_or_the_cli():
    code = (f"import sys\nfor m in {NODE_MODULES!r}: __import__(m)\n"
            "print(sorted(m for m in sys.modules if m == 'click' or m.startswith(('click.', 'hub.chain.cli', 'rich'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
