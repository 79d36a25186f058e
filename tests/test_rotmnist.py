"The rotating-MNIST experiment code: the Gaussian-prior ablation, model keys, scores, and the notebook order."
import pytest
import torch
from odelebm.model import ODELEBM
from odelebm.learner import Learner
from odelebm.data_sinusoids import make_sinusoids
from odelebm.experiments.recipes import recipe, override
from odelebm.experiments.methods import method, LANGEVIN
from odelebm.experiments.rotmnist import batch_mse, nmi, METHODS
from odelebm.experiments.profiles import REQUIRES
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


def _key(name, seed, r): return method(name).key(r, seed=seed)

def test_model_key_tracks_training_fields_only():
    s = recipe("rotmnist")
    assert _key("ODE-LEBM", 0, s) == _key("ODE-LEBM", 0, override(s, {"test.steps": 1000}))   # test-time fields
    assert _key("ODE-LEBM", 0, s) != _key("ODE-LEBM", 0, override(s, {"fit.iterations": 10}))
    assert _key("ODE-LEBM", 0, s) != _key("ODE-LEBM", 1, s) != _key("MCMC without EBM", 0, s)
    # not a Langevin model
    assert _key("Latent ODE", 0, s) == _key("Latent ODE", 0, override(s, {"fit.iterations": 10}))
    assert _key("Latent ODE", 0, s) != _key("Latent ODE", 0, override(s, {"baseline.iterations": 10}))


def test_every_method_builds_with_the_right_latents():
    s = recipe("rotmnist")
    for m in METHODS: assert isinstance(method(m).build(s), torch.nn.Module)
    assert method("ODE-LEBM").build(s).latent_dim == 32 and method("ODE-LEBM without z_s").build(s).latent_dim == 16
    assert not list(method("MCMC without EBM").build(s).prior.parameters())
    assert [m for m in METHODS if method(m).kind is LANGEVIN] == ["ODE-LEBM", "ODE-LEBM without z_s",
                                                                  "MCMC without EBM"]


def test_batch_mse_and_nmi():
    x = torch.zeros(50, 45, 1, 28, 28); pred = torch.zeros_like(x); pred[25:, :15] = 0.2
    assert batch_mse(pred, x, 15)[0] == pytest.approx(0.02) and batch_mse(pred, x, 45)[0] == pytest.approx(0.02 / 3)
    torch.manual_seed(0)
    labels = torch.arange(10).repeat(10)
    assert nmi(torch.eye(10)[labels] * 5 + 0.01 * torch.randn(100, 10), labels) > 0.99


def test_notebooks_that_save_models_run_before_those_that_load_them():
    names = [p.stem for p in experiment_notebooks()]
    assert names.index("table2_rotmnist") < names.index("table5_test_steps")
    assert (names.index("table2_rotmnist") < names.index("fig4_6_latents")
            and names.index("table2_rotmnist") < names.index("table10_11_ablations"))
    assert all(names.index(r) < names.index(n) for n, rs in REQUIRES.items() for r in rs)


def test_baseline_key_tracks_the_likelihood_sigma_it_is_built_with():
    assert _key("Modulated ODE", 0, recipe("rotmnist")) != _key("Modulated ODE", 0,
                                                                recipe("rotmnist", "cpu", {"model.sigma": 0.1}))
