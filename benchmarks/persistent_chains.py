"""Fast training chains vs the paper's from-noise chains at equal wall time (Table 1 sinusoids).

Trains ODE-LEBM for the same wall-clock budget with the paper's from-noise chains (20 posterior steps) and with the
fast configurations, and scores all of them the same way at test time (from-noise posterior Langevin with the recipe's
100 steps on a fixed random subset of each test series, MSE on the full series):

- persistent: each training sequence keeps its chain; a revisit resumes it with `--steps` steps;
- staged: each batch's 20 from-noise steps pipelined over S consecutive iterations, for each S in `--stages`;
- short: from noise with fewer steps, each K in `--short-steps`, the step size scaled by sqrt(20 / K) so that a chain
  covers the same Langevin time s^2 K (or `--short-step-size`).

Every configuration runs once per seed in `--seeds`; the table gives the mean and standard deviation over seeds.

    python benchmarks/persistent_chains.py [--budget 240] [--configs noise,staged,short] [--stages 4] [--short-steps 10]
        [--seeds 0,1,2]
"""
import argparse, json, math, platform, statistics, subprocess, time
from dataclasses import asdict
from pathlib import Path
import torch
from dataclasses import replace
from odelebm.experiments.recipes import Recipe, recipe
from odelebm.model import ODELEBM
from odelebm.learner import Learner, predict, masked_mse
from odelebm.data_sinusoids import observation_mask


def train_for(budget: float, setup: Recipe, ratio: float, seed: int, **fit) -> tuple[ODELEBM, int, float]:
    "Train from the Table 1 recipe until `budget` seconds have passed; returns the model, iterations and s/iteration."
    d = setup.data.load()
    torch.manual_seed(seed)
    model = ODELEBM(setup.model)
    cfg = replace(setup.fit, iterations=10**9, obs_ratio=ratio, seed=seed, progress=False, **fit)
    learner, t0 = Learner(model, d.train, cfg), time.perf_counter()
    while time.perf_counter() - t0 < budget: learner.step()
    return model, learner.iteration, (time.perf_counter() - t0) / learner.iteration


def test_mse(model: ODELEBM, setup: Recipe, ratio: float, seed: int) -> float:
    d = setup.data.load()
    mask = observation_mask(len(d.test), setup.data.n_points, ratio, seed)
    p = predict(model, d.test.x, d.test.t, mask, n_steps=setup.test.steps, step_size=setup.fit.posterior_step_size,
                seed=seed)
    return masked_mse(p.mean, d.test.x, torch.ones_like(mask)).item()


def configurations(a: argparse.Namespace, setup: Recipe) -> dict[str, list[tuple[str, dict]]]:
    "Named training configurations: the from-noise reference and the fast variants."
    ints = lambda s: [int(v) for v in s.split(",") if v.strip()]
    K, s = setup.fit.posterior_steps, setup.fit.posterior_step_size
    configs = {"noise": [(f"from noise, {K} steps", dict())],
               "persistent": [(f"persistent, {a.steps} steps", dict(persistent=True, persistent_steps=a.steps))],
               "staged": [(f"staged, {k} stages of {K // k} steps", dict(chain_stages=k)) for k in ints(a.stages)],
               "short": [(f"from noise, {k} steps of {size:.3g}", dict(posterior_steps=k, posterior_step_size=size))
                         for k in ints(a.short_steps) for size in [a.short_step_size or s * math.sqrt(K / k)]]}
    if a.fast_lr_decay is not None:
        for k in ("persistent", "staged", "short"):
            configs[k] = [(f"{name}, lr decay {a.fast_lr_decay}", {**fit, "lr_decay": a.fast_lr_decay})
                          for name, fit in configs[k]]
    return configs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=240, help="training seconds per configuration and seed")
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=5, help="posterior steps per revisit of a persistent chain")
    ap.add_argument("--stages", default="4",
                    help="comma-separated iterations a staged chain spans (20 / stages steps each)")
    ap.add_argument("--short-steps", default="10", help="comma-separated step counts of the short from-noise chains")
    ap.add_argument("--short-step-size", type=float, default=None,
                    help="step size of the short chains (default: the recipe's scaled by sqrt(20 / K), the same "
                         "Langevin time)")
    ap.add_argument("--configs", default="noise,staged,short",
                    help="comma-separated subset of noise,persistent,staged,short")
    ap.add_argument("--fast-lr-decay", type=float, default=None,
                    help="per-iteration learning-rate decay of the fast configurations (default: the recipe's); a run "
                         "with k times more iterations in the budget follows the same schedule in wall time with "
                         "decay**(1/k)")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/fast_chains.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    setup = recipe("table1")
    configs = configurations(a, setup)
    chosen = [c.strip() for c in a.configs.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(configs))
    if unknown: ap.error(f"unknown config(s) {unknown}; choose from {sorted(configs)}")
    seeds = [int(v) for v in a.seeds.split(",")]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in seeds:  # seed-major: an interrupted run still holds complete seeds
        for name, fit in (row for c in chosen for row in configs[c]):
            model, iters, spi = train_for(a.budget, setup, a.ratio, seed, **fit)
            rows.append(dict(config=name, seed=seed, iterations=iters, s_per_it=spi,
                             test_mse=test_mse(model, setup, a.ratio, seed)))
            print(f"seed {seed}  {name:<32} {iters:5d} iterations  {spi:.3f} s/it  test MSE {rows[-1]['test_mse']:.4f}",
                  flush=True)
            out.write_text(json.dumps(dict(args=vars(a), setup=asdict(setup), rows=rows, commit=commit,
                                           torch=torch.__version__, machine=platform.machine(),
                                           date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())), indent=1))
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else float("nan")
    lines = [f"Equal wall time: {a.budget:.0f} s of training per configuration and seed, 1 process, {a.threads} torch "
             f"thread(s); test MSE from {setup.test.steps}-step from-noise inference on {a.ratio:.0%} of each test "
             f"series' points, MSE on all points. Commit {commit}, torch {torch.__version__}. `python "
             f"benchmarks/persistent_chains.py --budget {a.budget:g} --configs {a.configs} --stages {a.stages} "
             f"--short-steps {a.short_steps}"
             f"{'' if a.short_step_size is None else f' --short-step-size {a.short_step_size:g}'} "
             f"--seeds {a.seeds} --out {a.out}`", "",
             f"| configuration | seeds | iterations in {a.budget:.0f} s | s / iteration | test MSE, mean (std) | per "
             "seed |", "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["config"] for r in rows):
        rs = [r for r in rows if r["config"] == name]
        mse = [r["test_mse"] for r in rs]
        lines.append(f"| {name} | {len(rs)} | {statistics.mean(r['iterations'] for r in rs):.0f} | "
                     f"{statistics.mean(r['s_per_it'] for r in rs):.3f} | {statistics.mean(mse):.4f} ({sd(mse):.4f}) | "
                     f"{' / '.join(f'{v:.4f}' for v in mse)} |")
    print("\n" + "\n".join(lines))
    out.with_suffix(".md").write_text("# Fast training chains at equal wall time (Table 1 sinusoids)\n\n"
                                      + "\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
