"""Why some Table 1 seeds end badly: ODE-LEBM's training trajectories over seeds, on the VALIDATION split.

Each candidate (a set of `table1` recipe overrides, its ratios x seeds and its iterations) trains ODE-LEBM with every
member's batch MSE of the posterior samples recorded (mean over windows of 100 iterations), then scores the validation
series (never the test series) with the recipe's test-time chains, on the last iterate (no selection). For each final
model it also probes the posterior chains on 200 training series at the member's ratio: the median of the capped
posterior step at the chains' noise starts (`langevin.stable_step`; the recipe's step is 0.05) and the observed-point
MSE of the chains after 20 steps (training's) and 100 steps. A run whose batch MSE falls and then rises is not
under-trained: its training undoes itself. Candidates run in `--workers` processes (one torch thread each), and each
one's result is cached under `--run-dir`, so an interrupted comparison resumes. Writes Markdown and JSON.

    python benchmarks/table1_trajectories.py [--workers 2]
"""
import argparse, json, re, statistics, subprocess, time
from pathlib import Path
from odelebm.experiments.executors import parallel_map

SEEDS, WINDOW = (0, 1, 2, 3, 4), 100
CANDIDATES = [   # label, overrides, ratios, seeds, iterations
    ("recipe (EBM rate 1e-4), 3000 iterations", {}, (0.1, 0.3), SEEDS, 3000),
    ("EBM rate 1e-5", {"fit.lr_ebm": 1e-5}, (0.1, 0.3), SEEDS, 1500),
    ("EBM frozen (rate 1e-9)", {"fit.lr_ebm": 1e-9}, (0.1, 0.3), SEEDS, 1500),
    ("no step cap (fixed step 0.05)", {"model.step_stability": None}, (0.3,), (1, 3, 4), 1500),
]


def windows(xs: list, w: int = WINDOW) -> list[float]:
    return [round(sum(xs[i:i + w]) / len(xs[i:i + w]), 4) for i in range(0, len(xs), w)]


def probe(model, r, d, ratio: float) -> dict:
    """The capped posterior step at noise starts and the chains' observed-point MSE after 20 and 100 steps, on 200
    training series."""
    import torch
    from odelebm.data_sinusoids import observation_mask
    from odelebm.sequences import masked_mse
    tb, xb, mb = model.batch_grid(d.train.t, d.train.x[:200], observation_mask(200, r.data.n_points, ratio, 77))
    torch.manual_seed(0)
    z0 = torch.randn(len(xb), model.latent_dim)
    step = model.posterior_step(r.fit.posterior_step_size, mb, lambda z: -model.posterior_energy(z, xb, tb, mb), z0)
    out = dict(step_median=float(step.median()) if hasattr(step, "median") else float(step))
    for k in (20, 100):
        torch.manual_seed(0)
        z, ok = model.sample_posterior(xb, tb, mb, k, r.fit.posterior_step_size, init=z0.clone(), runaway="drop")
        with torch.no_grad(): out[f"chain_mse_{k}"] = masked_mse(model.decode(z[ok], tb), xb[ok], mb[ok]).item()
    return out


def cache_path(run_dir, overrides, ratios, seeds, iterations) -> Path:
    return Path(run_dir) / (re.sub(r"[^A-Za-z0-9.=_-]+", "_",
                                   f"{json.dumps(overrides, sort_keys=True)}-{ratios}-{seeds}-{iterations}")[:150]
                            + ".json")


