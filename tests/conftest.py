import pytest

from tests.hubproc import DEMO, HubProcess


@pytest.fixture
def write_config(tmp_path):
    """Write <tmp>/configuration.yaml, where the hub looks for it by default."""

    def write(text: str):
        path = tmp_path / "configuration.yaml"
        path.write_text(text)
        return path

    return write


@pytest.fixture
def hub(tmp_path):
    """A real ``hub run`` on the fast demo home (a module that needs another configuration defines
    its own ``hub``)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    proc = HubProcess(data).start()
    yield proc
    proc.stop()
