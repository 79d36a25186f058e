"Trustworthy runs (issue 12): nothing read from disk runs code, half-written or foreign files are refused with their path."
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
    L, d = _learner(); L.fit()
    errors = []
    def save():
        try:
            for _ in range(10): L.save(tmp_path / "c.pt")
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert not errors
    assert Learner.load(tmp_path / "c.pt", d.train).iteration == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]       # no temporary file left behind


def test_damaged_job_cache_is_a_logged_miss(tmp_path):
    from odelebm.irregular import Table1Setup, run_job, job_key
    tiny = Table1Setup(n_series=40, n_points=20, baseline_iterations=3, batch_size=8, test_steps=3)
    first = run_job("GRU-D", 0.5, 0, tiny, run_dir=str(tmp_path))
    cache = tmp_path / "jobs" / "table1" / f"{job_key('GRU-D', 0.5, 0, tiny)}.json"
    cache.write_bytes(b"")                                          # a full disk left it empty
    with pytest.warns(UserWarning, match="unreadable job cache") as w:
        again = run_job("GRU-D", 0.5, 0, tiny, run_dir=str(tmp_path), resume=True)
    assert str(cache) in str(w[0].message)
    assert again["mse"] == first["mse"] and not again["cached"]
    assert run_job("GRU-D", 0.5, 0, tiny, run_dir=str(tmp_path), resume=True)["cached"]   # rewritten, whole


def test_flipped_bit_in_a_trained_model_is_refused(tmp_path):
    from odelebm.rotmnist import RotMNISTSetup, train, load_model, model_path
    s = RotMNISTSetup(n_train=8, n_test=4, baseline_iterations=1, batch_size=4, conv_channels=4, z0_dim=2, static_dim=2)
    train("Latent ODE", 0, s, tmp_path)
    assert load_model("Latent ODE", 0, s, tmp_path, train_if_missing=False)[1]["sha256"]
    p = model_path("Latent ODE", 0, s, tmp_path)
    raw = bytearray(p.read_bytes()); raw[len(raw) // 2] ^= 0x01; p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the SHA-256") as e: load_model("Latent ODE", 0, s, tmp_path, train_if_missing=False)
    assert str(p) in str(e.value)
