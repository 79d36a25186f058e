"""The Dask executor: the smoke profile on a two-worker cluster gives the local executor's numbers, and survives a
killed worker."""
import json, os, signal, subprocess, sys, threading, time
import nbformat
from pathlib import Path
import pytest
from conftest import ROOT, core

import distributed   # the [dask] extra, which [dev] installs
EXE = Path(sys.executable).parent / "odelebm-reproduce"
TIMING = {"table7_timing"}   # seconds differ between any two runs; everything else must not


@pytest.fixture
def cluster():
    """Two single-threaded worker processes on 127.0.0.1 and this process's environment from before they started; the
    `with` shuts the cluster down however the test ends."""
    env = dict(os.environ)   # the nannies write OMP_NUM_THREADS=1, PYTHONHASHSEED, ... into this process's environment
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as c:
            yield c.scheduler_address, env
    finally:
        os.environ.clear(); os.environ.update(env)


def _kill_a_worker_mid_job(address: str, stop: threading.Event, killed: dict) -> None:
    "Wait for a job to be running, give it a second to be well under way, then SIGKILL the worker process that runs it."
    with distributed.Client(address, set_as_default=False) as c:
        while not stop.is_set():
            busy = {w: keys for w, keys in c.processing().items() if keys}
            if busy:
                worker, keys = next(iter(busy.items()))
                time.sleep(1.0)
                if keys[0] in c.processing().get(worker, ()):
                    pid = c.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.update(key=keys[0], worker=worker)
                    return
            time.sleep(0.05)


def test_smoke_profile_on_a_dask_cluster_equals_local_and_survives_a_killed_worker(cluster, smoke_run, tmp_path):
    (cluster, env), runs, killed, stop = cluster, tmp_path / "runs", {}, threading.Event()
    killer = threading.Thread(target=_kill_a_worker_mid_job, args=(cluster, stop, killed), daemon=True)
    killer.start()
    t0 = time.time()
    try:
        r = subprocess.run([str(EXE), "--profile", "smoke", "--run-dir", str(runs), "--executor", "dask",
                            "--scheduler", cluster],
                           cwd=ROOT, capture_output=True, text=True, timeout=1500, env=env)
    finally:
        stop.set(); killer.join(30)
    print(f"smoke profile, dask executor (2 workers, one killed): {time.time() - t0:.1f} s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "go to the Dask scheduler" in r.stdout + r.stderr
    # the killed job ran twice and finished: the scheduler's story of its key
    assert killed, "no job was ever seen running on the cluster"
    with distributed.Client(cluster, set_as_default=False) as c:
        story = [s for s in c.story(killed["key"]) if s[0] == "scheduler"]
    assert sum(s[3] == "processing" for s in story) >= 2, story
    assert any(s[3] == "memory" for s in story), story
    # the same results files, number for number, as the local executor's run
    local = sorted(f.name for f in (smoke_run / "results").glob("*.json"))
    assert sorted(f.name for f in (runs / "results").glob("*.json")) == local
    # one torch thread per job on both executors, on one machine: equal to the last bit (a retried job starts again from
    # scratch)
    n = 0
    for name in local:
        if Path(name).stem in TIMING: continue
        assert core(runs / "results" / name) == core(smoke_run / "results" / name), name
        n += len(core(runs / "results" / name))
    print(f"{n} numbers in {len(local) - len(TIMING)} results files, all bit-identical to the local executor's")


def test_a_scheduler_nobody_runs_is_reported_before_any_notebook_runs(tmp_path):
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    r = subprocess.run([str(EXE), "--profile", "smoke", "--run-dir", str(tmp_path / "runs"), "--executor", "dask",
                        "--scheduler", "tcp://127.0.0.1:9"], cwd=ROOT, capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2 and "no Dask scheduler answers at tcp://127.0.0.1:9" in r.stderr, r.stderr
    assert not list((tmp_path / "runs").glob("*.ipynb")) and not (tmp_path / "runs" / "results").exists()


def test_scheduler_without_the_dask_executor_is_refused(tmp_path):
    r = subprocess.run([str(EXE), "--profile", "smoke", "--run-dir", str(tmp_path / "runs"), "--scheduler",
                        "tcp://127.0.0.1:9"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--scheduler needs --executor dask" in r.stderr


def test_the_cluster_recipe_writes_batch_scripts_for_slurm_and_pbs():
    """examples/dask_cluster.py, the README's scheduler-side recipe: single-threaded workers with this Python, the
    user's directives."""
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "examples" / "dask_cluster.py"), *a, "--dry-run"],
                                    capture_output=True, text=True, timeout=120)
    r = run("slurm", "--cores", "4", "--queue", "gpu", "--extra=--gres=gpu:1", "--setup", "module load cuda")
    assert r.returncode == 0, r.stderr
    for line in ("#SBATCH -p gpu", "#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=4", "module load cuda"):
        assert line in r.stdout
    assert (f"{sys.executable} -m distributed.cli.dask_worker tcp://" in r.stdout and "--nthreads 1" in r.stdout
            and "--nworkers 4" in r.stdout)
    r = run("pbs", "--cores", "2")
    assert r.returncode == 0 and "#PBS -l select=1:ncpus=2" in r.stdout and "--nworkers 2" in r.stdout, r.stderr


def test_a_local_cluster_leaves_the_notebooks_environment_alone(tmp_path, monkeypatch):
    """`--executor dask` starts a LocalCluster in the command's process; its nannies set OMP_NUM_THREADS=1 there, which
    the notebooks must not inherit."""
    from odelebm.reproduce import reproduce
    from odelebm.experiments.executors import local_cluster
    nbs = tmp_path / "nbs" / "experiments"; nbs.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nrun_dir = None\nfig_dir = None\nexecutor = "local"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os\nfrom odelebm.experiments.store import run_paths\nfrom odelebm.results import Results\n"
        "rd, fd = map(str, run_paths(profile, run_dir, fig_dir))\nres = Results('env', profile, rd, fd, params={})\n"
        "res.add('toy', os.environ.get('OMP_NUM_THREADS', 'unset'), 'dask' if executor != 'local' else 'local', 1.0)\n"
        "res.save()")]
    nb.metadata["kernelspec"] = dict(name="python3", display_name="Python 3", language="python")
    nbformat.write(nb, nbs / "env.ipynb")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = dict(os.environ)
    outcomes = reproduce("smoke", nbs_dir=nbs, run_dir=tmp_path / "runs", executor="dask")
    assert [o.status for o in outcomes] == ["ok"]
    rec = json.loads((tmp_path / "runs" / "results" / "env.json").read_text())["records"][0]
    # the notebook saw the cluster, not its nannies' settings
    assert (rec["method"], rec["column"]) == ("unset", "dask")
    assert dict(os.environ) == before                             # and this process's environment is as it was
