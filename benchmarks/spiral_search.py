"""The posterior-sampler search behind the `spiral` recipe (Table 6), on the VALIDATION split (never the test set).

Each candidate (a Langevin-trained method and recipe overrides: the training chain, its step, its length) trains on the
1000 training windows (seed 0) for `--iterations`, then is scored on the first `--n-val` validation windows under every
test procedure of `TESTS`:

- fit: its chains see all 100 points of a window; the MSE at those points against the noise floor (0.3^2 = 0.09), the
  question "did the posterior chains converge";
- extrapolation: its chains see the first 50 points; the MSE of its prediction of points 50-99 (the test's question,
  over the length a validation window has).

Both are `odelebm.experiments.spiral.validation_scores`, which Table 6 also reports.

The trivial predictor (the mean of the observed points) is printed beside them. Each candidate's training is
checkpointed under `--run-dir`, so an interrupted search resumes, and a finished one is only re-scored. Candidates run
in `--workers` processes (one torch thread each). Writes a Markdown table and JSON.

    python benchmarks/spiral_search.py --search sampler [--iterations 600] [--workers 2]
"""
import argparse, time
from pathlib import Path
from odelebm.experiments.executors import parallel_map
from searches import PLAIN, slug, commit, write_results

# test procedures: `TestConfig` fields; the first is Algorithm 2 as the paper states it
TESTS = {
    "Alg. 2 (20 steps)": dict(PLAIN, steps=20),
    "100 steps": dict(PLAIN, steps=100),
    "300 steps, last 100 noise-free": dict(PLAIN, steps=300, tail=100),
    "300 steps, MALA after 100": dict(PLAIN, steps=300, adjust=True, warmup=100),
}
# the sampler every candidate starts from (the recipe's before this search), so that a candidate means the same run
# whatever the recipe has since become
BASE = {"fit.posterior_steps": 20, "fit.posterior_step_size": "auto", "fit.persistent": False,
        "fit.persistent_steps": 5, "model.step_stability": None}
SEARCHES = {}
SEARCHES["sampler"] = [
    ("ODE-LEBM", {"fit.posterior_steps": 50}),                                # first: the longest
    ("ODE-LEBM", {}),                                                         # BASE: K+ = 20 from noise, "auto"
    ("ODE-LEBM", {"model.step_stability": 1.8, "fit.posterior_step_size": 0.1}),   # Table 1's capped step
    ("ODE-LEBM", {"fit.persistent": True}),                                   # warm starts, 5 steps on a revisit
    ("ODE-LEBM", {"fit.persistent": True, "fit.persistent_steps": 10}),
    ("ODE-LEBM", {"fit.persistent": True, "model.step_stability": 1.8, "fit.posterior_step_size": 0.1}),
]


def score(m, model, r, val) -> dict:
    """Every test procedure's `spiral.validation_scores` on `val` (with its runaway chains), and its seconds."""
    from odelebm.experiments.spiral import validation_scores
    out = {}
    for label, test in TESTS.items():
        t0 = time.time()
        out[label] = dict(validation_scores(m, model, r, val, **test), seconds=round(time.time() - t0, 1))
    return out


def job(name, overrides, iterations, n_val, run_dir):
    import torch
    torch.set_num_threads(1)
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.methods import method, train
    r = recipe("spiral", "cpu", {"fit.iterations": iterations, **BASE, **overrides})
    d = r.data.load()
    path = Path(run_dir) / f"{slug(name, overrides)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    m, t0 = method(name), time.time()
    try:
        tr = train(m, r, d.train, [(0, None)], checkpoint=path, resume=True)
        h = tr.history
        out = dict(train_mse_last100=sum(h.mse[-100:]) / len(h.mse[-100:]),
                   seconds_per_iteration=round(sum(h.seconds) / len(h.seconds), 3) if h.seconds else None,
                   tests=score(m, tr.members()[0], r, d.val[:n_val]))
    except FloatingPointError as e:   # a diverged candidate is a result of the search, not the end of it
        out = dict(diverged=str(e)[:200])
    return dict(method=name, overrides=overrides, seconds=round(time.time() - t0, 1), **out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", default="sampler", choices=sorted(SEARCHES))
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--n-val", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-dir", default="runs/search/spiral")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/spiral_search_<search>.json")
    a = ap.parse_args()
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.spiral import trivial_validation
    r = recipe("spiral", "cpu")
    val = r.data.load().val[:a.n_val]
    rows = parallel_map(job, [(n, o, a.iterations, a.n_val, a.run_dir) for n, o in SEARCHES[a.search]], a.workers,
                        desc="candidates")
    at, floor = commit(), r.data.noise ** 2   # the noise variance of the spirals
    triv = trivial_validation(val)
    lines = ["# Spiral2D sampler search (validation split)", "",
             f"Search `{a.search}`: the `spiral` recipe (profile `cpu`) at commit {at} with the sampler `BASE` "
             f"({BASE}) and the overrides shown, "
             f"{a.iterations} iterations, seed 0, {r.data.n_train} training windows; scored on the first {a.n_val} "
             f"validation windows. *fit*: MSE at the 100 points the chains saw (noise floor {floor:.2f}); *extrap.*: "
             f"MSE of points 50-99 predicted from the first 50. Each cell: fit / extrap. (chains restarted, "
             "series that fell back to their mean). Trivial predictor (the mean of the observed points): fit "
             f"{triv['fit']:.3f}, extrap. {triv['extrapolation']:.3f}.", "",
             "| method | overrides | s / iteration | training MSE (last 100) | " + " | ".join(TESTS) + " |",
             "|---|---|---|---|" + "---|" * len(TESTS)]
    for o in rows:
        if "diverged" in o:
            lines.append(f"| {o['method']} | {o['overrides'] or '(BASE)'} | | diverged: {o['diverged']} |"
                         + " |" * len(TESTS))
            continue
        cells = []
        for label in TESTS:
            s = o["tests"][label]
            failed = s.get("restarted") or s.get("fallbacks")
            fails = f" ({s.get('restarted', 0)}, {s.get('fallbacks', 0)})" if failed else ""
            cells.append(f"{s['fit']:.3f} / {s['extrapolation']:.3f}{fails}")
        lines.append(f"| {o['method']} | {o['overrides'] or '(BASE)'} | {o['seconds_per_iteration']} | "
                     f"{o['train_mse_last100']:.3f} | " + " | ".join(cells) + " |")
    write_results(a.out or f"benchmarks/results/spiral_search_{a.search}.json", "\n".join(lines) + "\n",
                  dict(search=a.search, iterations=a.iterations, n_val=a.n_val, commit=at, trivial=triv, floor=floor,
                       tests=TESTS, rows=rows))

if __name__ == "__main__":
    main()
