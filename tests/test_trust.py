"""Trustworthy runs (issue 12): nothing read from disk runs code, half-written or foreign files are refused with their
path."""
import os, pickle, subprocess, sys, threading
from pathlib import Path
import pytest
import torch
from odelebm.data_sinusoids import make_sinusoids
from odelebm.learner import Learner
from odelebm.model import ODELEBM

CFG = dict(iterations=2, batch_size=8, prior_steps=2, posterior_steps=2, progress=False)


def _learner(n=40, seed=0):
    d = make_sinusoids(n=n, n_points=10, seed=seed)
    torch.manual_seed(0)
    return Learner(ODELEBM(z0_dim=3, ode_hidden=8), d.train, **CFG), d


class Payload:
    "Unpickling this runs a command: what a planted checkpoint would do."
    def __reduce__(self): return (os.system, ("touch PWNED",))


def test_checkpoint_with_planted_code_is_refused(tmp_path, monkeypatch):
    L, d = _learner(); L.fit()
    state = L.state_dict(); state["extra"] = Payload()
    torch.save(state, tmp_path / "evil.pt")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="refused to load") as e: Learner.load(tmp_path / "evil.pt", d.train)
    assert str(tmp_path / "evil.pt") in str(e.value)
    assert not (tmp_path / "PWNED").exists()                     # the payload never ran


def test_damaged_checkpoint_names_its_path(tmp_path):
    L, d = _learner(); L.fit()
    p = L.save(tmp_path / "c.pt")
    p.write_bytes(p.read_bytes()[:500])                           # truncated by a full disk
    # lost its trailer: torch's error
    with pytest.raises(ValueError, match="unreadable checkpoint") as e: Learner.load(p, d.train)
    assert str(p) in str(e.value)


def test_checkpoint_refuses_other_data(tmp_path):
    L, d = _learner(n=40); L.fit()
    p = L.save(tmp_path / "c.pt")
    other = make_sinusoids(n=40, n_points=10, seed=7).train     # same sizes, other series
    with pytest.raises(ValueError, match="trained on other data"): Learner.load(p, other)
    fewer = d.train[:10]
    with pytest.raises(ValueError, match="32 sequences x 10 times"): Learner.load(p, fewer)
    assert Learner.load(p, d.train).iteration == 2                # its own data loads


def test_concurrent_saves_never_collide(tmp_path):
    """Four writers of one path and a reader beside them: every read sees one whole checkpoint (CI once caught the
    digest of one writer beside the file of another)."""
    L, d = _learner(); L.fit()
    p, errors, reads = tmp_path / "c.pt", [], []
    L.save(p)
    def save():
        try:
            for _ in range(25): L.save(p)
        except Exception as e: errors.append(e)
    def read():
        try:
            while any(t.is_alive() for t in writers): reads.append(Learner.load(p, d.train).iteration)
        except Exception as e: errors.append(e)
    writers = [threading.Thread(target=save) for _ in range(4)]
    for t in writers: t.start()
    reader = threading.Thread(target=read); reader.start()
    for t in writers + [reader]: t.join()
    assert not errors, errors
    assert reads and set(reads) == {2}
    assert [q.name for q in tmp_path.iterdir()] == ["c.pt"]       # one file, no temporary file left behind


def test_checkpoint_with_a_digest_file_beside_it_still_loads(tmp_path):
    "Checkpoints written before the trailer (plain torch.save + `c.pt.sha256`) load, and their digest is still checked."
    import hashlib
    L, d = _learner(); L.fit()
    p = tmp_path / "c.pt"
    torch.save(L.state_dict(), p)
    (tmp_path / "c.pt.sha256").write_text(hashlib.sha256(p.read_bytes()).hexdigest())
    assert Learner.load(p, d.train).iteration == 2
    (tmp_path / "c.pt.sha256").write_text("0" * 64)
    with pytest.raises(ValueError, match="c.pt.sha256 when it was written"): Learner.load(p, d.train)


