"Properties of the core library: sampler, energies, training, prediction, checkpoints, bad input."
import math
import pytest
import torch
from odelebm.prior import EBMPrior
from odelebm.langevin import langevin, LangevinDivergence, frozen
from odelebm.dynamics import ODEFunc, solve, GRID_SOLVERS
from odelebm.model import ODELEBM, ModelConfig
from odelebm.sequences import SequenceData
from odelebm.learner import Learner, FitConfig, fit, predict, masked_mse
from odelebm.chains import FreshChains
from odelebm.data_sinusoids import make_sinusoids, make_sine_family, observation_mask
from odelebm.baselines import linear_interpolation

pytestmark = pytest.mark.trains   # must hold on any CPU kernel and thread count: make test-cpus


def test_langevin_reaches_gaussian_mean_and_variance():
    # correlated 2-D Gaussian; tolerance: ~3 standard errors of 4000 chains + the step-size bias (<1%)
    torch.manual_seed(0)
    mu = torch.tensor([2.0, -1.0])
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
    prec = torch.linalg.inv(cov)
    log_pi = lambda z: -0.5 * ((z - mu) @ prec * (z - mu)).sum(-1)
    z = langevin(log_pi, (4000, 2), n_steps=800, step_size=0.2)
    assert torch.allclose(z.mean(0), mu, atol=0.05)
    assert torch.allclose(torch.cov(z.T), cov, atol=0.06)


def test_prior_langevin_samples_the_reference_gaussian_when_f_is_zero():
    torch.manual_seed(1)
    prior = EBMPrior(3, hidden=8, sigma_z=0.5)
    for p in prior.net[-1].parameters(): torch.nn.init.zeros_(p)
    z = langevin(prior.log_density, (5000, 3), n_steps=600, step_size=0.05)
    assert z.mean(0).abs().max() < 0.03
    assert torch.allclose(z.var(0), torch.full((3,), 0.25), rtol=0.08)


def _fd_grad(fn, z, eps=1e-6):
    g = torch.zeros_like(z)
    for j in range(z.shape[1]):
        dz = torch.zeros_like(z); dz[:, j] = eps
        g[:, j] = (fn(z + dz) - fn(z - dz)) / (2 * eps)
    return g


@pytest.mark.parametrize("kw", [dict(), dict(dynamic_dim=2), dict(static_dim=2, emission_layers=1)])
def test_energy_gradients_match_finite_differences(kw):
    torch.manual_seed(0)
    m = ODELEBM(z0_dim=3, ode_hidden=16, sigma=0.5, **kw).double()
    t = torch.linspace(0.2, 1.5, 7, dtype=torch.float64)
    x = torch.randn(3, 7, 1, dtype=torch.float64)
    mask = torch.rand(3, 7) < 0.6; mask[:, 0] = True
    z = torch.randn(3, m.latent_dim, dtype=torch.float64)
    with torch.no_grad():
        fd_prior = _fd_grad(m.energy, z)
        fd_post = _fd_grad(lambda v: m.posterior_energy(v, x, t, mask), z)
    assert torch.allclose(m.prior.energy_grad(z), fd_prior, atol=1e-7)
    zz = z.clone().requires_grad_(True)
    g, = torch.autograd.grad(m.posterior_energy(zz, x, t, mask).sum(), zz)
    assert torch.allclose(g, fd_post, atol=1e-6)


def test_posterior_langevin_leaves_parameter_grads_untouched():
    m = ODELEBM(z0_dim=4, ode_hidden=8)
    x = torch.randn(5, 10, 1)
    z = m.sample_posterior(x, torch.linspace(0, 1, 10), torch.ones(5, 10, dtype=torch.bool), n_steps=3)
    assert z.shape == (5, 4) and not z.requires_grad
    assert all(p.grad is None for p in m.parameters())


# --- training: a small family of sine waves (random phase and amplitude, 40 points on [0, 5]) ---------
# the paper's stepping; own-grid models: test_own_series
MODEL = dict(z0_dim=4, ode_hidden=32, sigma=0.1, solver="euler_grid", max_step=None)
TRAIN = dict(batch_size=50, prior_steps=10, posterior_steps=20, posterior_step_size=0.05,
             lr_gen=1e-2, lr_ebm=1e-3, progress=False)


