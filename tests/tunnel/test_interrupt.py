"""Issue 12, the terminal: Ctrl-C and SIGTERM say what was stored and how to resume (exit 130 / 143), and
outside a TTY a grid logs one line per finished run with its ETA."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelab.cli.app import main
from scalelab.errors import GridInterrupted
from scalelab.tunnel.progress import LogProgress

RESUME = "rerun the same command to resume"


def test_log_lines_carry_the_grids_eta(caplog):
    q = LogProgress()
    with caplog.at_level(logging.INFO, logger="scalelab.tunnel"):
        q.start(name="g", total_runs=3, done_runs=0, total_flops=300.0)
        assert q.eta(5.0) == "?"  # nothing trained yet: no rate to extrapolate
        q.run_started("a" * 12, "C=1e2", 10, 100.0)
        q.run_finished("a" * 12, "completed", 3.0, 1.0)
    assert "[1/3] ETA" in caplog.text
    assert q.eta(10.0) == "0m20s"  # 100 of 300 FLOPs in 10 s: 200 left take 20 s
    assert q.eta(4000.0) == "2h13m"
    q.run_started("b" * 12, "", 10, 200.0)
    q.run_finished("b" * 12, "completed", 3.0, 1.0)
    assert q.eta(10.0) == "done"


def test_ctrl_c_in_a_grid_says_what_was_stored_and_exits_130(corpus, tmp_path, capsys, monkeypatch, caplog,
                                                             grid_toml):
    pytest.importorskip("torch")
    import scalelab.tunnel.runner as runner

    grid = tmp_path / "grid.toml"
    grid.write_text(grid_toml(corpus, [2, 2, 2], name="stopped"))
    db = tmp_path / "runs.sqlite"
    real, calls = runner.execute_run, []

    def second_run_hits_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "execute_run", second_run_hits_ctrl_c)
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    with caplog.at_level(logging.INFO, logger="scalelab.tunnel"):
        code = main(["tunnel", "run", str(grid), "--store", str(db)])
    err = capsys.readouterr().err
    assert code == 130
    assert f"interrupted: 1 of 3 runs stored; {RESUME}" in err and "Traceback" not in err
    # stdout is not a TTY here: the run that finished was logged with the ETA, not drawn
    assert "[1/3] ETA" in caplog.text
    monkeypatch.setattr(runner, "execute_run", real)
    assert main(["tunnel", "run", str(grid), "--store", str(db), "--format", "json"]) == 0


def test_grid_interrupted_carries_its_signal():
    e = GridInterrupted(2, 5, int(signal.SIGTERM))
    assert isinstance(e, KeyboardInterrupt) and e.signum == 15
    assert str(e) == f"interrupted: 2 of 5 runs stored; {RESUME}"


@pytest.mark.slow  # a real process, a real SIGTERM: ~10-20 s on 2 cores
def test_sigterm_stops_the_grid_with_a_line_and_exit_143(corpus, tmp_path, grid_toml):
    pytest.importorskip("torch")
    from scalelab.tunnel.store import RunStore

    grid = tmp_path / "grid.toml"
    grid.write_text(grid_toml(corpus, [2, 3000], name="stopped"))
    db = tmp_path / "runs.sqlite"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    env.pop("SCALELAB_DEBUG", None)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from scalelab.cli.app import main; sys.exit(main())",
                             "tunnel", "run", str(grid), "--store", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.2)
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            if db.exists():
                with RunStore(db, readonly=True) as s:
                    if s.counts().get("completed") == 1 and s.counts().get("running") == 1:
                        break
        else:
            pytest.fail("the grid never reached its second run")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143
    assert f"interrupted: 1 of 2 runs stored; {RESUME}" in err.decode()
    with RunStore(db, readonly=True) as s:
        assert s.counts() == {"completed": 1, "pending": 1}  # released, to resume from its checkpoint
