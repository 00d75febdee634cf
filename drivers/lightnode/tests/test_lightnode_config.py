"""``hub config check`` on a ``lightnode:`` section: every mistake in one pass, each at its line."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.hubproc import run_cli  # noqa: E402

BAD = """\
lightnode:
  devices:
    - {host: 127.0.0.1, port: 70000, name: Plug}
    - {host: 127.0.0.1, port: 7700, nmae: x}
    - {host: 127.0.0.1, port: 7700, name: plug}
"""


def test_config_check_names_every_problem_at_its_line(tmp_path):
    (tmp_path / "configuration.yaml").write_text(BAD)
    result = run_cli(tmp_path, "config", "check")
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).splitlines()
    expected = [
        ":3:25: lightnode.devices[0].port: Input should be less than or equal to 65535",
        ":3:38: lightnode.devices[0].name: name (as entity ids spell it) 'plug' is also used by devices[2]",
        ":4:25: lightnode.devices[1].port: address 127.0.0.1:7700 is also used by devices[2]",
        ":4:37: lightnode.devices[1].nmae: Extra inputs are not permitted",
        ":5:25: lightnode.devices[2].port: address 127.0.0.1:7700 is also used by devices[1]",
    ]
    for text in expected:
        assert any(line.endswith(text) for line in lines), (text, lines)
