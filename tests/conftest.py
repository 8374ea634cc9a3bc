import pytest

from tracker.emulator import Emulator


@pytest.fixture
def emulator():
    """A small seeded cluster on 127.0.0.1 whose time runs 600x (ten minutes per real second)."""
    with Emulator.running(pools=12, seed=7, speed=600.0, token="test-token") as emu:
        yield emu
