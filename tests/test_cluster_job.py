"""`seam run` through `ray job submit` against a real localhost Ray head (PIPELINE-NOTES §5.3).

Catches what the embedded fixture cannot: RAY_ADDRESS plumbing inside a job, connecting without
resource arguments, the job's own working directory (absolute paths), auth, and the job's exit status.
The head is stopped by killing its own PID, never with `ray stop` (which kills every Ray on the host).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "SEAM_FAULTS"}
    return env | {"RAY_AUTH_MODE": "disabled", "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}


def _wait_for_dashboard(url: str, head: subprocess.Popen, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert head.poll() is None, "ray head exited during start-up"
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"Ray dashboard at {url} did not come up in {deadline_s} s")


@pytest.fixture()
def ray_head():
    if not (BIN / "ray").exists():
        pytest.skip("the ray CLI is not installed next to this Python")
    temp_dir = tempfile.mkdtemp(prefix="rayci", dir="/tmp")  # short: Ray's unix socket paths must fit 107 chars
    port, dash = _free_port(), _free_port()
    # Every fixed default port gets a free one: the session's embedded Ray (or another user's) holds the
    # defaults, e.g. the dashboard agent's 52365, and a head without its agent cannot accept jobs.
    extra = [f"--{name}={_free_port()}" for name in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
        "runtime-env-agent-port", "ray-client-server-port", "node-manager-port", "object-manager-port")]
    log = open(Path(temp_dir) / "head.log", "wb")
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", f"--dashboard-port={dash}", *extra,
         "--dashboard-host=127.0.0.1", "--num-cpus=2", "--num-gpus=0", f"--temp-dir={temp_dir}",
         "--include-dashboard=true", "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    url = f"http://127.0.0.1:{dash}"
    try:
        _wait_for_dashboard(url, head)
        yield url
    finally:
        head.send_signal(signal.SIGTERM)  # --block: the head drains and stops what it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)  # our own session only
            head.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_seam_run_as_a_ray_job(ray_head, tiny_image_round, tmp_path):
    results = tmp_path / "results"
    cmd = [str(BIN / "ray"), "job", "submit", "--address", ray_head, "--submission-id", "seam-ci-smoke", "--",
           str(BIN / "seam"), "run", str(tiny_image_round), "--results", str(results), "--backend", "ray",
           "--timeout-s", "600", "--json",
           "--set", "max_forget_epochs=5", "--set", "max_recover_epochs=3"]
    job = _submit(cmd)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    summary = json.loads(next(line for line in reversed(job.stdout.splitlines()) if line.startswith("{")))
    assert summary["backend"] == "ray" and summary["failed"] == 0
    rows = [pq.read_table(p).to_pylist()[0] for p in sorted(results.glob("round=*/method=*/*.parquet"))]
    model_ids = sorted(p.name for p in tiny_image_round.glob("id-*"))
    assert sorted(r["model_id"] for r in rows) == model_ids == sorted(summary_ids(results))
    assert {r["status"] for r in rows} == {"ok"} and all(r["attempts"] == 1 for r in rows)


def _submit(cmd: list[str], deadline_s: float = 120) -> subprocess.CompletedProcess:
    """`ray job submit`, retried while the head's job agent is still starting (a 500 that creates no job)."""
    end = time.monotonic() + deadline_s
    while True:
        job = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=900)
        if "No available agent to submit job" not in job.stderr + job.stdout or time.monotonic() > end:
            return job
        time.sleep(2)


def summary_ids(results: Path) -> list[str]:
    """Model ids in the manifest snapshot the job wrote: the driver ran against the same round."""
    (manifest,) = results.glob("manifest/round=*/manifest.parquet")
    return pq.read_table(manifest, columns=["model_id"]).column(0).to_pylist()
