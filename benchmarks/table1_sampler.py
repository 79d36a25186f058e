"""The posterior-sampler search behind ODE-LEBM's part of the `table1` recipe (Table 1), on the VALIDATION split (never
the test set).

Each candidate (recipe overrides of the training chain: its step and that step's reading, its length, warm starts, the
likelihood's sigma) trains ODE-LEBM at the four observation ratios as one ensemble (seed 0) for `--iterations`, each
member's iterate chosen on validation as the table's runs choose it (every `test.select_every` iterations: one chain of
100 steps). The chosen iterate, and the last, are then scored on the 80 validation series under every test procedure of
`TESTS`: the MSE over all 100 points of each series from the fixed validation mask of its ratio
(`odelebm.experiments.irregular.interpolation`, what Table 1 scores on the test series).

The trivial predictors are printed beside them. Each candidate's training is checkpointed under `--run-dir`, so an
interrupted search resumes, and a finished one is only re-scored. Candidates run in `--workers` processes (one torch
thread each). Writes a Markdown table and JSON.

    python benchmarks/table1_sampler.py [--iterations 1500] [--workers 2]
    python benchmarks/table1_sampler.py --search finalists --seeds 1 2    # the best two, on more seeds
"""
import argparse, time
from pathlib import Path
from odelebm.experiments.executors import parallel_map
from searches import PLAIN, slug, commit, write_results

RATIOS = (0.1, 0.2, 0.3, 0.5)
# test procedures: `TestConfig` fields; the first is Algorithm 2 as the paper states it
TESTS = {
    "Alg. 2 (1 chain, 20 steps)": dict(PLAIN, steps=20),
    "1 chain, 100 steps": dict(PLAIN, steps=100),
    "10 chains, 100 steps": dict(PLAIN, steps=100, samples=10),
    "1 chain, 300 steps, last 100 noise-free": dict(PLAIN, steps=300, tail=100),
    "10 chains, 300 steps, last 100 noise-free": dict(PLAIN, steps=300, tail=100, samples=10),
    "1 chain, 300 steps, MALA after 100": dict(PLAIN, steps=300, adjust=True, warmup=100),
}
# the sampler every candidate starts from (the recipe's before this search), so that a candidate means the same run
# whatever the recipe has since become; the iterate is chosen by one chain of 100 steps in every candidate
BASE = {"fit.posterior_steps": 20, "fit.posterior_step_size": 0.05, "model.step_stability": 1.8,
        "fit.persistent": False, "fit.persistent_steps": 5, "model.sigma": 0.1, "test.steps": 100, "test.samples": 1,
        "test.select_every": 100}
# 0.141 = sqrt(2 x 0.01): Table 9's posterior step 0.01 read as eta in z + eta grad + sqrt(2 eta) e (the recipe's 0.05
# reads it as s in z + s^2/2 grad + s e; `01_langevin`)
SEARCHES = {"sampler": [
    {"fit.posterior_steps": 50},                                        # first: the longest
    {"fit.posterior_steps": 50, "fit.posterior_step_size": 0.141},
    {},                                                                 # BASE: K+ = 20 from noise, s = 0.05
    {"fit.posterior_step_size": 0.141},
    {"fit.persistent": True, "fit.persistent_steps": 10},               # warm starts, 10 steps on a revisit
    {"model.sigma": 0.05},                                              # a sharper likelihood (the data's noise: 0.01)
    {"model.sigma": 0.05, "fit.posterior_step_size": 0.141},
]}
# the best of `sampler` (10 chains of 300 steps, the last 100 noise-free: 0.0143) and BASE (0.0259), on other seeds
SEARCHES["finalists"] = [{"fit.posterior_steps": 50}, {}]


