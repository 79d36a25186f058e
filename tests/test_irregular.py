"Table 1 jobs: same seed, same numbers; resume reuses finished jobs."
import pytest
from odelebm.experiments.recipes import recipe
from odelebm.experiments.methods import method
from odelebm.experiments.irregular import run_method

TINY = recipe("table1", "smoke", {"data.n_series": 40, "data.n_points": 20, "fit.iterations": 3,
                                  "baseline.iterations": 3, "fit.batch_size": 8, "baseline.batch_size": 8,
                                  "fit.posterior_steps": 3, "fit.prior_steps": 3, "test.steps": 3})
# wall times: never equal between two runs
STRIP = ("train_seconds", "total_seconds", "predict_seconds", "beside_seconds")


def untimed(job: dict) -> dict:
    "A job record without its wall times (those of the training record too)."
    return {k: v for k, v in job.items() if k not in STRIP} | dict(training={k: v for k, v in job["training"].items()
                                                                              if k != "seconds_per_iteration"})


@pytest.mark.parametrize("name", ["ODE-LEBM", "Latent ODE (ODE-RNN enc)", "GRU-D"])
def test_same_seed_gives_identical_results(name):
    a, b = (run_method(name, [(0.3, 0)], TINY)[0] for _ in range(2))
    assert untimed(a) == untimed(b)
    c = run_method(name, [(0.3, 1)], TINY)[0]
    assert c["mse"] != a["mse"]


@pytest.mark.parametrize("name", ["ODE-LEBM", "GRU-D"])
def test_resume_reuses_a_finished_job_and_checkpoint(tmp_path, name):
    first = run_method(name, [(0.5, 0)], TINY, run_dir=str(tmp_path))[0]
    key = method(name).key(TINY, test=True, ratio=0.5, seed=0)
    assert (tmp_path / "jobs" / "table1" / f"{key}.json").exists()
    assert (tmp_path / "checkpoints" / "table1" / f"{key}.pt").exists()   # a baseline's run is checkpointed too
    again = run_method(name, [(0.5, 0)], TINY, run_dir=str(tmp_path), resume=True)[0]
    assert again.pop("cached") and not first.pop("cached")
    assert again == first


def test_an_ensemble_killed_between_its_members_scores_resumes_to_the_same_numbers(tmp_path):
    """A kill after the first member's job was written: the resumed run finishes the same ensemble (its checkpoint), not
    a lone second member (which differs in the last bits)."""
    pairs = [(0.1, 0), (0.5, 0)]
    first = run_method("ODE-LEBM", pairs, TINY, run_dir=str(tmp_path))
    key = method("ODE-LEBM").key(TINY, test=True, ratio=0.5, seed=0)
    (tmp_path / "jobs" / "table1" / f"{key}.json").unlink()
    again = run_method("ODE-LEBM", pairs, TINY, run_dir=str(tmp_path), resume=True)
    assert again[0]["cached"] and not again[1]["cached"]
    strip = lambda o: {k: v for k, v in o.items() if k not in STRIP + ("cached",)}
    assert strip(again[1]) == strip(first[1])
