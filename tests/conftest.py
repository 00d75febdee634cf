import pytest


@pytest.fixture
def write_config(tmp_path):
    """Write <tmp>/configuration.yaml, where the hub looks for it by default."""

    def write(text: str):
        path = tmp_path / "configuration.yaml"
        path.write_text(text)
        return path

    return write
