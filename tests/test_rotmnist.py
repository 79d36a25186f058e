"The rotating-MNIST experiment code: the Gaussian-prior ablation, model keys, scores, and the notebook order."
import pytest
import torch
from odelebm.model import ODELEBM
from odelebm.learner import Learner
from odelebm.data_sinusoids import make_sinusoids
from odelebm.rotmnist import RotMNISTSetup, _key, build, batch_mse, nmi, METHODS, LEBM_METHODS
from odelebm.reproduce import experiment_notebooks


def test_gaussian_prior_trains_without_an_ebm_and_resumes_exactly(tmp_path):
    d = make_sinusoids(n=40, n_points=15, seed=3)
    cfg = dict(batch_size=8, posterior_steps=3, progress=False)
    new = lambda: (torch.manual_seed(0), ODELEBM(z0_dim=3, ode_hidden=8, prior="gaussian"))[1]
    straight = Learner(new(), d.train, iterations=5, **cfg); straight.fit()
    assert straight.opt_ebm is None and not list(straight.model.prior.parameters())
    assert set(straight.history.loss_ebm) == {0.0}
    first = Learner(new(), d.train, iterations=5, **cfg); first.fit(3)
    resumed = Learner.load(first.save(tmp_path / "g.pt"), d.train); resumed.fit()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()): assert torch.equal(a, b)
    z = torch.randn(4, 3)
    assert torch.allclose(straight.model.energy(z), z.pow(2).sum(-1) / 2)


def test_unknown_prior_is_refused():
    with pytest.raises(ValueError, match="unknown prior"): ODELEBM(prior="flow")


def test_model_key_tracks_training_fields_only():
    s = RotMNISTSetup()
    assert _key("ODE-LEBM", 0, s) == _key("ODE-LEBM", 0, RotMNISTSetup(test_steps=1000, n_test=7))  # test-time fields
    assert _key("ODE-LEBM", 0, s) != _key("ODE-LEBM", 0, RotMNISTSetup(iterations=10))
    assert _key("ODE-LEBM", 0, s) != _key("ODE-LEBM", 1, s) != _key("MCMC without EBM", 0, s)
    assert _key("Latent ODE", 0, s) == _key("Latent ODE", 0, RotMNISTSetup(iterations=10))   # not a Langevin model
    assert _key("Latent ODE", 0, s) != _key("Latent ODE", 0, RotMNISTSetup(baseline_iterations=10))


def test_every_method_builds_with_the_right_latents():
    s = RotMNISTSetup()
    for m in METHODS: assert isinstance(build(m, s), torch.nn.Module)
    assert build("ODE-LEBM", s).latent_dim == 32 and build("ODE-LEBM without z_s", s).latent_dim == 16
    assert not list(build("MCMC without EBM", s).prior.parameters())
    assert set(LEBM_METHODS) < set(METHODS)


def test_batch_mse_and_nmi():
    x = torch.zeros(50, 45, 1, 28, 28); pred = torch.zeros_like(x); pred[25:, :15] = 0.2
    assert batch_mse(pred, x, 15)[0] == pytest.approx(0.02) and batch_mse(pred, x, 45)[0] == pytest.approx(0.02 / 3)
    torch.manual_seed(0)
    labels = torch.arange(10).repeat(10)
    assert nmi(torch.eye(10)[labels] * 5 + 0.01 * torch.randn(100, 10), labels) > 0.99


def test_notebooks_that_save_models_run_before_those_that_load_them():
    names = [p.stem for p in experiment_notebooks()]
    assert names.index("table2_rotmnist") < names.index("table5_test_steps")
    assert names.index("table2_rotmnist") < names.index("fig4_6_latents")
    assert names.index("table10_11_ablations") < names.index("fig4_6_latents")


def test_baseline_key_tracks_the_likelihood_sigma_it_is_built_with():
    assert _key("Modulated ODE", 0, RotMNISTSetup()) != _key("Modulated ODE", 0, RotMNISTSetup(sigma=0.1))
