"""The test-time posterior sampler behind Table 5 (rotating MNIST), chosen on the VALIDATION split (never the test set).

Table 5 asks how the error moves with the number K of test-time posterior Langevin steps (the paper: 20, 50, 100, 1000).
Algorithm 2's chains are unadjusted: run long, they drift from the posterior by the step's bias, and the error rises
again at K = 1000. Each candidate of `CANDIDATES` is a test chain for every K (`TestConfig` fields); it predicts the 100
validation sequences (45 frames) of the seed-0 ODE-LEBM of the `rotmnist` recipe from their first 16 frames, and is
scored as Table 5 scores the test sequences: the MSE per pixel of frames 0-14 (T=15) and 15-44 (T=45), with the
seconds each prediction took and its runaway chains.

The model is trained (or, if the run folder holds it, loaded) as `table2_rotmnist` trains it, into `--run-dir`, so that
Table 5 and Table 2 at that profile find it there. Writes a Markdown table and JSON.

    python benchmarks/rotmnist_test_steps.py [--profile cpu] [--run-dir runs/cpu]
    python benchmarks/rotmnist_test_steps.py --set fit.posterior_steps=50 --run-dir /tmp/rotmnist-k50 \\
        --out benchmarks/results/rotmnist_test_steps_k50.json        # a model trained with longer chains
"""
import argparse, time
from searches import PLAIN, commit, write_results

STEPS = (20, 50, 100, 1000)
# test chains as functions of K: `TestConfig` fields; the first is Algorithm 2 as the paper states it
CANDIDATES = {
    "unadjusted (Algorithm 2)": lambda k: dict(PLAIN, steps=k),
    "the last 20% noise-free": lambda k: dict(PLAIN, steps=k, tail=k // 5),
    "MALA after 20 unadjusted": lambda k: dict(PLAIN, steps=k, adjust=True, warmup=min(k, 20)),
    "MALA throughout": lambda k: dict(PLAIN, steps=k, adjust=True),
    "unadjusted, half the step": lambda k: dict(PLAIN, steps=k, step_scale=0.5),
    "unadjusted, a quarter of the step": lambda k: dict(PLAIN, steps=k, step_scale=0.25),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--run-dir", default=None, help="default: runs/<profile>")
    ap.add_argument("--out", default="benchmarks/results/rotmnist_test_steps.json")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="recipe fields for the model (JSON values), e.g. fit.posterior_steps=50")
    ap.add_argument("--candidates", default=";".join(CANDIDATES), help="test chains, separated by ; (default: all)")
    a = ap.parse_args()
    import json
    overrides = {k: json.loads(v) for k, v in (x.split("=", 1) for x in a.set)}
    chosen = {c: CANDIDATES[c] for c in a.candidates.split(";")}
    import torch
    torch.set_num_threads(1)
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.store import run_paths
    from odelebm.experiments.rotmnist import train_all, load_model, load_data, evaluate
    r = recipe("rotmnist", a.profile, overrides)
    run_dir = str(run_paths(a.profile, a.run_dir, None)[0])
    info = train_all(["ODE-LEBM"], 1, r, run_dir, resume=True)[0]
    model, _ = load_model("ODE-LEBM", 0, r, run_dir)
    val = load_data(r).val
    rows = []
    for label, chain in chosen.items():
        for k in STEPS:
            test = chain(k)
            if (scale := test.pop("step_scale", None)) is not None: test["step_size"] = r.test_step_size * scale
            t0 = time.time()
            ev = evaluate(model, "ODE-LEBM", val, r, seed=0, **test)
            rows.append(dict(candidate=label, steps=k, test=test, mse15=ev["mse15"], mse45=ev["mse45"],
                             seconds=round(time.time() - t0, 1), restarted=ev.get("restarted", 0),
                             fallbacks=ev.get("fallbacks", 0)))
            print(rows[-1], flush=True)
    at = commit()
    lines = ["# Rotating MNIST: the test-time sampler against the number of steps (validation split)", "",
             f"The seed-0 ODE-LEBM of the `rotmnist` recipe (profile `{a.profile}`"
             f"{'; ' + ', '.join(f'{k} = {v}' for k, v in overrides.items()) if overrides else ''}: "
             f"{r.fit.iterations} iterations, {r.fit.posterior_steps} posterior steps per training chain, "
             f"trained at {', '.join(info.get('trained_at') or [info['commit']])}, iterate "
             f"{info['training'].get('selected_iteration')} chosen on "
             f"validation; {'loaded' if info.get('cached') else 'trained by this script'}), its chains' step "
             f"{r.test_step_size}; {len(val)} validation sequences predicted from their first {r.test.observed} "
             f"frames at commit {at}. Each cell: MSE per pixel over frames 15-44 (T=45) / frames 0-14 (T=15); "
             "chains restarted or series that fell back to their mean, where any; seconds per prediction.", "",
             "| test chain | " + " | ".join(f"K = {k}" for k in STEPS) + " | T=45 non-increasing in K |",
             "|---|" + "---|" * (len(STEPS) + 1)]
    for label in chosen:
        rs = [o for o in rows if o["candidate"] == label]
        cells = [f"{o['mse45']:.4f} / {o['mse15']:.4f}"
                 + (f" ({o['restarted']}, {o['fallbacks']})" if o["restarted"] or o["fallbacks"] else "")
                 + f", {o['seconds']} s" for o in rs]
        mono = all(b["mse45"] <= a_["mse45"] for a_, b in zip(rs, rs[1:]))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {'yes' if mono else 'no'} |")
    write_results(a.out, "\n".join(lines) + "\n",
                  dict(profile=a.profile, overrides=overrides, commit=at,
                       model=dict(commit=info["commit"], training=info["training"]), steps=STEPS, rows=rows))


if __name__ == "__main__":
    main()
