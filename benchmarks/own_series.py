"""Fitting your own irregular series: how the "auto" posterior step was chosen, and issue 13's failure cases re-run.

Two studies, each written to benchmarks/results/own_series_<study>.{json,md} with the commit, date and settings:

- `steps`: the constant c of the "auto" posterior step s_i = c sigma / sqrt(n_i). Held-out MSE at 5 / 12 / 30 observed
  points on three families after 150 iterations (one seed), and on the sine family of tests/test_core.py how many of
  8 seeds learn at all (300 iterations, interpolation MSE from 30% of the points below 0.03).
- `cases`: the cases issue 13 reported, at the current commit: a union grid of ~7,000 continuous stamps (20 iterations),
  the README clock model predicting 6 off-clock points of new series, and a 2-D family (untrained chains, fitted model
  against linear interpolation) with the "auto" step and the old fixed step 0.05.

    python benchmarks/own_series.py --study steps      # about 12 minutes on 2 cores
    python benchmarks/own_series.py --study cases      # about 6 minutes
"""
import argparse, json, platform, subprocess, sys, time
from pathlib import Path
import torch
from odelebm.baselines import linear_interpolation
from odelebm.data_sinusoids import observation_mask
from odelebm.learner import fit, predict, masked_mse
from odelebm.model import ODELEBM
from odelebm.sequences import SequenceData

README = dict(z0_dim=4, ode_hidden=32, sigma=0.1, solver="euler_grid")           # the README example's model
FIT = dict(batch_size=50, lr_gen=1e-2, lr_ebm=1e-3, progress=False)


def sine(g):
    "A README-family series: sin(2t + phase)."
    ph = 3 * torch.rand(1, generator=g, dtype=torch.float64)
    return lambda t: torch.sin(2 * t + ph)[:, None].float()

def oscillator(g):
    "A damped 2-D oscillator of random phase and amplitude (unit scale)."
    ph, a = 3 * torch.rand(1, generator=g, dtype=torch.float64), 0.5 + torch.rand(1, generator=g, dtype=torch.float64)
    return lambda t: torch.stack([a * torch.exp(-0.2 * t) * torch.cos(3 * t + ph),
                                  a * torch.exp(-0.2 * t) * torch.sin(3 * t + ph)], -1).float()

