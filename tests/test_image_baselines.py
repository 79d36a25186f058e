"""Image baselines (rotating MNIST): shapes, MoNODE's invariant content code, training, the EBM stop-gradients, bad
input."""
import pytest
import torch
from odelebm.image_baselines import (ConvEncoder, ImageLatentODE, MoNODE, EBMEncoderODE, rotating_hands, FRAME)
from odelebm.baselines import LatentODE, GRUD, fit_baseline, baseline_config
from odelebm.learner import FitConfig
from odelebm.data_sinusoids import make_sinusoids

MODELS = {"latent_ode": ImageLatentODE, "monode": MoNODE, "ebm_encoder": EBMEncoderODE}


@pytest.fixture(scope="module")
def data():
    return rotating_hands(12, seed=3)


@pytest.mark.parametrize("name", list(MODELS))
def test_output_shapes(name, data):
    torch.manual_seed(0)
    model = MODELS[name]()
    x, t = data.x[:4], data.t
    first5 = (torch.arange(16) < 5).expand(4, 16)
    assert model.obs_shape == FRAME
    assert model.predict(x, t, first5).shape == (4, 16, 1, 28, 28)
    assert model.predict(x, t, first5, torch.arange(45) * 0.1).shape == (4, 45, 1, 28, 28)
    p = model.predict(x, t)
    assert 0 <= p.min() and p.max() <= 1  # Gaussian mean sigmoid(a)
    code = model.encode(x, t, first5)
    assert code["z0"].shape == (4, 16)
    assert ("z_s" in code) == (name != "latent_ode")
    if "z_s" in code: assert code["z_s"].shape == (4, 16)
    loss, stats = model.loss(x, t, torch.ones(4, 16, dtype=torch.bool), kl_weight=0.5)
    assert loss.ndim == 0 and {"loss", "mse"} <= set(stats)
    assert ConvEncoder(32)(x).shape == (4, 16, 32)


@pytest.mark.parametrize("name", list(MODELS))
def test_unobserved_frames_are_never_read(name, data):
    torch.manual_seed(0)
    model = MODELS[name]()
    x, t = data.x[:3], data.t
    mask = torch.rand(3, 16) < 0.4
    mask[:, 2] = True
    junk = torch.where(mask[..., None, None, None], x, float("nan"))
    assert torch.equal(model.predict(x, t, mask), model.predict(junk, t, mask))
    model.t_in = 5  # the encoder window: frames after the fifth are ignored even when observed
    full = torch.ones(3, 16, dtype=torch.bool)
    assert torch.equal(model.predict(x, t, full), model.predict(x, t, (torch.arange(16) < 5).expand(3, 16)))


def test_monode_content_code_is_order_and_time_invariant(data):
    torch.manual_seed(0)
    model = MoNODE()
    x, t = data.x[:5], data.t
    z_s = model.encode(x, t)["z_s"]
    for perm in (torch.randperm(16), torch.arange(15, -1, -1)):
        assert torch.allclose(model.encode(x[:, perm], t)["z_s"], z_s, atol=1e-6)
    assert torch.allclose(model.encode(x, 2.5 * t + 3.0)["z_s"], z_s, atol=1e-6)  # blind to time stamps
    assert not torch.allclose(model.encode(x[:, torch.randperm(16)], t)["z0"], model.encode(x, t)["z0"], atol=1e-4)
    # the same code reaches the decoder at every time: decoding with z_s swapped between sequences changes frames
    z0 = model.encode(x, t)["z0"]
    a = model.decode(z0, z_s, t[0], t)
    b = model.decode(z0, z_s.flip(0), t[0], t)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.trains
def test_training_beats_the_untrained_model(name):
    train, test = rotating_hands(60, seed=1), rotating_hands(20, seed=2)
    obs = (torch.arange(16) < 5).expand(20, 16)
    torch.manual_seed(0)
    model = MODELS[name](t_in=5)
    mse = lambda: ((model.predict(test.x, test.t, obs) - test.x) ** 2).mean().item()
    before = mse()
    hist = fit_baseline(model, train, baseline_config(iterations=150, batch_size=10, lr_gen=1e-2, progress=False))
    after = mse()
    assert all(torch.isfinite(torch.tensor(hist.loss)))
    assert after < 0.3 * before, (before, after)


