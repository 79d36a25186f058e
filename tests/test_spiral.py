"Spiral2D data (odelebm.data_spiral): protocol sizes and time grid, determinism by seed, noise level."
import math
import pytest
import torch
from odelebm.data_spiral import make_spirals, spiral_curves


def test_sizes_grid_and_clean_windows_on_the_curves():
    d = make_spirals(n_train=40, n_val=20, n_test=10, train_len=100, test_len=500)
    assert d.train.x.shape == (40, 100, 2) and d.val.x.shape == (20, 100, 2) and d.test.x.shape == (10, 500, 2)
    dt = 6 * math.pi / 999
    assert torch.allclose(d.test.t, dt * torch.arange(500)) and torch.allclose(d.train.t, d.test.t[:100])
    curves, theta = spiral_curves()
    assert torch.allclose(curves[0].norm(dim=-1), 0.3 * theta, atol=1e-5)  # Archimedean: r = 0.3 theta
    assert torch.allclose(curves[1], curves[0] * torch.tensor([1.0, -1.0]))  # clockwise = mirror image
    for name, split, length in (("train", d.train, 100), ("test", d.test, 500)):
        for i in range(len(split)):
            s, k = d.start[name][i].item(), split.labels[i].item()
            assert 0 <= s <= 1000 - length and torch.equal(d.clean[name][i], curves[k, s:s + length])


def test_deterministic_by_seed():
    a = make_spirals(n_train=30, n_val=5, n_test=5, seed=3)
    make_spirals.cache_clear()
    b = make_spirals(n_train=30, n_val=5, n_test=5, seed=3)
    assert a is not b and torch.equal(a.train.x, b.train.x) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(make_spirals(n_train=30, n_val=5, n_test=5, seed=4).train.x, a.train.x)


def test_noise_level_and_bad_arguments():
    d = make_spirals(n_train=500, n_val=1, n_test=1, noise=0.3)
    resid = d.train.x - d.clean["train"]
    assert abs(resid.std().item() - 0.3) < 0.01 and abs(resid.mean().item()) < 0.01
    assert torch.equal(make_spirals(n_train=3, n_val=1, n_test=1, noise=0.0).train.x,
                       make_spirals(n_train=3, n_val=1, n_test=1, noise=0.0).clean["train"])
    with pytest.raises(ValueError, match="test_len"): make_spirals(test_len=1001)
    with pytest.raises(ValueError, match="n_train"): make_spirals(n_train=0)