def _recon_mse(model, data, seed=0):
    "Posterior reconstruction MSE of fully observed sequences (from-noise chains, training settings)."
    p = predict(model, data.x, data.t, data.mask, n_steps=TRAIN["posterior_steps"],
                step_size=TRAIN["posterior_step_size"], seed=seed)
    return masked_mse(p.mean, data.x, data.mask).item()


def train_sine_family(seed: int = 0, iterations: int = 300):
    """The sine family's test split, a model trained on its training split from initial weights `seed`, and its
    untrained reconstruction MSE."""
    train, test = make_sine_family()
    torch.manual_seed(seed)
    model = ODELEBM(**MODEL)
    try: before = _recon_mse(model, test)
    except LangevinDivergence: before = math.nan   # an untrained model's chain may run away (seed 1's does)
    fit(model, train, iterations=iterations, **TRAIN)
    return test, model, before


def _thirty_percent(test):
    return observation_mask(len(test), test.x.shape[1], 0.3, seed=0)


def interpolation_mse_of_linear(test) -> float:
    "MSE over the full test series of linear interpolation from 30% of their points (deterministic: 0.066)."
    mask = _thirty_percent(test)
    return masked_mse(linear_interpolation(test.t, test.x, mask), test.x, torch.ones_like(mask)).item()


def interpolation_mse(model, test) -> tuple[float, float]:
    "MSE over the full test series from 30% of their points: the model's (100-step chains) and linear interpolation's."
    mask = _thirty_percent(test)
    p = predict(model, test.x, test.t, mask, n_steps=100, step_size=TRAIN["posterior_step_size"], seed=0)
    assert p.mean.shape == test.x.shape
    return masked_mse(p.mean, test.x, torch.ones_like(mask)).item(), interpolation_mse_of_linear(test)


# One 300-iteration run is chaotic: the last bits that another CPU kernel or thread count rounds differently decide
# whether it learns. From seed 3's initial weights, the AVX2 and AVX-512 kernels of an Intel Xeon on one thread reach an
# interpolation MSE of 0.151 (worse than linear interpolation) and the default kernels 0.0091; from seed 0's, the AVX2
# kernels of an AMD EPYC reconstruct at 0.077 where every other configuration reaches 0.002-0.013; seed 1's training
# runs away at this fixed posterior step on every kernel (benchmarks/results/test_margins_core.md: seeds 0-4 on the
# Xeon, default, AVX2 and AVX-512 kernels on one thread and AVX-512 on two; test_margins_core_amd.md: seeds 0 and 2-5
# on the EPYC, default and AVX2 on one thread). What holds is the median over three seeds that train, a run that ran
# away counting as a failure: 0, 2 and 4, whose medians stay 7.8x or more inside both margins in every configuration.
SEEDS = (0, 2, 4)


@pytest.fixture(scope="module")
def trained() -> dict:
    "seed -> (test split, trained model, untrained reconstruction MSE), or None where training ran away."
    out = {}
    for seed in SEEDS:
        try: out[seed] = train_sine_family(seed)
        except LangevinDivergence: out[seed] = None
    return out


def _median(values) -> float:
    return float(torch.tensor(values, dtype=torch.float64).median())   # the lower median: of 3, the middle value


def test_fit_reconstructs_ten_times_better_than_predicting_zero(trained):
    test = make_sine_family()[1]
    zero = test.x.square().mean().item()   # predicting 0 everywhere: 0.29; an untrained model scores 0.27-0.43
    untrained = [r[2] for r in trained.values() if r is not None and math.isfinite(r[2])]
    after = [_recon_mse(r[1], test) if r is not None else math.inf for r in trained.values()]
    print(f"posterior reconstruction MSE: untrained {untrained} -> trained {after}; predicting zero {zero:.4f}")
    assert untrained and all(b > 0.1 for b in untrained)   # a meaningful starting point, not a blown-up chain
    # measured median of seeds 0, 2, 4: 0.0024-0.0037 over CPUs, kernels and thread counts, 78-120x below predicting
    # zero
    assert _median(after) < zero / 10