def candidate(label, overrides, ratios, seeds, iterations, profile, run_dir):
    "Train one candidate (or read its cached result); score every member on the validation split and probe its chains."
    cache = cache_path(run_dir, overrides, ratios, seeds, iterations)
    if cache.exists(): return {**json.loads(cache.read_text()), "cached": True}
    import torch
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.methods import method, train, infer
    from odelebm.experiments.irregular import VAL_MASK_SEED
    from odelebm.data_sinusoids import observation_mask
    from odelebm.sequences import masked_mse
    from odelebm.files import atomic_write
    r = recipe("table1", profile, {"fit.iterations": iterations, "test.select_every": 0, **overrides})
    d, m = r.data.load(), method("ODE-LEBM")
    members = [(s, ra) for ra in ratios for s in seeds]
    t0 = time.time()
    trainer = train(m, r, d.train, members)
    secs = time.time() - t0
    hists = trainer.history if isinstance(trainer.history, list) else [trainer.history]
    rows = []
    for (s, ra), model, h in zip(members, trainer.members(), hists):
        mask = observation_mask(len(d.val), r.data.n_points, ra, VAL_MASK_SEED + s)
        try:
            pred = infer(m, model, d.val.x, d.val.t, r, mask, seed=s).mean
            val = masked_mse(pred, d.val.x, torch.ones_like(mask)).item()
        except FloatingPointError as e: val = f"diverged: {str(e)[:120]}"
        rows.append(dict(seed=s, ratio=ra, val_mse=val, batch_mse=windows(h.columns["mse"]),
                         dropped=int(sum(h.columns["dropped"])), **probe(model, r, d, ra)))
    out = dict(label=label, overrides=overrides, iterations=iterations, train_seconds=round(secs, 1), members=rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, json.dumps(out))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-dir", default="runs/search/table1_trajectories")
    ap.add_argument("--out", default="benchmarks/results/table1_trajectories.json")
    a = ap.parse_args()
    t0 = time.time()
    outs = parallel_map(candidate, [(*c, a.profile, a.run_dir) for c in CANDIDATES], a.workers, desc="candidates")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = ["# Table 1: ODE-LEBM's training trajectories (validation split, last iterate)", "",
             f"Profile `{a.profile}`, recipe `table1` with the overrides shown and no iterate selection; batch MSE of "
             f"the posterior samples averaged over windows of {WINDOW} iterations; validation MSE from the recipe's "
             "100 test-time steps on the 80 held-out series; the probe runs the final model's posterior chains on 200 "
             "training series from N(0, I) (capped step: its median over chains; the recipe's step is 0.05). Commit "
             f"{commit}; wall time {(time.time() - t0) / 60:.1f} min (cached candidates cost nothing).", "",
             "| candidate | ratio | seed | lowest batch MSE (iterations) | final batch MSE | validation MSE | capped "
             "step | chain MSE, 20 / 100 steps |",
             "|---|---|---|---|---|---|---|---|"]
    summary = ["", "| candidate | iterations | ratio | validation MSE per seed | mean | runs whose final batch MSE is "
                   "> 1.5x their lowest |",
               "|---|---|---|---|---|---|"]
    for o in outs:
        for ra in sorted({x["ratio"] for x in o["members"]}):
            ms = [x for x in o["members"] if x["ratio"] == ra]
            for x in ms:
                b = x["batch_mse"]; k = min(range(len(b)), key=b.__getitem__)
                v = x["val_mse"]
                lines.append(f"| {o['label']} | {ra} | {x['seed']} | {b[k]:.4f} ({k * WINDOW}-{(k + 1) * WINDOW}) | "
                             f"{b[-1]:.4f} | {v if isinstance(v, str) else f'{v:.4f}'} | "
                             + (f"{x['step_median']:.4f} | {x['chain_mse_20']:.4f} / {x['chain_mse_100']:.4f} |"
                                                                 if "step_median" in x else "(not probed) | |"))
            vals = [x["val_mse"] for x in ms if not isinstance(x["val_mse"], str)]
            rose = sum(x["batch_mse"][-1] > 1.5 * min(x["batch_mse"]) for x in ms)
            summary.append(f"| {o['label']} | {o['iterations']} | {ra} | {' / '.join(f'{v:.4f}' for v in vals)} | "
                           f"{statistics.mean(vals):.4f} | {rose} of {len(ms)} |")
    sources = sorted({o["source"] for o in outs if o.get("source")})
    md = "\n".join(lines + summary + [""] + [f"Candidates marked by their cache as {x!r}." for x in sources]) + "\n"
    print(md)
    out = Path(a.out)
    out.write_text(json.dumps(dict(profile=a.profile, commit=commit, candidates=outs), indent=1) + "\n")
    out.with_suffix(".md").write_text(md)


if __name__ == "__main__":
    main()
