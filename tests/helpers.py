"""Small things several test modules share."""
import qarnot


class HandClock:
    """Simulated time that moves only when a test moves it: no test waits on the wall clock."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def connect(emu):
    """The unmodified SDK, pointed at an emulator."""
    return qarnot.connection.Connection(client_token=emu.token, cluster_url=emu.url)