def test_predict_interpolates_from_30_percent_of_points(trained):
    test = make_sine_family()[1]
    mse = [interpolation_mse(r[1], r[0])[0] if r is not None else math.inf for r in trained.values()]
    ruler = interpolation_mse_of_linear(test)
    print(f"interpolation MSE on the full series from 30% of the points: {mse}, linear interpolation {ruler:.4f}")
    # measured median of seeds 0, 2, 4: 0.0037-0.0079 over CPUs, kernels and thread counts, 0.06-0.12 of linear
    # interpolation's 0.066
    assert _median(mse) < ruler


def test_resume_equals_uninterrupted_training(tmp_path):
    d = make_sinusoids(n=60, n_points=20, seed=1)
    cfg = dict(batch_size=16, prior_steps=3, posterior_steps=3, obs_ratio=0.5, progress=False)
    def new_model():
        torch.manual_seed(0); return ODELEBM(z0_dim=4, ode_hidden=8, solver="rk4_grid")
    straight = Learner(new_model(), d.train, iterations=7, **cfg); straight.fit()
    first = Learner(new_model(), d.train, iterations=7, checkpoint_every=4, checkpoint_path=str(tmp_path / "ck.pt"),
                    **cfg)
    first.fit(4)
    torch.manual_seed(1234)  # whatever happens in between must not matter
    resumed = Learner.load(tmp_path / "ck.pt", d.train)
    assert resumed.iteration == 4
    resumed.fit()
    assert resumed.iteration == 7
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert straight.history.nll == resumed.history.nll


def test_checkpoint_round_trip(tmp_path):
    d = make_sinusoids(n=20, n_points=10, seed=2)
    torch.manual_seed(0)
    L = Learner(ODELEBM(z0_dim=3, ode_hidden=8, static_dim=2), d.train, iterations=2, batch_size=4,
                prior_steps=2, posterior_steps=2, progress=False)
    L.fit()
    L2 = Learner.load(L.save(tmp_path / "m.pt"), d.train)
    z = torch.randn(3, 5)
    assert torch.equal(L.model.decode(z, d.train.t), L2.model.decode(z, d.train.t))
    assert L2.model.config == L.model.config and L2.history == L.history


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("t, x, mask, match", [
    ([0., 1., 1., 2.], torch.zeros(2, 4, 1), None, "strictly increasing"),
    ([0., 2., 1.], torch.zeros(2, 3, 1), None, "strictly increasing"),
    ([0., 1., 2.], torch.zeros(2, 4, 1), None, "must agree"),
    ([0., 1., 2.], torch.zeros(2, 3), None, r"shape \(N, T, \*obs_shape\)"),
    ([0., 1., 2.], torch.tensor([[[0.], [float("nan")], [1.]]]), None, "NaN"),
    ([0., 1., 2.], torch.zeros(2, 3, 1), torch.tensor([[1, 0, 1], [0, 0, 0]]), "no observed point"),
    ([0., 1., 2.], torch.zeros(2, 3, 1), torch.ones(2, 2), "mask shape"),
])
def test_bad_input_raises_clear_error(t, x, mask, match):
    with pytest.raises(ValueError, match=match):
        SequenceData(torch.tensor(t), x, mask)


def test_nan_where_unobserved_is_allowed():
    x = torch.tensor([[[0.], [float("nan")], [1.]]])
    d = SequenceData(torch.tensor([0., 1., 2.]), x, torch.tensor([[True, False, True]]))
    assert d.mask.sum() == 2


def test_predict_rejects_bad_query_and_model_rejects_wrong_obs_shape():
    m = ODELEBM(z0_dim=3, ode_hidden=8)
    # any order and repeats are fine (query_grid); NaN or 2-D are not
    for bad in (torch.tensor([3., float("nan")]), torch.zeros(2, 2)):
        with pytest.raises(ValueError, match="t_query"):
            predict(m, torch.zeros(1, 3, 1), torch.tensor([0., 1., 2.]), t_query=bad)
    with pytest.raises(ValueError, match="model expects"):
        Learner(m, SequenceData(torch.arange(3.), torch.zeros(2, 3, 2)), progress=False)
    with pytest.raises(ValueError, match="unknown solver"):
        ODELEBM(solver="rk5").decode(torch.zeros(1, 10), torch.arange(3.))


