"""The hyper-parameter search behind the `table1` recipe, on the VALIDATION split (never the test set).

The `table1` recipe holds out the last 80 of the 800 training series (`data.n_val`). Each candidate (a method and a set
of recipe overrides) trains on the other 720 at every observation ratio (seed 0, the four ratios as one ensemble where
the method allows) for the recipe's iterations (or `--iterations`), then sees a fixed random fraction r of each
validation series and predicts all 100 points. The validation MSE per ratio and its mean over ratios are recorded, with
the two trivial predictors beside them. Jobs are cached under `--run-dir` (one folder per candidate), so an interrupted
search resumes where it stopped. Candidates run in `--workers` processes (one torch thread each). Writes a Markdown
table and JSON.

    python benchmarks/table1_search.py --search stability [--iterations 1500] [--workers 2]
"""
import argparse, time
from pathlib import Path
from odelebm.experiments.executors import parallel_map
from searches import slug, commit, write_results

RATIOS = (0.1, 0.2, 0.3, 0.5)
SEARCHES = {}
# ODE-LEBM's posterior step under the curvature cap (model.step_stability) and generator clipping
SEARCHES["stability"] = [
    # the wave-1 recipe: a fixed step, no cap, no clipping
    ("ODE-LEBM", {"model.step_stability": None, "fit.clip_grad": None}),
    ("ODE-LEBM", {"model.step_stability": 1.0}),
    ("ODE-LEBM", {"model.step_stability": 1.8}),
    ("ODE-LEBM", {"model.step_stability": 1.0, "fit.posterior_step_size": 0.1}),
]
# the rest of ODE-LEBM's recipe around the chosen stability (1.8) and clipping (1000), then each
SEARCHES["recipe"] = [
    # baseline at Rubanova et al.'s Adamax 1e-2 (decayed x0.999 per iteration to 1/10) and at a 3x larger rate
    ("ODE-LEBM", {"fit.lr_gen": 3e-3}),
    ("ODE-LEBM", {"fit.posterior_step_size": 0.07}),
    ("ODE-LEBM", {"fit.lr_decay": 0.999}),
] + [(m, {"baseline.lr_gen": lr}) for m in ("Latent ODE (RNN enc)", "Latent ODE (ODE-RNN enc)", "RNN-VAE", "GRU-D")
     for lr in (1e-2, 3e-2)]
SEARCHES["edge"] = [   # the largest rates of the last search won for every method: one step further for each
    ("ODE-LEBM", {"fit.lr_gen": 3e-2}),
] + [(m, {"baseline.lr_gen": 1e-1}) for m in ("Latent ODE (RNN enc)", "Latent ODE (ODE-RNN enc)", "RNN-VAE", "GRU-D")]


def job(name, overrides, iterations, profile, run_dir):
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.irregular import run_method
    it = {"fit.iterations": iterations, "baseline.iterations": iterations} if iterations else {}
    r = recipe("table1", profile, {**it, **overrides})
    if not r.data.n_val: raise SystemExit("the table1 recipe holds out no validation series (data.n_val = 0)")
    t0 = time.time()
    try:
        outs = run_method(name, [(ra, 0) for ra in RATIOS], r, run_dir=str(Path(run_dir) / slug(name, overrides)),
                          resume=True)
        val = {str(o["ratio"]): o["val_mse"] for o in outs}
        out = dict(val=val, mean=sum(val.values()) / len(val),
                   train_seconds=round(sum(o["train_seconds"] for o in outs), 1), cached=all(o["cached"] for o in outs))
    except FloatingPointError as e:   # a diverged candidate is a result of the search, not the end of it
        out = dict(val={}, mean=float("nan"), diverged=str(e)[:200])
    return dict(method=name, overrides=overrides, seconds=round(time.time() - t0, 1), **out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", default="stability", choices=sorted(SEARCHES))
    ap.add_argument("--iterations", type=int, default=0, help="0: the profile's")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-dir", default="runs/search/table1")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/table1_search_<search>.json")
    a = ap.parse_args()
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.irregular import trivial_mse, VAL_MASK_SEED, TRIVIAL
    r = recipe("table1", a.profile)
    d = r.data.load()
    trivial = {str(ra): trivial_mse(d.val, ra, VAL_MASK_SEED) for ra in RATIOS}
    rows = parallel_map(job, [(n, o, a.iterations, a.profile, a.run_dir) for n, o in SEARCHES[a.search]],
                        a.workers, desc="candidates")
    at = commit()
    its = a.iterations or f"{r.fit.iterations} (ODE-LEBM) / {r.baseline.iterations} (baselines)"
    lines = ["# Table 1 recipe search (validation split)", "",
             f"Search `{a.search}`: profile `{a.profile}`, {r.data.n_train} training series, {r.data.n_val} validation "
             f"series (the last {r.data.n_val} of the paper's 800 training series), {its} iterations per candidate, "
             f"seed 0, the four ratios; commit {at}. Validation MSE over all 100 points of each series from a "
             "fixed fraction r of them; the `table1` recipe at that commit with the overrides shown.", "",
             "| method | overrides | " + " | ".join(f"val r={ra}" for ra in RATIOS) + " | mean | training s |",
             "|---|---|" + "---|" * (len(RATIOS) + 2)]
    for k in TRIVIAL:
        v = [trivial[str(ra)][k] for ra in RATIOS]
        lines.append(f"| {k} | | " + " | ".join(f"{x:.4f}" for x in v) + f" | {sum(v) / len(v):.4f} | |")
    for o in rows:
        cells = (f"diverged: {o['diverged']} |" + " |" * len(RATIOS) if "diverged" in o else
                 " | ".join(f"{o['val'][str(ra)]:.4f}" for ra in RATIOS) + f" | {o['mean']:.4f} | {o['train_seconds']}")
        lines.append(f"| {o['method']} | {o['overrides'] or '(recipe)'} | {cells} |")
    write_results(a.out or f"benchmarks/results/table1_search_{a.search}.json", "\n".join(lines) + "\n",
                  dict(search=a.search, iterations=a.iterations, profile=a.profile, commit=at, trivial=trivial,
                       rows=rows))

if __name__ == "__main__":
    main()
