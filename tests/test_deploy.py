"""The shipped systemd unit: `systemd-analyze verify` finds nothing to say about it, and what it passes to
the daemon (flags, environment) is what the daemon accepts."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.config import load_config

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "pool-tracker.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (.ci/run installs systemd)")
def test_systemd_analyze_verify_is_silent(tmp_path):
    installed = Path(sys.executable).with_name("pool-tracker")
    assert installed.exists(), "pip install -e . puts the pool-tracker script beside the interpreter"
    unit = tmp_path / "pool-tracker.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/pool-tracker", str(installed)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr


def test_the_units_flags_and_environment_are_the_daemons(tmp_path):
    text = UNIT.read_text()
    env = dict(re.findall(r"^Environment=(\w+)=(.*)$", text, re.M))
    env = {k: v.replace("%d", str(tmp_path)) for k, v in env.items()}
    (tmp_path / "qarnot-token").write_text("a-qarnot-token-123\n")
    config, token = load_config(env=env)
    assert token == "a-qarnot-token-123"
    argv = re.search(r"^ExecStart=\S+ (.*)$", text, re.M).group(1).split()
    argv[argv.index("--config") + 1] = str(tmp_path / "missing.toml")
    out = subprocess.run([sys.executable, "-m", "tracker", *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "cannot read config file" in out.stderr, out.stderr   # flags accepted
