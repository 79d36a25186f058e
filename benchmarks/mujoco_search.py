"""The hyper-parameter search behind the `mujoco` recipe, on the VALIDATION split (never the test set).

Each candidate (a set of recipe overrides) trains one model on the Hopper's training windows at the cpu profile's data
size for `--iterations`, then observes the first 50 states of each validation trajectory and predicts all 100. The
validation MSE over states 0-49, 0-99 and 50-99 is recorded. Candidates run in `--workers` processes (one torch thread
each). Writes a Markdown table and a JSON file.

    python benchmarks/mujoco_search.py [--search first] [--env hopper] [--iterations 300] [--workers 2]
        [--out benchmarks/results/mujoco_search.json]
    python benchmarks/mujoco_search.py --search longer --iterations 1500
        --out benchmarks/results/mujoco_search_longer.json

With `--select-every N`, each candidate is scored on validation every N iterations (what Table 4 does, the MSE of
states 0-99): the table reports the best iterate, the JSON keeps each validation curve, and a figure of the curves
against the trivial predictor is written beside (`.png`).
"""
import argparse, json, subprocess, time
from pathlib import Path
from odelebm.experiments.executors import parallel_map

SEARCHES = {}
SEARCHES["first"] = [   # (method, overrides): the first recipe and its neighbours, 300 iterations
    ("ODE-LEBM", {}),
    ("ODE-LEBM", {"model.sigma": 0.03}),
    ("ODE-LEBM", {"fit.lr_gen": 3e-3}),
    # the paper's Table 9 step, read with Rubanova's sigma
    ("ODE-LEBM", {"fit.posterior_step_size": 0.001, "model.sigma": 0.001}),
    ("Latent ODE (ODE-RNN enc)", {}),
    ("Latent ODE (ODE-RNN enc)", {"baseline.lr_gen": 1e-3}),
    ("Latent ODE (ODE-RNN enc)", {"amortised.sigma": 1e-2}),
]
# the better learning rates of the first search, and a larger one each, trained longer (--iterations 1500)
SEARCHES["longer"] = [
    ("ODE-LEBM", {"fit.lr_gen": 3e-3}),
    ("ODE-LEBM", {"fit.lr_gen": 1e-2}),
    ("Latent ODE (ODE-RNN enc)", {}),
    ("Latent ODE (ODE-RNN enc)", {"baseline.lr_gen": 3e-2}),
]
_L = {"fit.lr_gen": 1e-2, "test.steps": 100}
# ODE-LEBM's posterior chains (--iterations 1500): 100 test-time steps; persistent training chains; twice the auto step
SEARCHES["posterior"] = [
    ("ODE-LEBM", _L),
    ("ODE-LEBM", {**_L, "fit.persistent": True}),
    ("ODE-LEBM", {**_L, "fit.posterior_step_size": 0.002}),
    ("ODE-LEBM", {**_L, "fit.persistent": True, "fit.posterior_step_size": 0.002}),
]
# the paper's fresh chains with larger posterior steps (--iterations 1500); one with 20 test-time steps
SEARCHES["step"] = [
    ("ODE-LEBM", {**_L, "fit.posterior_step_size": 0.003}),
    ("ODE-LEBM", {**_L, "fit.posterior_step_size": 0.004}),
    ("ODE-LEBM", {**_L, "fit.posterior_step_size": 0.008}),
    ("ODE-LEBM", {**_L, "fit.posterior_step_size": 0.004, "test.steps": 20}),
]
# do the recipes stop learning at the cpu budget (3000)? their validation curves to 8000 iterations
# (--iterations 8000 --select-every 500); and ODE-LEBM with each chain's step capped by its curvature (04_model),
# which lets a larger nominal step run without diverging
SEARCHES["budget"] = [
    ("ODE-LEBM", {}),
    ("Latent ODE (ODE-RNN enc)", {}),
    ("ODE-LEBM", {"model.step_stability": 1.8, "fit.posterior_step_size": 0.004}),
]


