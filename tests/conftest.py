import json, pathlib, subprocess, sys, time
import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]

@pytest.fixture(autouse=True)
def _threads():
    # small networks gain nothing from more threads; one thread keeps runs comparable
    torch.set_num_threads(1)
    yield


def core(results_file: pathlib.Path) -> list[tuple]:
    "The measured values of a results file: (table, method, column, seed, value) rows, sorted."
    return sorted((r["table"], r["method"], r["column"], r["seed"], r["value"]) for r in json.loads(results_file.read_text())["records"])


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    "What CI runs: the real experiment notebooks through the console script, smoke profile, uninterrupted, local executor."
    runs = tmp_path_factory.mktemp("smoke") / "runs"
    exe = pathlib.Path(sys.executable).parent / "odelebm-reproduce"
    t0 = time.time()
    r = subprocess.run([str(exe), "--profile", "smoke", "--run-dir", str(runs)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"smoke profile, local executor: {time.time() - t0:.1f} s")
    return runs