def draw(family, n, lengths, spans, g, clock=False):
    "n series: lengths and spans cycle through the given lists; stamps continuous, or on a 0.05 clock."
    out = []
    for i in range(n):
        k, span = lengths[i % len(lengths)], spans[(i // len(lengths)) % len(spans)]
        t = (torch.randperm(int(span / 0.05), generator=g)[:k].sort().values * 0.05).double() if clock else \
            (span * torch.rand(k, generator=g, dtype=torch.float64)).sort().values
        out.append((t, family(g)(t)))
    return out

def heldout(model, family, k, train=None, n=100, seed=123):
    """MSE at 20 unseen continuous stamps of n new series observed at k continuous stamps; also linear interpolation's
    and zeros'."""
    g = torch.Generator().manual_seed(seed)
    seen, held = [], []
    for _ in range(n):
        f = family(g)
        to, tq = [(5 * torch.rand(m, generator=g, dtype=torch.float64)).sort().values for m in (k, 20)]
        seen.append((to, f(to))); held.append((tq, f(tq)))
    obs = SequenceData.from_series(seen, t_offset=0.0)
    if train is not None and train.x_mean is not None: obs = obs.standardize(like=train)
    back = (lambda v: v) if train is None else train.unstandardize
    tq = torch.cat([t for t, _ in held]).unique()
    mean = back(predict(model, obs.x, obs.t, obs.mask, t_query=tq.float(), n_steps=100, seed=0).mean)
    ruler = linear_interpolation(obs.t, back(obs.x), obs.mask, tq.float())
    at = [torch.searchsorted(tq, t) for t, _ in held]
    mse = lambda p: torch.stack([((p[i, j] - x) ** 2).mean()
                                 for i, (j, (_, x)) in enumerate(zip(at, held))]).mean().item()
    return dict(model=mse(mean), linear=mse(ruler), zeros=mse(torch.zeros_like(mean)))


def study_steps(scales):
    families = {
        "README sinusoids on a 0.05 clock": (lambda g: draw(sine, 200, [30], [5.0], g, clock=True), sine, False),
        "sinusoids, continuous stamps, 5/20/80 points over spans 2/5/10":
            (lambda g: draw(sine, 200, [5, 20, 80], [2.0, 5.0, 10.0], g), sine, False),
        "damped 2-D oscillator, channels of scale 1 and 5, standardised":
            (lambda g: [(t, x * torch.tensor([1.0, 5.0])) for t, x in draw(oscillator, 200, [30], [5.0], g)],
             oscillator, True),
    }
    rows = []
    for scale in scales:
        ODELEBM.AUTO_STEP_SCALE = scale
        for name, (make, family, standardise) in families.items():
            data = SequenceData.from_series(make(torch.Generator().manual_seed(0)), t_offset=0.0)
            if standardise:   # held-out series are drawn unscaled: scale them like the training data
                data = data.standardize()
                fam = lambda g, f=family: (lambda t, h=f(g): h(t) * torch.tensor([1.0, 5.0]))
            else: fam = family
            torch.manual_seed(0)
            model = ODELEBM(obs_shape=data.obs_shape, **README)
            start = time.time()
            try:
                fit(model, data, iterations=150, **FIT)
                res = {k: heldout(model, fam, k, data)["model"] for k in (5, 12, 30)}
            except FloatingPointError as e: res = {"failed": str(e).splitlines()[0][:120]}
            rows.append(dict(study="held-out", c=scale, family=name, seconds=round(time.time() - start, 1),
                             **{str(k): v for k, v in res.items()}))
            print(rows[-1], flush=True)
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_core import make_sine_family, MODEL, TRAIN
        train, test = make_sine_family()
        mask = observation_mask(len(test), test.x.shape[1], 0.3, seed=0)
        seeds = []
        for seed in range(8):
            torch.manual_seed(seed)
            model = ODELEBM(**{**MODEL, "max_step": "auto"})
            try:
                fit(model, train, iterations=300, **{**TRAIN, "seed": seed, "posterior_step_size": "auto"})
                p = predict(model, test.x, test.t, mask, n_steps=100, seed=0)
                seeds.append(masked_mse(p.mean, test.x, torch.ones_like(mask)).item())
            except FloatingPointError: seeds.append(float("nan"))
        rows.append(dict(study="seeds", c=scale, family="test_core sine family, 300 iterations, 8 seeds", mse=seeds,
                         learned=sum(m < 0.03 for m in seeds), ran_away=sum(m != m for m in seeds)))
        print(rows[-1], flush=True)
    return rows


def study_cases():
    rows = []
    data = SequenceData.from_series(draw(sine, 200, [5, 20, 80], [2.0, 5.0, 10.0], torch.Generator().manual_seed(0)))
    for label, kw in (("step auto", {}), ("fixed step 0.05 (old README)", dict(posterior_step_size=0.05))):
        torch.manual_seed(0); m = ODELEBM(obs_shape=(1,), **README)
        start = time.time(); L = fit(m, data, iterations=20, **FIT, **kw); dt = time.time() - start
        rows.append(dict(case="union grid of continuous stamps, 20 iterations", setting=label, union_grid=len(data.t),
                         max_step=m.config.max_step, s_per_it=dt / 20, mse_it1=L.history.mse[0],
                         mse_it20=L.history.mse[-1], dropped=sum(L.history.dropped)))
        print(rows[-1], flush=True)
    clock = torch.arange(0, 5, 0.05)
    torch.manual_seed(0)
    series = [(t, torch.sin(2 * t + 3 * torch.rand(1))[:, None])
              for t in (clock[torch.randperm(100)[:30].sort().values] for _ in range(200))]
    m = ODELEBM(obs_shape=(1,), **README)
    start = time.time(); fit(m, SequenceData.from_series(series), iterations=500, **FIT)
    rows.append(dict(case="README clock model (500 iterations), new series observed at 6 off-clock stamps",
                     seconds=time.time() - start, **heldout(m, sine, 6)))
    t_obs = torch.tensor([0.013, 0.77, 1.9031, 2.5, 3.333, 4.99]); x = torch.sin(2 * t_obs + 1.0)[None, :, None]
    tq = torch.tensor([0.41, 1.27, 2.83, 4.4]); dense = torch.cat([tq, torch.linspace(0, 5, 401)]).unique()
    alone = predict(m, x, t_obs, t_query=tq, n_steps=100, seed=0).mean
    inside = predict(m, x, t_obs, t_query=dense, n_steps=100, seed=0).mean[:, torch.isin(dense, tq)]
    rows.append(dict(case="one series, 6 off-clock observations: 4 queries alone vs inside a 401-point grid",
                     max_abs_difference=(alone - inside).abs().max().item()))
    print(rows[-2:], flush=True)
    osc = SequenceData.from_series(draw(oscillator, 200, [30], [5.0], torch.Generator().manual_seed(0)), t_offset=0.0)
    for label, step in (("step auto", "auto"), ("fixed step 0.05 (old README)", 0.05)):
        torch.manual_seed(0); m = ODELEBM(obs_shape=(2,), **README, max_step=0.05)
        tb, xb, mb = m.batch_grid(osc.t, torch.nan_to_num(osc.x[:50]), osc.mask[:50])
        chains = {}
        for K in (20, 100):
            torch.manual_seed(1)
            z, ok = m.sample_posterior(xb, tb, mb, K, step, runaway="drop")
            chains[f"recon_mse_K{K}"] = ((((m.decode(z, tb) - xb) ** 2) * mb[..., None]).sum() / (mb.sum() * 2)).item()
            chains[f"runaway_K{K}"] = int((~ok).sum())
        torch.manual_seed(0); m = ODELEBM(obs_shape=(2,), **README)
        start = time.time()
        fit(m, osc, iterations=500, **FIT, **({} if step == "auto" else dict(posterior_step_size=step)))
        res = {k: heldout(m, oscillator, k, seed=9) for k in (5, 12, 30)}
        rows.append(dict(case="2-D oscillator: untrained chains (50 series), then 500 iterations", setting=label,
                         **chains, seconds=time.time() - start, **{f"heldout_{k}": r["model"] for k, r in res.items()},
                         **{f"linear_{k}": r["linear"] for k, r in res.items()}))
        print(rows[-1], flush=True)
    return rows


def markdown(study, rows, meta):
    head = (f"# own_series: {study}\n\ncommit {meta['commit']}, {meta['date']}, {meta['machine']}, torch "
            f"{meta['torch']}, {meta['threads']} threads\n\n")
    return head + "\n".join("- " + ", ".join(f"{k}: {round(v, 4) if isinstance(v, float) else v}" for k, v in r.items())
                            for r in rows) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", choices=["steps", "cases"], required=True)
    ap.add_argument("--scales", default="2,2.5,3", help="steps study: the constants c to compare")
    a = ap.parse_args()
    torch.set_num_threads(2)
    meta = dict(commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                      text=True).stdout.strip(),
                date=time.strftime("%Y-%m-%d %H:%M"), machine=platform.machine(), torch=torch.__version__,
                threads=torch.get_num_threads())
    rows = study_steps([float(c) for c in a.scales.split(",")]) if a.study == "steps" else study_cases()
    out = Path("benchmarks/results") / f"own_series_{a.study}"
    out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    out.with_suffix(".md").write_text(markdown(a.study, rows, meta))
    print(f"written {out}.json / .md")


if __name__ == "__main__":
    main()