def job(name, overrides, env, iterations, profile, select_every=0):
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.mujoco import for_env, score
    from odelebm.experiments.methods import method, train_selected
    it = {"fit.iterations": iterations, "baseline.iterations": iterations}
    r = for_env(recipe("mujoco", profile, {**it, **overrides}), env)
    d = r.data.load()
    t0 = time.time()
    m = method(name)
    validate = lambda e, model: score(m, model, d, "val", r, seed=0)["mse_100"]   # Table 4's choice of iterate
    try:
        _, models, sel = train_selected(m, r, d.train, [(0, None)], validate=validate if select_every else None,
                                        every=select_every)
        out = score(m, models[0], d, "val", r, seed=0)
        out.pop("pred")
        if sel is not None:
            out.update(selected=sel[0]["selected"], curve=[[i, v] for i, v in zip(sel[0]["iterations"],
                                                                                  sel[0]["scores"])])
    except FloatingPointError as e:   # a diverged candidate is a result of the search, not the end of it
        out = dict(mse_50=float("nan"), mse_100=float("nan"), mse_extrap=float("nan"), diverged=str(e)[:160])
    return dict(method=name, overrides=overrides, seconds=round(time.time() - t0, 1), **out)


def plot_curves(rows, trivial, path):
    "The validation curves of the candidates that have one, against the trivial predictor; saved to `path`."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for k, o in enumerate(o for o in rows if o.get("curve")):
        its, vals = zip(*o["curve"])
        ax.plot(its, vals, marker=".", color=f"C{k}", label=f"{o['method']} {o['overrides'] or '(recipe)'}")
    ax.axhline(trivial["mse_100"], color="0.4", ls="--", lw=1, label="last observed state held (trivial)")
    ax.set(xlabel="training iteration", ylabel="validation MSE, states 0-99", yscale="log",
           title="MuJoCo validation curves (the scale the models train on)")
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="hopper")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--search", default="first", choices=sorted(SEARCHES))
    ap.add_argument("--select-every", type=int, default=0, help="score validation every N iterations, keep the best")
    ap.add_argument("--out", default="benchmarks/results/mujoco_search.json")
    a = ap.parse_args()
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.mujoco import for_env, held_last
    r = for_env(recipe("mujoco", a.profile), a.env)
    trivial = held_last(r.data.load(), r.test.observed, "val")
    rows = parallel_map(job, [(n, o, a.env, a.iterations, a.profile, a.select_every) for n, o in SEARCHES[a.search]],
                        a.workers, desc="candidates")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = ["# MuJoCo recipe search (validation split)", "",
             f"Search `{a.search}`: {a.env}, profile `{a.profile}` data ({r.data.n_traj} trajectories: "
             f"{r.data.n_train} training windows, validation {r.data.val_frac:.0%} of the training trajectories), "
             f"{a.iterations} iterations per candidate, seed 0, commit {commit}. Validation MSE from the first "
             f"{r.test.observed} states; the recipe at that commit with the overrides shown"
             + (f"; each candidate's iterate chosen on validation (states 0-99) every {a.select_every} iterations "
                "(`chosen at`), its curve in the JSON file and the figure beside" if a.select_every else "")
             + ".", "",
             "| method | overrides | val 0-49 | val 0-99 | val 50-99 | chosen at | seconds |",
             "|---|---|---|---|---|---|---|",
             f"| last observed state held (trivial) | | {trivial['mse_50']:.5f} | {trivial['mse_100']:.5f} | "
             f"{trivial['mse_extrap']:.5f} | | |"]
    for o in rows:
        errs = (f"diverged: {o['diverged']} | | | " if "diverged" in o
                else f"{o['mse_50']:.5f} | {o['mse_100']:.5f} | {o['mse_extrap']:.5f} | ")
        lines.append(f"| {o['method']} | {o['overrides'] or '(recipe)'} | {errs}{o.get('selected', a.iterations)} | "
                     f"{o['seconds']} |")
    md = "\n".join(lines) + "\n"
    print(md)
    out = Path(a.out)
    out.write_text(json.dumps(dict(search=a.search, env=a.env, iterations=a.iterations, profile=a.profile,
                                   commit=commit, trivial=trivial, rows=rows), indent=1) + "\n")
    out.with_suffix(".md").write_text(md)
    if a.select_every: plot_curves(rows, trivial, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
