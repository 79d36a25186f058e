"""Fit ODE-LEBM to irregular series with continuous time stamps, predict held-out points of new series, compare
with linear interpolation, and draw the predictions with their spread over posterior samples.

    python examples/fit_your_series.py                   # the time it took is in the README (written by --record)
    python examples/fit_your_series.py --iterations 5    # a quick check that everything runs
    python examples/fit_your_series.py --record          # maintainers: rewrite the README's figure, time and output

The figure goes to runs/examples/ (not tracked by git) unless --figure names another file; --record writes the
committed figure, examples/fit_your_series.json (the time, the printed lines, the commit and the machine) and the
README block made from it.
"""
import argparse, contextlib, datetime, io, json, sys
from pathlib import Path

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
    # union grid + mask; mean 0, std 1
    train = SequenceData.from_series(make_series(200), t_offset=0.0).standardize(center="auto")
    model = ODELEBM(obs_shape=(1,), z0_dim=4, ode_hidden=32, sigma=0.1, solver="euler_grid")
    start = time.time()
    # steps: "auto"
    learner = fit(model, train, validation=0.2, iterations=iterations, batch_size=50, lr_gen=1e-2, lr_ebm=1e-3)
    val = learner.validation   # a fifth of the series, scored as it trains; the model ends at its best-scoring iterate
    print(f"trained {learner.iteration} iterations in {time.time() - start:.0f} s, kept iteration {val.best} "
          f"(validation MSE {min(val.scores):.4f}); ODE step {model.config.max_step:.3g}")

    # new series: observe some points of each, predict 20 held-out stamps, in the training data's frame and units
    new = make_series(100, n_query=20, seed=1)
    keep = [torch.randperm(len(t), generator=torch.Generator().manual_seed(i)) for i, (t, _) in enumerate(new)]
    seen = [(t[p[20:]].sort().values, x[p[20:].sort().values]) for (t, x), p in zip(new, keep)]
    held = [(t[p[:20]].sort().values, x[p[:20].sort().values]) for (t, x), p in zip(new, keep)]
    obs = SequenceData.from_series(seen, t_offset=train.t_offset).standardize(like=train)
    t_query = torch.cat([t for t, _ in held]).unique()   # float64 stamps, any order: fine
    pred = predict(model, obs, t_query=t_query, n_steps=100, n_samples=8, seed=0)   # obs checked against train's frame
    mean = obs.unstandardize(pred.mean)                                     # back to the data's units
    ruler = linear_interpolation(obs.t, obs.unstandardize(obs.x), obs.mask, t_query)
    # chosen on the validation series, chains as above
    noise = val.noise_scale(model, n_steps=100, n_samples=8)
    lo, hi = pred.interval(0.95, like=obs, noise=noise)
    at = [torch.searchsorted(t_query, t) for t, _ in held]
    mse = lambda p: torch.stack([((p[i, j] - x) ** 2).mean()
                                 for i, (j, (_, x)) in enumerate(zip(at, held))]).mean().item()
    inside = torch.cat([((lo[i, j] <= x) & (x <= hi[i, j])).flatten() for i, (j, (_, x)) in enumerate(zip(at, held))])
    print(f"held-out MSE of 100 new series at 20 unseen stamps each: ODE-LEBM {mse(mean):.4f}, "
          f"linear interpolation {mse(ruler):.4f}; the 95% intervals hold {inside.float().mean():.0%} of them")
    return model, train, obs, held, pred, mean, (lo, hi)
# --- the README example ends here ---

def plot(obs, held, pred, mean, interval, path):
    "Six new series: observed points, held-out truth, the prediction and its 95% interval."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    tq, (lo, hi) = pred.t, interval
    order = obs.mask.sum(1).argsort()[torch.linspace(0, len(obs) - 1, 6).long()]   # from the sparsest to the densest
    fig, axes = plt.subplots(2, 3, figsize=(11, 5), sharex=True, sharey=True)
    for ax, i in zip(axes.flat, order.tolist()):
        m = obs.mask[i]
        ax.fill_between(tq, lo[i, :, 0], hi[i, :, 0], color="C0", alpha=0.2,
                        label="95% interval (8 posterior samples, noise chosen on validation)")
        ax.plot(tq, mean[i, :, 0], color="C0", label="ODE-LEBM prediction")
        ax.scatter(held[i][0], held[i][1][:, 0], s=14, marker="x", color="C3", label="held-out truth")
        ax.scatter(obs.t[m], obs.unstandardize(obs.x)[i, m, 0], s=18, color="k", label="observed")
        ax.set_title(f"{int(m.sum())} observed points", fontsize=10)
    for ax in axes[1]: ax.set_xlabel("t")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle("New series with continuous stamps: prediction from the observed points only")
    fig.tight_layout(rect=(0, 0.06, 1, 1)); fig.savefig(path, dpi=110); plt.close(fig)
    print(f"figure: {path}")

HERE = Path(__file__).resolve().parent
RECORD = HERE / "fit_your_series.json"   # what --record measured: the README block is made from it
EXAMPLE_BEGIN = "<!-- example:begin (written by python examples/fit_your_series.py --record; do not edit by hand) -->"
EXAMPLE_END = "<!-- example:end -->"

def readme_text(record: dict) -> str:
    "The README's sentence on the example's run, made from the record `--record` wrote."
    lines = "\n".join(record["printed"])
    return (f"On {record['cpu']} ({record['cores']} cores, {record['torch_threads']} torch threads; commit "
            f"`{record['commit']}`, {record['date'][:10]}) it took **{record['seconds']:.0f} s** in all, figure "
            f"included, and printed\n\n```\n{lines}\n```\n")

def record_run(seconds: float, printed: str, commit: str) -> dict:
    """Write RECORD (atomically, with a checksum) and the README block from it; returns the record. `commit`: taken
    before the run wrote anything."""
    from odelebm.files import write_json
    from odelebm.results import machine_info
    from odelebm.reproduce import update_readme
    rec = dict(seconds=round(seconds, 1),
               printed=[l for l in printed.splitlines() if l and not l.startswith("figure:")], commit=commit,
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **machine_info())
    write_json(RECORD, rec)
    update_readme(HERE.parent / "README.md", readme_text(rec), EXAMPLE_BEGIN, EXAMPLE_END)
    return rec

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--figure", default=None, help="where the figure goes (default: runs/examples/fit_your_series.png)")
    ap.add_argument("--record", action="store_true", help="write the committed figure, the record and the README block")
    a = ap.parse_args()
    if a.record and a.iterations != 300:
        ap.error("--record measures the README's configuration: leave --iterations at 300")
    figure = Path(a.figure or (
        HERE / "fit_your_series.png" if a.record else HERE.parent / "runs" / "examples" / "fit_your_series.png"))
    figure.parent.mkdir(parents=True, exist_ok=True)
    if a.record:
        from odelebm.results import git_commit
        commit = git_commit(HERE.parent)   # the code that runs, before the figure it writes changes the tree
        if commit.endswith("+dirty"): ap.error(f"--record needs a clean tree: commit first (HEAD is {commit})")
    out, start = io.StringIO(), time.time()
    with contextlib.redirect_stdout(out) if a.record else contextlib.nullcontext():
        torch.manual_seed(0)
        model, train, obs, held, pred, mean, interval = main(a.iterations)
        plot(obs, held, pred, mean, interval, figure)
    if a.record:
        sys.stdout.write(out.getvalue())
        print(f"recorded {RECORD}: {record_run(time.time() - start, out.getvalue(), commit)['seconds']} s")