def test_damaged_job_cache_is_a_logged_miss(tmp_path):
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.methods import method
    from odelebm.experiments.irregular import run_method
    tiny = recipe("table1", "smoke", {"data.n_series": 40, "data.n_points": 20, "baseline.iterations": 3,
                                      "baseline.batch_size": 8})
    first = run_method("GRU-D", [(0.5, 0)], tiny, run_dir=str(tmp_path))[0]
    cache = tmp_path / "jobs" / "table1" / f"{method('GRU-D').key(tiny, test=True, ratio=0.5, seed=0)}.json"
    cache.write_bytes(b"")                                          # a full disk left it empty
    with pytest.warns(UserWarning, match="unreadable job cache") as w:
        again = run_method("GRU-D", [(0.5, 0)], tiny, run_dir=str(tmp_path), resume=True)[0]
    assert str(cache) in str(w[0].message)
    assert again["mse"] == first["mse"] and not again["cached"]
    assert run_method("GRU-D", [(0.5, 0)], tiny, run_dir=str(tmp_path), resume=True)[0]["cached"]   # rewritten, whole


def test_flipped_bit_in_a_trained_model_is_refused(tmp_path):
    from odelebm.experiments.rotmnist import train_all, load_model
    s = _tiny_rotmnist()
    [info] = train_all(["Latent ODE"], 1, s, tmp_path)
    assert load_model("Latent ODE", 0, s, tmp_path)[1]["sha256"]
    p = tmp_path / info["file"]
    raw = bytearray(p.read_bytes()); raw[len(raw) // 2] ^= 0x01; p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the SHA-256") as e: load_model("Latent ODE", 0, s, tmp_path)
    assert str(p) in str(e.value)


def _tiny_rotmnist():
    from odelebm.experiments.recipes import recipe
    return recipe("rotmnist", "smoke", {"data.n_train": 8, "data.n_test": 4, "baseline.iterations": 1,
                                        "baseline.batch_size": 4, "fit.batch_size": 4, "model.conv_channels": 4,
                                        "model.z0_dim": 2, "model.static_dim": 2})


def _two_d(n=50):
    torch.manual_seed(0)
    t = torch.linspace(0, 5, 60)
    ph = torch.rand(n, 1) * 6
    from odelebm.sequences import SequenceData
    return SequenceData(t, torch.stack([3 * torch.sin(t + ph), 3 * torch.cos(1.5 * t + ph)], -1))


def test_runaway_chain_that_stays_finite_is_reported():
    "An untrained model, the README's step on another 2-D family: chains reached |z| ~ 1e15 and MSE ~ 1e28 silently."
    from odelebm.learner import predict
    from odelebm.langevin import LangevinDivergence
    d = _two_d()
    model = ODELEBM(obs_shape=(2,), z0_dim=4, ode_hidden=32, sigma=0.1, solver="euler_grid")
    with pytest.raises(LangevinDivergence, match="runaway latent|non-finite") as e:
        predict(model, d.x, d.t, n_steps=20, step_size=0.05, seed=0)
    assert "inf" not in str(e.value).replace("beyond float range", "")
    assert e.value.chains


@pytest.mark.trains
def test_runaway_test_chains_are_restarted_then_predicted_by_the_mean_and_counted():
    """The tables' policy (`on_runaway="restart"`): where `predict` would raise, every runaway chain runs again at half
    the step; a series whose chain runs away again is predicted by the mean of its observed points, counted, warned."""
    from odelebm.learner import predict
    d = _two_d()
    torch.manual_seed(0)
    model = ODELEBM(obs_shape=(2,), z0_dim=4, ode_hidden=32, sigma=0.1, solver="euler_grid")
    p = predict(model, d.x, d.t, n_steps=20, step_size=0.05, seed=0, on_runaway="restart")   # half the step suffices
    assert p.restarted > 0 and not p.fallback.any() and torch.isfinite(p.mean).all()
    with pytest.warns(UserWarning, match="50 of 50 series: every posterior chain ran away"):
        p = predict(model, d.x, d.t, n_steps=20, step_size=1.0, seed=0, on_runaway="restart")
    assert p.restarted == 50 and p.fallback.all()
    assert torch.allclose(p.mean, d.x.mean(1, keepdim=True).expand_as(p.mean), atol=1e-6)


def test_training_leaves_runaway_chains_out_and_says_so():
    d = _two_d()
    torch.manual_seed(0)
    model = ODELEBM(obs_shape=(2,), z0_dim=4, ode_hidden=32, sigma=0.1, solver="euler_grid")
    L = Learner(model, d, iterations=3, batch_size=25, prior_steps=2, posterior_steps=20, posterior_step_size=0.05,
                progress=False)
    L.fit()
    assert sum(L.history.dropped) > 0 and all(torch.isfinite(torch.tensor(L.history.nll)))
    assert max(L.history.mse) < 1e4                                    # trained on sane samples only
    L = Learner(model, d, iterations=1, batch_size=25, prior_steps=2, posterior_steps=20, posterior_step_size=1.0,
                progress=False)
    from odelebm.langevin import LangevinDivergence
    with pytest.raises(LangevinDivergence, match="every posterior chain"): L.fit()


def test_predict_checks_its_arguments():
    from odelebm.learner import predict
    d = make_sinusoids(n=10, n_points=10, seed=0)
    model = ODELEBM(z0_dim=3, ode_hidden=8)
    two = torch.cat([d.test.x, d.test.x], -1)
    with pytest.raises(ValueError, match=r"shape \(2,\), the model expects \(1,\)"): predict(model, two, d.test.t)
    for kw, msg in ((dict(batch_size=0), "batch_size"), (dict(n_samples=0), "n_samples"), (dict(n_steps=-1), "n_steps"),
                    (dict(step_size=-0.1), "step_size")):
        with pytest.raises(ValueError, match=msg): predict(model, d.test.x, d.test.t, **kw)


@pytest.mark.parametrize("kw", [dict(posterior_step_size=-0.1), dict(prior_step_size=0.0), dict(lr_gen=0),
                                dict(lr_decay=1.5), dict(posterior_steps=-1), dict(betas=(0.5, 1.2))])
def test_fit_config_refuses_nonsense(kw):
    from odelebm.learner import FitConfig
    with pytest.raises(ValueError, match=list(kw)[0]): FitConfig(**kw)


@pytest.mark.parametrize("bad", [0.3, 2.0, float("nan")])
def test_mask_must_be_boolean_or_zero_one(bad):
    from odelebm.sequences import SequenceData
    m = torch.ones(2, 3); m[0, 1] = bad
    with pytest.raises(ValueError, match="mask must be boolean"):
        SequenceData(torch.arange(3.), torch.zeros(2, 3, 1), m)
    m[0, 1] = 0
    assert SequenceData(torch.arange(3.), torch.zeros(2, 3, 1), m).mask.dtype == torch.bool


def test_epoch_second_stamps_are_shifted_not_merged():
    from odelebm.sequences import SequenceData
    t = 1.7e9 + 60 * torch.arange(10, dtype=torch.float64)
    d = SequenceData.from_series([(t, torch.zeros(10, 1)), (t[::3] + 30, torch.ones(4, 1))])
    assert d.t_offset == 1.7e9 and d.t[0] == 0 and len(d.t) == 14 and d.t[1] == 30
    with pytest.raises(ValueError, match="distinct but equal in torch.float32"): SequenceData(t, torch.zeros(1, 10, 1))


def test_absolute_times_are_not_one_giant_step():
    torch.manual_seed(0)
    m = ODELEBM(z0_dim=4, ode_hidden=16, solver="euler_grid")
    z, t = torch.randn(3, 4), torch.linspace(0, 5, 100)
    fine = torch.cat([torch.arange(0, 3, 5 / 99), t + 3])
    shifted = m.trajectory(z, t + 3)
    assert torch.allclose(shifted, m.trajectory(z, fine)[:, -100:], atol=0.05)   # the gap is sub-stepped
    with pytest.raises(ValueError, match="absolute stamps"): m.trajectory(z, t + 1958)


def test_flipped_bit_in_a_checkpoint_is_refused_and_the_pipeline_starts_over(tmp_path):
    L, d = _learner(); L.fit()
    p = L.save(tmp_path / "c.pt")
    raw = p.read_bytes()
    assert (raw[-79:-64] == b"ODELEBM-SHA256:"
            and raw[-64:].decode() == __import__("hashlib").sha256(raw[:-79]).hexdigest())
    assert torch.load(p, weights_only=True)["iteration"] == 2    # still an ordinary torch file
    raw = bytearray(p.read_bytes()); raw[len(raw) // 2] ^= 0x01; p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the SHA-256") as e: Learner.load(p, d.train)
    assert str(p) in str(e.value)
    with pytest.warns(UserWarning, match="training from the start"): assert Learner.resume(p, d.train) is None


def test_results_with_non_finite_values_or_damage_are_refused_naming_the_file(tmp_path):
    import json
    from odelebm.results import load_results
    (tmp_path / "results").mkdir()
    f = tmp_path / "results" / "x.json"
    f.write_text(json.dumps(
        dict(meta={}, records=[dict(table="t", method="m", column="c", seed=0, value=float("nan"))], figures=[])))
    with pytest.raises(ValueError, match="non-finite") as e: load_results(tmp_path)
    assert str(f) in str(e.value)
    f.write_text("")
    with pytest.raises(ValueError, match="unreadable results file") as e: load_results(tmp_path)
    assert str(f) in str(e.value)


def test_damaged_rotating_mnist_cache_and_model_record(tmp_path):
    from odelebm.data_mnist import make_rotating_mnist
    from odelebm.experiments.rotmnist import train_model
    small = dict(n_train=4, n_val=2, n_test=2, t_train=3, t_test=4, cache_dir=tmp_path / "cache")
    a = make_rotating_mnist(**small)
    [f] = (tmp_path / "cache").glob("*.pt"); f.write_bytes(f.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable rotating-MNIST cache"): b = make_rotating_mnist(**small)
    assert torch.equal(a.train.x, b.train.x)
    s = _tiny_rotmnist()
    info = (tmp_path / train_model("Latent ODE", 0, s, tmp_path)["file"]).with_suffix(".json"); info.write_text("{")
    with pytest.warns(UserWarning, match="unreadable training record"):
        assert train_model("Latent ODE", 0, s, tmp_path, resume=True)["cached"] is False   # a miss: trained again


def test_staged_checkpoint_from_before_runaway_tracking_resumes(tmp_path):
    d = make_sinusoids(n=60, n_points=10, seed=0)
    torch.manual_seed(0)
    L = Learner(ODELEBM(z0_dim=3, ode_hidden=8), d.train, iterations=3, batch_size=8, prior_steps=2, posterior_steps=4,
                chain_stages=2, progress=False)
    L.fit(2)
    state = L.state_dict(); del state["stages"]["ok"]; del state["data"]           # the format of an older release:
    # one config, one generator
    state["fit_config"], state["rng_batch"] = state.pop("fit_configs")[0], state.pop("batch_gens")[0]
    # with the digest file that release wrote beside it
    torch.save(state, tmp_path / "old.pt")
    (tmp_path / "old.pt.sha256").write_text(
        __import__("hashlib").sha256((tmp_path / "old.pt").read_bytes()).hexdigest())
    R = Learner.load(tmp_path / "old.pt", d.train); R.fit()
    assert R.iteration == 3 and R.chains.stages["ok"].all()
