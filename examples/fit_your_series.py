"""Fit ODE-LEBM to irregular series with continuous time stamps, predict held-out points of new series, compare
with linear interpolation, and draw the predictions with their spread over posterior samples.

    python examples/fit_your_series.py                   # about a minute and a half on a 2-core laptop
    python examples/fit_your_series.py --iterations 5    # a quick check that everything runs
"""
import argparse

# --- the README example starts here ---
import time
import torch
from odelebm.model import ODELEBM
from odelebm.sequences import SequenceData
from odelebm.learner import fit, predict
from odelebm.baselines import linear_interpolation

def make_series(n, n_query=0, seed=0):
    "n series of 5-40 observations at continuous random stamps in [0, 5] (plus n_query held-out stamps each)."
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(5, 41, (1,), generator=g)) + n_query
        t = (5 * torch.rand(k, generator=g, dtype=torch.float64)).sort().values
        x = torch.sin(2 * t + 3 * torch.rand(1, generator=g, dtype=torch.float64))[:, None].float()
        out.append((t, x + 0.05 * torch.randn(x.shape, generator=g)))   # each series: its own stamps, noisy values
    return out

def main(iterations=300):
    train = SequenceData.from_series(make_series(200), t_offset=0.0).standardize()   # union grid + mask; mean 0, std 1
    model = ODELEBM(obs_shape=(1,), z0_dim=4, ode_hidden=32, sigma=0.1, solver="euler_grid")
    start = time.time()
    learner = fit(model, train, iterations=iterations, batch_size=50, lr_gen=1e-2, lr_ebm=1e-3)   # steps: "auto"
    print(f"trained {iterations} iterations in {time.time() - start:.0f} s; ODE step {model.config.max_step:.3g}")

    # new series: observe some points of each, predict 20 held-out stamps, in the training data's frame and units
    new = make_series(100, n_query=20, seed=1)
    keep = [torch.randperm(len(t), generator=torch.Generator().manual_seed(i)) for i, (t, _) in enumerate(new)]
    seen = [(t[p[20:]].sort().values, x[p[20:].sort().values]) for (t, x), p in zip(new, keep)]
    held = [(t[p[:20]].sort().values, x[p[:20].sort().values]) for (t, x), p in zip(new, keep)]
    obs = SequenceData.from_series(seen, t_offset=train.t_offset).standardize(like=train)
    t_query = torch.cat([t for t, _ in held]).unique().float()
    pred = predict(model, obs.x, obs.t, obs.mask, t_query=t_query, n_steps=100, n_samples=8, seed=0)
    mean = train.unstandardize(pred.mean)
    ruler = linear_interpolation(obs.t, train.unstandardize(obs.x), obs.mask, t_query)
    at = [torch.searchsorted(t_query, t.float()) for t, _ in held]
    mse = lambda p: torch.stack([((p[i, j] - x) ** 2).mean() for i, (j, (_, x)) in enumerate(zip(at, held))]).mean().item()
    print(f"held-out MSE of 100 new series at 20 unseen stamps each: ODE-LEBM {mse(mean):.4f}, "
          f"linear interpolation {mse(ruler):.4f}")
    return model, train, obs, held, pred, mean
# --- the README example ends here ---

def plot(obs, held, pred, mean, train, path="examples/fit_your_series.png"):
    "Six new series: observed points, held-out truth, the prediction and +-2 std over posterior samples."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tq, std = pred.t, pred.std * train.x_std
    order = obs.mask.sum(1).argsort()[torch.linspace(0, len(obs) - 1, 6).long()]   # from the sparsest to the densest
    fig, axes = plt.subplots(2, 3, figsize=(11, 5), sharex=True, sharey=True)
    for ax, i in zip(axes.flat, order.tolist()):
        m = obs.mask[i]
        ax.fill_between(tq, mean[i, :, 0] - 2 * std[i, :, 0], mean[i, :, 0] + 2 * std[i, :, 0], color="C0", alpha=0.2,
                        label="±2 std over 8 posterior samples")
        ax.plot(tq, mean[i, :, 0], color="C0", label="ODE-LEBM prediction")
        ax.scatter(held[i][0], held[i][1][:, 0], s=14, marker="x", color="C3", label="held-out truth")
        ax.scatter(obs.t[m], train.unstandardize(obs.x)[i, m, 0], s=18, color="k", label="observed")
        ax.set_title(f"{int(m.sum())} observed points", fontsize=10)
    for ax in axes[1]: ax.set_xlabel("t")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle("New series with continuous stamps: prediction from the observed points only")
    fig.tight_layout(rect=(0, 0.06, 1, 1)); fig.savefig(path, dpi=110); plt.close(fig)
    print(f"figure: {path}")

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--figure", default="examples/fit_your_series.png")
    a = ap.parse_args()
    torch.manual_seed(0)
    model, train, obs, held, pred, mean = main(a.iterations)
    plot(obs, held, pred, mean, train, a.figure)