def test_diverging_posterior_chain_is_reported():
    torch.manual_seed(0)
    m = ODELEBM(z0_dim=3, ode_hidden=8, sigma=1e-3)
    x = torch.full((4, 10, 1), 50.0)
    with pytest.raises(LangevinDivergence, match="step"):
        m.sample_posterior(x, torch.linspace(0, 1, 10), torch.ones(4, 10, dtype=torch.bool), n_steps=50, step_size=1.0)


# --- persistent posterior chains -------------------------------------------------------------------
def _persistent_learner(**kw):
    d = make_sinusoids(n=60, n_points=20, seed=1)
    torch.manual_seed(0)
    model = ODELEBM(z0_dim=4, ode_hidden=8, solver="euler_grid", max_step=None)   # chain bookkeeping on the full grid
    cfg = dict(batch_size=16, prior_steps=3, posterior_steps=4, persistent_steps=2, obs_ratio=0.5, progress=False)
    return d, Learner(model, d.train, **{**cfg, **kw})


def test_persistent_chains_return_to_the_same_state_after_resume(tmp_path):
    d, straight = _persistent_learner(persistent=True, iterations=8)
    straight.fit()
    _, first = _persistent_learner(persistent=True, iterations=8, checkpoint_every=5,
                                   checkpoint_path=str(tmp_path / "p.pt"))
    first.fit(5)
    resumed = Learner.load(tmp_path / "p.pt", d.train)
    assert torch.equal(resumed.chains.z, first.chains.z) and torch.equal(resumed.chains.visited, first.chains.visited)
    assert resumed.chains.visited.any() and not resumed.chains.visited.all()
    resumed.fit()
    assert torch.equal(resumed.chains.z, straight.chains.z)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()): assert torch.equal(a, b)


def test_persistence_off_is_exactly_the_from_noise_sampler():
    d, L = _persistent_learner(persistent=False)
    gen, noise = L.batch_gen.get_state(), L.noise_gen.get_state()
    b = L.chains.draw(L)
    L.batch_gen.set_state(gen); L.noise_gen.set_state(noise)
    idx, t, x, mask = L.sample_batch()
    ref = L.model.sample_posterior(x, t, mask, L.cfg.posterior_steps, L.cfg.posterior_step_size, generator=L.noise_gen)
    assert torch.equal(b.z, ref) and torch.equal(b.idx, idx) and type(L.chains) is FreshChains and b.ok.all()
    # and a persistent learner's first visit is that same from-noise chain
    _, P = _persistent_learner(persistent=True); P.step()   # (each learner draws from generators of its own,
    _, Q = _persistent_learner(persistent=False); Q.step()  #  seeded from its config)
    assert P.history.nll == Q.history.nll
    # on a revisit the stored chain is resumed: with 0 revisit steps it comes back unchanged
    _, R = _persistent_learner(persistent=True, persistent_steps=0)
    gen = R.batch_gen.get_state()
    first = R.chains.draw(R)
    R.batch_gen.set_state(gen)   # the same batch again: a revisit
    assert torch.equal(R.chains.draw(R).z, first.z) and R.chains.visited[0, first.idx].all()


def test_staged_chains_are_from_noise_chains_pipelined_over_iterations():
    # K = 4 posterior steps over S = 4 stages, batch 8: the first iteration fills the pipeline (cohorts 3, 2 and 1 step
    # deep), then every iteration is one call of K/S = 1 step on the four cohorts in flight, and the generator and
    # the EBM learn from the cohort that has completed exactly K steps from noise
    d, L = _persistent_learner(chain_stages=4, batch_size=8, posterior_steps=4, iterations=10)
    calls, sample = [], L.model.sample_posterior
    def spy(x, t, mask, n_steps, step_size, init=None, **kw):
        calls.append((len(x), n_steps)); return sample(x, t, mask, n_steps, step_size, init=init, **kw)
    L.model.sample_posterior = spy
    L.fit(1)
    assert calls == [(8, 3), (8, 2), (8, 1), (32, 1)]
    S = L.chains.stages
    assert sorted(S["age"].flatten().tolist()) == [1] * 8 + [2] * 8 + [3] * 8
    assert len(set(S["idx"].flatten().tolist())) == 24   # a sequence is in at most one cohort
    deepest = set(S["idx"][S["age"] == 3].tolist())
    calls.clear()
    b = L.chains.draw(L)
    assert calls == [(32, 1)] and set(b.idx.tolist()) == deepest and len(b.z) == len(b.x) == 8
    assert not torch.isin(b.idx, L.chains.stages["idx"]).any()   # retired; a later admission restarts it from noise
    assert torch.equal(b.x, d.train.x[b.idx].nan_to_num())
    with pytest.raises(ValueError, match="must divide"): FitConfig(chain_stages=3, batch_size=16, posterior_steps=4)
    with pytest.raises(ValueError, match="not both"): FitConfig(chain_stages=2, persistent=True)
    with pytest.raises(ValueError, match="in flight"):
        _persistent_learner(chain_stages=4, batch_size=16, posterior_steps=4)


