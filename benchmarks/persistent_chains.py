"""Fast training chains vs the paper's from-noise chains at equal wall time (Table 1 sinusoids).

Trains ODE-LEBM for the same wall-clock budget with the paper's from-noise chains (20 posterior steps) and with the
fast configurations -- persistent chains (a few steps per revisit) and staged chains (each batch's 20 from-noise
steps pipelined over S consecutive iterations, for each S in `--stages`) -- and scores all the same way at test time:
from-noise posterior Langevin on a fixed random subset of each test series, MSE on the full series.

    python benchmarks/persistent_chains.py [--budget 300] [--ratio 0.5] [--configs noise,persistent,staged] [--stages 4,10] [--out ...]
"""
import argparse, json, platform, subprocess, time
from dataclasses import asdict
from pathlib import Path
import torch
from odelebm.irregular import Table1Setup
from odelebm.model import ODELEBM
from odelebm.learner import Learner, FitConfig, predict, masked_mse
from odelebm.data_sinusoids import make_sinusoids, observation_mask


def train_for(budget: float, setup: Table1Setup, ratio: float, seed: int, **fit) -> tuple[ODELEBM, int, float]:
    "Train from the Table 1 recipe until `budget` seconds have passed; returns the model, iterations and s/iteration."
    d = make_sinusoids(setup.n_series, setup.n_points, seed=setup.data_seed)
    torch.manual_seed(seed)
    model = ODELEBM(z0_dim=setup.latent_dim, ebm_hidden=setup.ebm_hidden, sigma=setup.sigma, solver=setup.solver)
    cfg = FitConfig(iterations=10**9, batch_size=setup.batch_size, prior_steps=setup.prior_steps,
                    prior_step_size=setup.prior_step_size, posterior_steps=setup.posterior_steps,
                    posterior_step_size=setup.posterior_step_size, lr_gen=setup.lr_gen, lr_ebm=setup.lr_ebm,
                    obs_ratio=ratio, seed=seed, progress=False, **{"lr_decay": setup.lr_decay, **fit})
    learner, t0 = Learner(model, d.train, cfg), time.perf_counter()
    while time.perf_counter() - t0 < budget: learner.step()
    return model, learner.iteration, (time.perf_counter() - t0) / learner.iteration


def test_mse(model: ODELEBM, setup: Table1Setup, ratio: float, seed: int) -> float:
    d = make_sinusoids(setup.n_series, setup.n_points, seed=setup.data_seed)
    mask = observation_mask(len(d.test), setup.n_points, ratio, seed)
    p = predict(model, d.test.x, d.test.t, mask, n_steps=setup.test_steps, step_size=setup.posterior_step_size, seed=seed)
    return masked_mse(p.mean, d.test.x, torch.ones_like(mask)).item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=300, help="training seconds per configuration")
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=5, help="posterior steps per revisit of a persistent chain")
    ap.add_argument("--stages", default="4", help="comma-separated iterations a staged chain spans (20 / stages steps each)")
    ap.add_argument("--configs", default="noise,persistent,staged", help="comma-separated subset of noise,persistent,staged")
    ap.add_argument("--fast-lr-decay", type=float, default=None,
                    help="per-iteration learning-rate decay of the fast configurations (default: the recipe's); a run "
                         "with k times more iterations in the budget follows the same schedule in wall time with decay**(1/k)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/persistent_chains.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    setup = Table1Setup()
    rows = []
    configs = {"noise": ("from noise, 20 steps", dict()),
               "persistent": (f"persistent, {a.steps} steps", dict(persistent=True, persistent_steps=a.steps)),
               "staged": [(f"staged, {k} stages of {setup.posterior_steps // k} steps", dict(chain_stages=k))
                          for k in (int(v) for v in a.stages.split(","))]}
    configs = {k: v if isinstance(v, list) else [v] for k, v in configs.items()}
    if a.fast_lr_decay is not None:
        for k in ("persistent", "staged"):
            configs[k] = [(f"{name}, lr decay {a.fast_lr_decay}", {**fit, "lr_decay": a.fast_lr_decay}) for name, fit in configs[k]]
    chosen = [c.strip() for c in a.configs.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(configs))
    if unknown: ap.error(f"unknown config(s) {unknown}; choose from {sorted(configs)}")
    for name, fit in (row for c in chosen for row in configs[c]):
        model, iters, spi = train_for(a.budget, setup, a.ratio, a.seed, **fit)
        rows.append(dict(config=name, iterations=iters, s_per_it=spi, test_mse=test_mse(model, setup, a.ratio, a.seed)))
        print(f"{name:<24} {iters:5d} iterations  {spi:.3f} s/it  test MSE {rows[-1]['test_mse']:.4f}", flush=True)
    print(f"\n| configuration | iterations in {a.budget:.0f} s | s / iteration | test MSE (from-noise inference, {setup.test_steps} steps) |")
    print("|---|---|---|---|")
    for r in rows: print(f"| {r['config']} | {r['iterations']} | {r['s_per_it']:.3f} | {r['test_mse']:.4f} |")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(args=vars(a), setup=asdict(setup), rows=rows, commit=commit, torch=torch.__version__,
                                   machine=platform.machine(), date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())), indent=1))


if __name__ == "__main__":
    main()
