"""`.ci/run` and `scripts/slurm-single-node.sh`, checked without running either for real."""

from __future__ import annotations

import re
import subprocess

from ..conftest import REPO

CI = REPO / ".ci" / "run"
SLURM = REPO / "scripts" / "slurm-single-node.sh"


def test_scripts_parse():
    for script in (CI, SLURM):
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_ci_runs_the_readme_command_verbatim_between_cluster_up_and_down():
    text = CI.read_text(encoding="utf-8")
    awk = re.search(r"cmd=\$\((awk .*README\.md)\)", text)
    assert awk, "the README's test command must be extracted by awk, as before"
    cmd = subprocess.run(
        ["bash", "-c", awk[1]], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    # CI runs the whole suite: the slow end-to-end tests that plain `pytest` leaves out too
    assert cmd.endswith('&& pytest -m "slow or not slow"'), cmd
    assert "pip install -c constraints.txt" in cmd, cmd
    assert 'bash -c "$cmd"' in text
    up, run, trap = (
        text.index('"$slurm" up'),
        text.index('bash -c "$cmd"'),
        text.index('trap \'"$slurm" down'),
    )
    assert trap < up < run  # the daemons stop on every exit once `up` was tried


def test_slurm_script_rejects_unknown_commands():
    proc = subprocess.run(["bash", str(SLURM), "sideways"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_slurm_script_stops_only_what_it_recorded(tmp_path):
    """`down` with no recorded PIDs stops nothing and succeeds (CI calls it on every exit)."""
    env = {"PATH": "/usr/bin:/bin", "METAEXAMPLES_SLURM_DIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(SLURM), "down"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "stopped" not in proc.stderr
