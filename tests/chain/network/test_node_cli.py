"""``hub chain node`` refuses bad set-ups with a clear message before it touches the network."""

from __future__ import annotations

from click.testing import CliRunner

from hub.chain.cli import chain


def _genesis(runner: CliRunner, out: str, chain_id: str) -> None:
    result = runner.invoke(chain, ["genesis", "--out", out, "--producers", "1", "--chain-id", chain_id])
    assert result.exit_code == 0, result.output


def test_a_data_directory_of_another_chain_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    _genesis(runner, "a", "chain-a")
    _genesis(runner, "b", "chain-b")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "genesis.json").write_text((tmp_path / "a" / "genesis.json").read_text())
    result = runner.invoke(chain, ["node", "--genesis", "b/genesis.json", "--data", "data", "--listen", "127.0.0.1:0"])
    assert result.exit_code == 1
    assert "belongs to another chain" in result.output


def test_addresses_must_be_host_and_port(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    _genesis(runner, "a", "chain-a")
    result = runner.invoke(chain, ["node", "--genesis", "a/genesis.json", "--data", "d", "--peers", "nohost"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


def test_peer_limits_are_checked_before_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    _genesis(runner, "a", "chain-a")
    base = ["node", "--genesis", "a/genesis.json", "--data", "d"]
    result = runner.invoke(chain, [*base, "--peers", "127.0.0.1:1,127.0.0.1:2", "--max-outbound", "1"])
    assert result.exit_code == 2 and "2 peers given, but --max-outbound is 1" in result.output
    result = runner.invoke(chain, [*base, "--max-inbound", "0"])
    assert result.exit_code == 2 and "--max-inbound" in result.output
