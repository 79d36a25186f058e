"Baselines of Table 1: bad input, reproducibility, and an encoder that never reads unobserved values."
import pytest
import torch
from odelebm.baselines import LatentODE, RNNVAE, GRUD, fit_baseline, baseline_config
from odelebm.learner import FitConfig
from odelebm.data_sinusoids import make_sinusoids


def test_wrong_obs_dim_is_a_clear_value_error():
    t, x = torch.linspace(0, 1, 6), torch.randn(2, 6, 2)
    for model in (LatentODE(1, ode_hidden=8), RNNVAE(1), GRUD(1, hidden=4)):
        with pytest.raises(ValueError, match=r"expects \(1,\)"):
            model.predict(x, t)
    d = make_sinusoids(n=10, n_points=6)
    with pytest.raises(ValueError, match=r"the model expects \(3,\)"):
        fit_baseline(GRUD(3), d.train, iterations=1, progress=False)


@pytest.mark.parametrize("make", [lambda: LatentODE(1, encoder="odernn", ode_hidden=16, rec_hidden=8),
                                  lambda: GRUD(1, hidden=8)], ids=["latent_ode_odernn", "grud"])
def test_same_seed_gives_identical_training(make):
    d = make_sinusoids(n=40, n_points=12, seed=4)
    cfg = baseline_config(iterations=4, batch_size=10, lr_gen=1e-2, obs_ratio=0.5, seed=3, progress=False)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = make()
        torch.manual_seed(123 + len(runs))  # the global state before fitting must not matter
        runs.append((model, fit_baseline(model, d.train, cfg)))
    (a, ha), (b, hb) = runs
    assert ha.loss == hb.loss
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), k


def test_odernn_posterior_ignores_unobserved_values():
    torch.manual_seed(0)
    model = LatentODE(1, latent_dim=4, encoder="odernn", rec_hidden=8, ode_hidden=16)
    t, x = torch.linspace(0, 3, 20), torch.randn(5, 20, 1)
    mask = torch.rand(5, 20) < 0.3
    mask[:, 0] = True
    mean, log_std = model.encode(x, t, mask)
    for junk in (torch.full_like(x, float("nan")), 1e3 * torch.randn_like(x)):
        m2, s2 = model.encode(torch.where(mask[..., None], x, junk), t, mask)
        assert torch.equal(mean, m2) and torch.equal(log_std, s2)
    x[~mask] = float("nan")
    assert torch.isfinite(model.predict(x, t, mask)).all()


def test_a_runaway_prior_chain_of_the_ebm_prior_vae_sits_out_the_ebm_term():
    """EBM prior without MCMC: one prior chain running away is dropped from the EBM term and counted, not a dead
    training run (it ended Table 11's seed 2)."""
    from odelebm.baselines import ebm_vae_terms
    from odelebm.langevin import LangevinDivergence
    from odelebm.prior import EBMPrior
    torch.manual_seed(0)
    prior, B, D = EBMPrior(4, hidden=8), 6, 4
    mean, log_std, z, ll = torch.zeros(B, D), torch.zeros(B, D), torch.randn(B, D), torch.zeros(B)
    plain = ebm_vae_terms(prior, mean, log_std, z, ll, 1.0, 10, 0.1)
    assert plain["dropped_prior"] == 0
    base = prior.log_density
    # chains < first are driven away
    push = lambda first: (lambda zz: base(zz) + 1e4 * zz[:, 0] * (torch.arange(len(zz)) < first))
    prior.log_density = push(1)
    t = ebm_vae_terms(prior, mean, log_std, z, ll, 1.0, 10, 0.1)
    assert t["dropped_prior"] == 1 and torch.isfinite(t["ebm"])
    prior.log_density = push(B)
    with pytest.raises(LangevinDivergence, match="every prior chain"):
        ebm_vae_terms(prior, mean, log_std, z, ll, 1.0, 10, 0.1)
