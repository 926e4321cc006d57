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
from scalelab.errors import GridInterrupted, StoreError
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


_CLI = [sys.executable, "-c", "import sys; from scalelab.cli.app import main; sys.exit(main())"]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    env.pop("SCALELAB_DEBUG", None)
    return env


def _sigterm_when(cmd: list[str], ready, what: str, wait_s: float) -> tuple[int, str]:
    """Start the CLI ``cmd``, send it SIGTERM once ``ready()``; its exit code and stderr."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        deadline = time.monotonic() + wait_s
        while not ready():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            if time.monotonic() > deadline:
                pytest.fail(f"{what} within {wait_s:g} s")
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode()


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
    cmd = [*_CLI, "tunnel", "run", str(grid), "--store", str(db)]

    def second_run_started() -> bool:
        try:
            with RunStore(db, readonly=True) as s:
                return s.counts().get("completed") == 1 and s.counts().get("running") == 1
        except StoreError:  # not there yet, or its tables are being created
            return False

    code, err = _sigterm_when(cmd, second_run_started, "the grid never reached its second run", 120)
    assert code == 143
    assert f"interrupted: 1 of 2 runs stored; {RESUME}" in err
    with RunStore(db, readonly=True) as s:
        assert s.counts() == {"completed": 1, "pending": 1}  # released, to resume from its checkpoint


def test_sigterm_in_tunnel_ddp_stops_torchrun_releases_the_run_and_says_so(corpus, tmp_path, monkeypatch, capsys,
                                                                          grid_toml):
    """A real SIGTERM to this process while `tunnel ddp` waits on its torchrun (here a stand-in that sleeps)."""
    pytest.importorskip("torch")
    import threading

    import scalelab.tunnel.ddp as ddp
    from scalelab.tunnel.store import RunStore

    grid = tmp_path / "grid.toml"
    grid.write_text(grid_toml(corpus, [4], name="one"))
    db = tmp_path / "runs.sqlite"
    monkeypatch.setattr(ddp, "_torchrun_cmd", lambda *a: [sys.executable, "-c", "import time; time.sleep(300)"])
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def popen_then_sigterm(*args, **kwargs):
        p = real_popen(*args, **kwargs)
        started.append(p)
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return p

    monkeypatch.setattr(ddp.subprocess, "Popen", popen_then_sigterm)
    monkeypatch.delenv("SCALELAB_DEBUG", raising=False)
    before = signal.getsignal(signal.SIGTERM)
    try:
        code = main(["tunnel", "ddp", str(grid), "--store", str(db), "--nproc", "2"])
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
    err = capsys.readouterr().err
    assert code == 143, err
    assert f"interrupted: 0 of 1 runs stored; {RESUME}" in err and "Traceback" not in err
    (child,) = started
    assert child.returncode == -signal.SIGTERM  # stopped by the run, not left sleeping
    with RunStore(db, readonly=True) as s:
        assert s.counts() == {"pending": 1}
        (rec,) = s.runs()
        assert rec.kind == "ddp" and rec.claim_id is None and "resumes from its checkpoint" in rec.error
    assert signal.getsignal(signal.SIGTERM) == before  # the CLI's handler is gone again


def _processes_naming(text: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    out.append(int(d.name))
            except OSError:
                continue
    return out


@pytest.mark.slow  # real torchrun with 2 gloo workers, stopped and resumed: ~30-60 s on 2 cores
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="looks for leftover workers in /proc (Linux)")
def test_sigterm_to_a_real_tunnel_ddp_leaves_no_worker_and_the_rerun_resumes(corpus, tmp_path, grid_toml):
    pytest.importorskip("torch")
    from scalelab.tunnel.store import RunStore

    grid = tmp_path / "grid.toml"
    grid.write_text(grid_toml(corpus, [300], name="ddp"))
    db = tmp_path / "runs.sqlite"
    cmd = [*_CLI, "tunnel", "ddp", str(grid), "--store", str(db), "--nproc", "2"]
    ckpt_dir = tmp_path / "runs-checkpoints"
    code, err = _sigterm_when(cmd, lambda: ckpt_dir.is_dir() and any(ckpt_dir.glob("*.pt")),  # step 50's
                              "no checkpoint", 180)
    assert code == 143, err[-2000:]
    assert f"interrupted: 0 of 1 runs stored; {RESUME}" in err
    assert _processes_naming(str(ckpt_dir)) == []  # torchrun and both workers are gone
    with RunStore(db, readonly=True) as s:
        assert s.counts() == {"pending": 1}
    done = subprocess.run([*cmd, "--format", "json"], capture_output=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    with RunStore(db, readonly=True) as s:
        (rec,) = s.runs()
        assert rec.status == "completed" and rec.resumed_from_step and rec.resumed_from_step >= 50


@pytest.mark.parametrize("command", ["run", "ddp"])
def test_an_interrupt_between_claim_and_training_still_releases_the_run(command, corpus, tmp_path, monkeypatch,
                                                                        grid_toml):
    """SIGTERM can land after a run is claimed but before the trainer's own handler, or before torchrun starts
    (here: while its checkpoint path is recorded); the run must go back to pending, not stay running until a
    later grid finds this process gone."""
    pytest.importorskip("torch")
    from scalelab.tunnel.ddp import run_ddp
    from scalelab.tunnel.grid import load_grid
    from scalelab.tunnel.runner import run_grid
    from scalelab.tunnel.store import RunStore

    grid = tmp_path / "grid.toml"
    grid.write_text(grid_toml(corpus, [4], name="early"))
    st = RunStore(tmp_path / "runs.sqlite")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(st, "set_checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt) as e:  # (a bare one would otherwise stop pytest itself)
        if command == "run":
            run_grid(load_grid(grid), st, quiet=True)
        else:
            run_ddp(load_grid(grid).configs[0], st, nproc=2)
    assert isinstance(e.value, GridInterrupted) and "0 of 1 runs stored" in str(e.value)
    assert st.counts() == {"pending": 1}


@pytest.mark.slow  # two spawned worker processes import torch: ~10 s on 2 cores
def test_ctrl_c_with_worker_processes_puts_their_runs_back_to_pending(corpus, tmp_path, grid_toml):
    """With --workers 2, Ctrl-C stopped the workers before their own handlers ran and their runs stayed
    `running` in `tunnel ls` until a later grid found the pids gone; the grid process now releases them."""
    pytest.importorskip("torch")
    from scalelab.tunnel.grid import load_grid
    from scalelab.tunnel.progress import GridProgress
    from scalelab.tunnel.runner import run_grid
    from scalelab.tunnel.store import RunStore

    class CtrlCOnceTraining(GridProgress):
        def run_progress(self, run_hash, tokens, tokens_per_s):
            raise KeyboardInterrupt  # as Ctrl-C lands in the grid process while the workers train

    grid = tmp_path / "grid.toml"
    grid.write_text(grid_toml(corpus, [400, 400], name="pool"))
    st = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(GridInterrupted):
        run_grid(load_grid(grid), st, workers=2, progress=CtrlCOnceTraining())
    assert st.counts() == {"pending": 2}
