"""The search behind the `balls` recipe (Table 3), on the VALIDATION split (never the test set).

Each candidate (a method and recipe overrides: ODE-LEBM's posterior step and training chain length, the baselines'
rate) trains on the training sequences (seed 0) for `--iterations`, its iterate chosen on validation every
`--every` iterations as the table's runs choose it (`balls.validation_scores`: the MSE of all 20 frames of the
validation sequences, predicted from their first 5). The chosen iterate is then scored on the validation sequences
under every test procedure of `TESTS` (the baselines have one: their encoder):

- fit: the MSE of the 5 observed frames (did the posterior, or the encoder, explain what it saw);
- all: the MSE of all 20 frames (the table's T=20 on validation).

The trivial predictors (the blank frame, the last observed frame held, the mean observed frame) are printed beside them.
Each candidate's training is checkpointed under `--run-dir`, so an interrupted search resumes, and a finished one is
only re-scored. Candidates run in `--workers` processes (one torch thread each). Writes a Markdown table and JSON.

    python benchmarks/balls_search.py [--iterations 800] [--workers 2]
"""
import argparse, time
from pathlib import Path
from odelebm.experiments.executors import parallel_map
from searches import PLAIN, slug, commit, write_results

# test procedures of the Langevin-trained candidates: `TestConfig` fields; the first is Algorithm 2 as the paper states
TESTS = {
    "Alg. 2 (20 steps)": dict(PLAIN, steps=20),
    "100 steps": dict(PLAIN, steps=100),
    "100 steps, last 50 noise-free": dict(PLAIN, steps=100, tail=50),
}
SEARCHES = {"step": [
    ("ODE-LEBM", {"fit.posterior_steps": 50}),            # first: the longest
    ("ODE-LEBM", {}),                                      # the recipe: s = 0.2, borrowed from rotating MNIST
    ("ODE-LEBM", {"fit.posterior_step_size": 0.1}),
    ("ODE-LEBM", {"fit.posterior_step_size": 0.4}),
    ("Latent ODE", {}),                                    # MoNODE's Adam 2e-3
    ("Latent ODE", {"baseline.lr_gen": 1e-3}),             # rotating MNIST's rate
    ("Modulated ODE", {}),
    ("Modulated ODE", {"baseline.lr_gen": 1e-3}),
]}
# ODE-LEBM's chains see every training frame, its test chains the first 5: training on random subsets of the frames
# (Algorithm 1 with masks, as Table 1 trains) asks the model to be inferable from a few
SEARCHES["masks"] = [("ODE-LEBM", {"fit.obs_ratio": 0.25}), ("ODE-LEBM", {"fit.obs_ratio": 0.5})]


def job(name, overrides, iterations, every, run_dir):
    import torch
    torch.set_num_threads(1)
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.methods import method, train_selected, training_summary
    from odelebm.experiments.balls import validation_scores
    fields = {k: v for k, v in overrides.items() if k != "fit.obs_ratio"}   # a member's field, not the recipe's
    r = recipe("balls", "cpu", {"fit.iterations": iterations, "baseline.iterations": iterations, **fields})
    d, m = r.data.load(), method(name)
    path = Path(run_dir) / f"{slug(name, overrides)}-{iterations}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        trainer, (model,), sel = train_selected(m, r, d.train, [(0, overrides.get("fit.obs_ratio"))],
                                                checkpoint=path, resume=True,
                                                validate=lambda e, mod: validation_scores(m, mod, r, d.val)["all"],
                                                every=every)
    except FloatingPointError as e:   # a diverged candidate is a result of the search, not the end of it
        return dict(method=name, overrides=overrides, diverged=str(e)[:200])
    tests = TESTS if m.kind.test_fields else {"encoder": {}}   # an encoder has no test chain to vary
    return dict(method=name, overrides=overrides, seconds=round(time.time() - t0, 1),
                training=training_summary(trainer.history, sel[0]),
                tests={label: validation_scores(m, model.eval(), r, d.val, **test) for label, test in tests.items()})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", default="step", choices=sorted(SEARCHES))
    ap.add_argument("--iterations", type=int, default=800)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--run-dir", default="runs/search/balls")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/balls_search_<search>.json")
    a = ap.parse_args()
    from odelebm.experiments.recipes import recipe
    r = recipe("balls", "cpu")
    val, k = r.data.load().val, r.test.observed
    rows = parallel_map(job, [(n, o, a.iterations, a.every, a.run_dir) for n, o in SEARCHES[a.search]], a.workers,
                        desc="candidates")
    def mse(pred, span):   # a trivial predictor's MSE over frames span
        return ((pred - val.x) ** 2)[:, span].mean().item()
    trivial = {name: dict(fit=mse(p, slice(0, k)), all=mse(p, slice(None))) for name, p in {
        "blank frame": 0 * val.x, "last observed frame held": val.x[:, k - 1:k].expand_as(val.x),
        "mean observed frame": val.x[:, :k].mean(1, keepdim=True).expand_as(val.x)}.items()}
    at = commit()
    lines = ["# Bouncing-ball search (validation split)", "",
             f"Search `{a.search}`: the `balls` recipe (profile `cpu`) at commit {at} with the overrides shown, "
             f"{a.iterations} iterations for every candidate, seed 0, {r.data.n_train} training sequences; the iterate "
             f"with the lowest validation MSE (all 20 frames from the first {k}), scored every {a.every} iterations, "
             f"then scored on the {len(val)} validation sequences. Each cell: *fit* (MSE of the {k} observed frames) / "
             "*all* (MSE of all 20 frames). Trivial predictors: "
             + "; ".join(f"{n} {v['fit']:.4f} / {v['all']:.4f}" for n, v in trivial.items()) + ".", "",
             "| method | overrides | s / iteration | chosen iteration | " + " | ".join(TESTS) + " |",
             "|---|---|---|---|" + "---|" * len(TESTS)]
    for o in rows:
        if "diverged" in o:
            lines.append(f"| {o['method']} | {o['overrides'] or '(recipe)'} | | diverged: {o['diverged']} |"
                         + " |" * (len(TESTS) - 1))
            continue
        t = o["training"]
        cells = ([f"{s['fit']:.4f} / {s['all']:.4f}" for s in o["tests"].values()] if len(o["tests"]) > 1 else
                 [f"{o['tests']['encoder']['fit']:.4f} / {o['tests']['encoder']['all']:.4f} (its encoder)"]
                 + ["–"] * (len(TESTS) - 1))
        lines.append(f"| {o['method']} | {o['overrides'] or '(recipe)'} | {t.get('seconds_per_iteration')} | "
                     f"{t['selected_iteration']} | " + " | ".join(cells) + " |")
    write_results(a.out or f"benchmarks/results/balls_search_{a.search}.json", "\n".join(lines) + "\n",
                  dict(search=a.search, iterations=a.iterations, every=a.every, commit=at, trivial=trivial,
                       tests=TESTS, rows=rows))


if __name__ == "__main__":
    main()