def test_ebm_parameters_learn_only_from_the_ebm_term(data):
    torch.manual_seed(0)
    model = EBMEncoderODE()
    x, t, mask = data.x[:4], data.t, torch.ones(4, 16, dtype=torch.bool)
    prior = {id(p) for p in model.prior.parameters()}

    def grads(which):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        terms = model.loss_terms(x, t, mask, kl_weight=1.0)
        (terms["generator"] + terms["ebm"] if which == "sum" else terms[which]).backward()
        return [(id(p) in prior, p.grad) for p in model.parameters()]

    gen = grads("generator")
    assert all(g is None for is_p, g in gen if is_p)          # the generator term never pushes f
    assert all(g is not None and g.abs().sum() > 0 for is_p, g in gen if not is_p)
    ebm = grads("ebm")
    assert all(g is None for is_p, g in ebm if not is_p)      # the EBM term moves only the prior
    assert all(g is not None for is_p, g in ebm if is_p)
    # every weight of f moves; f's output bias cancels between z_- and z (log Z absorbs a constant)
    assert all(p.grad.abs().sum() > 0 for n, p in model.prior.named_parameters() if n != "net.4.bias")
    total = grads("sum")
    assert all(torch.allclose(g, ge) for (is_p, g), (_, ge) in zip(total, ebm) if is_p)
    # the encoder does feel f through z: the generator term's encoder gradient changes when f changes
    grads("generator")
    enc_before = next(model.encoder.parameters()).grad.clone()
    with torch.no_grad():
        for p in model.prior.parameters(): p.add_(0.5 * torch.randn_like(p))
    grads("generator")
    assert not torch.allclose(next(model.encoder.parameters()).grad, enc_before)
    # fit_baseline's optimiser: the prior at lr_ebm, everything else at lr_gen
    groups = model.param_groups(FitConfig(lr_gen=1e-2, lr_ebm=1e-4))
    assert [g["lr"] for g in groups] == [1e-2, 1e-4]
    assert {id(p) for p in groups[1]["params"]} == prior
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.parameters()} - prior
    # one loss call = both terms
    torch.manual_seed(1)
    loss, stats = model.loss(x, t, mask)
    assert stats["loss"] == pytest.approx(stats["generator"] + stats["ebm"], rel=1e-5, abs=1e-3)


@pytest.mark.parametrize("name", list(MODELS))
def test_bad_shapes_raise_value_errors(name, data):
    model = MODELS[name]()
    x, t = data.x[:2], data.t
    with pytest.raises(ValueError, match="expect frames"):
        model.predict(torch.rand(2, 16, 28, 28), t)
    with pytest.raises(ValueError, match="expect frames"):
        model.predict(torch.rand(2, 16, 3, 28, 28), t)
    with pytest.raises(ValueError, match="time points"):
        model.loss(x, t[:8], torch.ones(2, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask shape"):
        model.predict(x, t, torch.ones(2, 15, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        model.predict(x, t, torch.ones(2, 16, 1, 28, 28, dtype=torch.bool))
    with pytest.raises(ValueError, match="no observed frame among the first t_in"):
        model.t_in = 3
        model.predict(x, t, torch.arange(16).expand(2, 16) >= 5)
    with pytest.raises(ValueError, match=r"the model expects \(1, 28, 28\)"):
        fit_baseline(model, make_sinusoids(n=10, n_points=6).train, iterations=1, progress=False)


def test_vector_baselines_still_train_through_fit_baseline():
    d = make_sinusoids(n=20, n_points=10, seed=0)
    for model in (LatentODE(1, ode_hidden=16, rec_hidden=8), GRUD(1, hidden=8)):
        assert model.obs_shape == (1,) and len(model.param_groups(FitConfig())) == 1
        torch.manual_seed(0)
        h = fit_baseline(model, d.train, baseline_config(iterations=3, batch_size=8, lr_gen=1e-2, progress=False))
        assert len(h.loss) == 3 and all(torch.isfinite(torch.tensor(h.loss)))
        assert model.predict(d.test.x, d.test.t).shape == d.test.x.shape
    with pytest.raises(ValueError, match=r"the model expects \(1,\)"):
        fit_baseline(LatentODE(1), rotating_hands(4), iterations=1, progress=False)
