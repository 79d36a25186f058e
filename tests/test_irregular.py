"Table 1 jobs: same seed, same numbers; resume reuses finished jobs."
import pytest
from odelebm.irregular import Table1Setup, run_job, job_key

TINY = Table1Setup(n_series=40, n_points=20, iterations=3, baseline_iterations=3, batch_size=8,
                   posterior_steps=3, prior_steps=3, test_steps=3)
STRIP = ("train_seconds", "total_seconds")


@pytest.mark.parametrize("method", ["ODE-LEBM", "Latent ODE (ODE-RNN enc)", "GRU-D"])
def test_same_seed_gives_identical_results(method):
    a, b = (run_job(method, 0.3, 0, TINY) for _ in range(2))
    assert {k: v for k, v in a.items() if k not in STRIP} == {k: v for k, v in b.items() if k not in STRIP}
    c = run_job(method, 0.3, 1, TINY)
    assert c["mse"] != a["mse"]


def test_resume_reuses_a_finished_job_and_checkpoint(tmp_path):
    first = run_job("ODE-LEBM", 0.5, 0, TINY, run_dir=str(tmp_path))
    key = job_key("ODE-LEBM", 0.5, 0, TINY)
    assert (tmp_path / "jobs" / "table1" / f"{key}.json").exists()
    assert (tmp_path / "checkpoints" / "table1" / f"{key}.pt").exists()
    again = run_job("ODE-LEBM", 0.5, 0, TINY, run_dir=str(tmp_path), resume=True)
    assert again.pop("cached") and not first.pop("cached")
    assert again == first