def job(overrides, iterations, run_dir, seed=0):
    import torch
    torch.set_num_threads(1)
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.methods import method, train_selected, chain_failures, training_summary
    from odelebm.experiments.irregular import interpolation, VAL_MASK_SEED
    r = recipe("table1", "cpu", {"fit.iterations": iterations, **BASE, **overrides})
    d, m = r.data.load(), method("ODE-LEBM")
    path = Path(run_dir) / f"{slug('ODE-LEBM', overrides)}{f'-seed{seed}' if seed else ''}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    def val(e: int, model, **test) -> tuple[float, dict]:
        # (the validation mask and chains of the table's job with this seed)
        mse, p, _ = interpolation(m, model, r, d.val, RATIOS[e], VAL_MASK_SEED + seed, seed, **test)
        return mse, chain_failures(p)
    t0 = time.time()
    try:
        tr, chosen, sel = train_selected(m, r, d.train, [(seed, ra) for ra in RATIOS], checkpoint=path, resume=True,
                                         validate=lambda e, model: val(e, model, samples=1)[0],
                                         every=r.test.select_every)
    except FloatingPointError as e:   # a diverged candidate is a result of the search, not the end of it
        return dict(overrides=overrides, seed=seed, diverged=str(e)[:200], seconds=round(time.time() - t0, 1))
    train_seconds = time.time() - t0
    scores = {}
    for which, models in (("chosen", chosen), ("last", tr.members())):
        for label, test in TESTS.items():
            s0, cells = time.time(), [val(e, model, **test) for e, model in enumerate(models)]
            scores[f"{which}|{label}"] = dict(mse=[c[0] for c in cells], fails=[c[1] for c in cells],
                                              seconds=round(time.time() - s0, 1))
    hists = tr.history if isinstance(tr.history, list) else [tr.history]
    return dict(overrides=overrides, seed=seed, seconds=round(time.time() - t0, 1),
                train_seconds=round(train_seconds, 1), training=[training_summary(h, s) for h, s in zip(hists, sel)],
                scores=scores)


def mean(xs) -> float:
    return sum(xs) / len(xs)


def table(rows: list[dict], which: str) -> list[str]:
    "Mean validation MSE over the ratios, per candidate and test procedure, at the `which` iterate."
    lines = ["| overrides | seed | s / iteration | chosen iterations | training chains dropped | " + " | ".join(TESTS)
             + " |",
             "|---|---|---|---|---|" + "---|" * len(TESTS)]
    for o in rows:
        if "diverged" in o:
            lines.append(f"| {o['overrides'] or '(BASE)'} | {o['seed']} | diverged: {o['diverged']} | | |"
                         + " |" * len(TESTS))
            continue
        tr = o["training"]
        cells = []
        for label in TESTS:
            s = o["scores"][f"{which}|{label}"]
            fails = [sum(f.get(k, 0) for f in s["fails"]) for k in ("restarted", "fallbacks")]
            cells.append(f"{mean(s['mse']):.4f}" + (f" ({fails[0]}, {fails[1]})" if any(fails) else ""))
        lines.append(f"| {o['overrides'] or '(BASE)'} | {o['seed']} | {tr[0].get('seconds_per_iteration')} | "
                     f"{' / '.join(str(t['selected_iteration']) for t in tr)} | "
                     f"{sum(t.get('dropped_chains', 0) for t in tr)} | " + " | ".join(cells) + " |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", default="sampler", choices=sorted(SEARCHES))
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-dir", default="runs/search/table1_sampler")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/table1_sampler_<search>.json")
    a = ap.parse_args()
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.irregular import trivial_mse, VAL_MASK_SEED, TRIVIAL
    r = recipe("table1", "cpu")
    d = r.data.load()
    trivial = {sd: {str(ra): trivial_mse(d.val, ra, VAL_MASK_SEED + sd) for ra in RATIOS} for sd in a.seeds}
    rows = parallel_map(job, [(o, a.iterations, a.run_dir, sd) for o in SEARCHES[a.search] for sd in a.seeds],
                        a.workers, desc="candidates")
    at = commit()
    triv = "; ".join(f"{k}, seed {sd}: " + " / ".join(f"{trivial[sd][str(ra)][k]:.4f}" for ra in RATIOS)
                     for sd in a.seeds for k in TRIVIAL)
    lines = ["# Table 1 posterior-sampler search (validation split)", "",
             f"Search `{a.search}`: ODE-LEBM under the `table1` recipe (profile `cpu`) at commit {at} with the sampler "
             f"`BASE` ({BASE}) and the overrides shown; {a.iterations} iterations, seeds {a.seeds}, the four ratios "
             f"{RATIOS} as one ensemble, {r.data.n_train} training series; scored on the {r.data.n_val} validation "
             "series (the MSE over all 100 points from the fixed validation mask of each ratio and seed). Each cell: "
             "the mean over the four ratios (chains restarted, series that fell back to their mean, where any). Per "
             f"ratio in the JSON. Trivial predictors per ratio: {triv}.", "",
             "## The iterate chosen on validation", ""] + table(rows, "chosen") + [
             "", "## The last iterate", ""] + table(rows, "last")
    write_results(a.out or f"benchmarks/results/table1_sampler_{a.search}.json", "\n".join(lines) + "\n",
                  dict(search=a.search, iterations=a.iterations, seeds=a.seeds, commit=at, trivial=trivial, base=BASE,
                       tests=TESTS,
                       ratios=RATIOS, rows=rows))


if __name__ == "__main__":
    main()