def test_staged_chains_resume_exactly(tmp_path):
    d, straight = _persistent_learner(chain_stages=2, iterations=7)
    straight.fit()
    _, first = _persistent_learner(chain_stages=2, iterations=7, checkpoint_every=3,
                                   checkpoint_path=str(tmp_path / "s.pt"))
    first.fit(3)
    resumed = Learner.load(tmp_path / "s.pt", d.train)
    assert (torch.equal(resumed.chains.stages["z"], first.chains.stages["z"])
            and torch.equal(resumed.chains.stages["idx"], first.chains.stages["idx"]))
    resumed.fit()
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()): assert torch.equal(a, b)
    assert straight.history.nll == resumed.history.nll


# --- the fused grid solver -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(GRID_SOLVERS))
def test_fused_solver_gradients_equal_the_autograd_loop(method):
    torch.manual_seed(0)
    f = ODEFunc(3, 16, n_layers=2, act="tanh", dynamic_dim=1).double()
    z0 = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.1, 0.35, 0.4, 1.0], dtype=torch.float64)   # irregular grid
    w = torch.randn(5, 5, 4, dtype=torch.float64)
    grads = [torch.autograd.grad((solve(f, z0, t, method, 2, fused=fused) * w).sum(), [z0, *f.parameters()])
             for fused in (False, True)]
    for a, b in zip(*grads): assert torch.allclose(a, b, atol=1e-12)
    # and against finite differences of the fused solve itself
    assert torch.autograd.gradcheck(lambda z: solve(f, z, t, method, fused=True), z0)


@pytest.mark.parametrize("layers,act", [(0, "tanh"), (1, "relu"), (3, "softplus")])
def test_fused_solver_handles_any_depth(layers, act):
    torch.manual_seed(0)
    f = ODEFunc(3, 6, n_layers=layers, act=act).double()
    z0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 1, 6, dtype=torch.float64)
    for method in ("euler_grid", "rk4_grid"):
        ref, out = solve(f, z0, t, method, fused=False), solve(f, z0, t, method, fused=True)
        g = [torch.autograd.grad(y.square().sum(), [z0, *f.parameters()]) for y in (ref, out)]
        assert torch.allclose(ref, out, atol=1e-12) and all(torch.allclose(a, b, atol=1e-12) for a, b in zip(*g))


def test_posterior_step_is_the_same_with_either_solver():
    torch.manual_seed(0)
    d = make_sinusoids(n=20, n_points=15, seed=0)
    m = ODELEBM(z0_dim=4, ode_hidden=16, solver="euler_grid").double()
    x, t, mask = d.train.x.double(), d.train.t.double(), d.train.mask
    z = torch.randn(len(x), 4, dtype=torch.float64)
    out = []
    for fused in (False, True):
        m.config.fused_solver = fused
        torch.manual_seed(1); out.append(m.sample_posterior(x, t, mask, n_steps=5, step_size=0.05, init=z))
    assert torch.allclose(out[0], out[1], atol=1e-10)
    assert all(p.requires_grad for p in m.parameters())   # the samplers freeze the weights only while they run
    with pytest.raises(ValueError, match="fused=True needs"): solve(ODEFunc(2, 4, act="gelu"), z[:, :2], t, fused=True)
