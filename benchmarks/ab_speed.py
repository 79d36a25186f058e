"""Speed of the library before and after a change, measured in alternation on one machine.

Rows (Table 1 sinusoid setup of `odelebm.experiments.timing`, 1 torch thread): one ODE-LEBM training iteration (20 and
100 posterior steps) and one Algorithm 2 prediction batch, one iteration of an ensemble of 12 ODE-LEBMs, and one
iteration of the Latent ODE (RNN encoder) alone and as an ensemble of 12 (`fit_baselines`). Each round measures the code
at `--before` (a temporary git worktree) and then the working tree, each in a fresh process; the table gives the medians
over rounds and the median of the per-round ratios (after / before), which is what to read on a noisy machine, and the
price of a 5x longer posterior chain: the K+ = 100 iteration after over the K+ = 20 iteration before.

    python benchmarks/ab_speed.py --before d3cf75f --out benchmarks/results/restructure_speed
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, statistics, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 12


def measure(warmup: int, repeats: int) -> dict[str, float]:
    "Seconds of each row with the `odelebm` this process imports (median of `repeats` calls after `warmup`)."
    import torch
    from odelebm.experiments.timing import SETUPS, time_odelebm, time_ensemble
    from odelebm.baselines import fit_baseline, fit_baselines
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.methods import method, member_configs
    torch.set_num_threads(1)
    sin = SETUPS["sinusoids"]()
    lone = time_odelebm(sin, 20, warmup, repeats)
    out = {"ODE-LEBM, training iteration": lone["train_s"],
           "ODE-LEBM, training iteration, K+=100": time_odelebm(sin, 100, warmup, repeats)["train_s"],
           "ODE-LEBM, prediction batch (Algorithm 2)": lone["test_s"],
           f"ODE-LEBM ensemble of {MEMBERS}, training iteration":
               time_ensemble(sin, MEMBERS, 20, warmup, repeats)["train_s"]}
    r = recipe("table1", "cpu", {"baseline.iterations": warmup + repeats})
    data, m = r.data.load().train, method("Latent ODE (RNN enc)")
    cfgs = member_configs(m, r, [(e, 0.3) for e in range(MEMBERS)])
    torch.manual_seed(0)
    out["Latent ODE, training iteration"] = statistics.median(fit_baseline(m.build(r), data, cfgs[0]).seconds[warmup:])
    models = []
    for e in range(MEMBERS):
        torch.manual_seed(e); models.append(m.build(r))
    out[f"Latent ODE ensemble of {MEMBERS}, training iteration"] = statistics.median(
        fit_baselines(models, data, cfgs)[0].seconds[warmup:])
    return out


def run_in(tree: Path, warmup: int, repeats: int) -> dict[str, float]:
    "`measure` in a fresh process importing the `odelebm` of `tree`."
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, __file__, "--measure", "--warmup", str(warmup), "--repeats", str(repeats)],
                       env=env, capture_output=True, text=True, cwd=tree, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="the revision to compare with (a temporary worktree)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--measure", action="store_true", help="(internal) measure this process's odelebm and print JSON")
    ap.add_argument("--out", default=None, help="stem of the .json and .md results (default: print only)")
    a = ap.parse_args(argv)
    if a.measure:
        print(json.dumps(measure(a.warmup, a.repeats))); return 0
    if not a.before: ap.error("--before REV is required")
    before, after = git("rev-parse", "--short", a.before), git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        git("worktree", "add", "--detach", str(old), a.before)
        try:
            for k in range(a.rounds):
                b, n = run_in(old, a.warmup, a.repeats), run_in(ROOT, a.warmup, a.repeats)
                rounds.append(dict(before=b, after=n))
                print(f"round {k + 1}: " + "; ".join(f"{row}: {n[row] / b[row]:.3f}" for row in b),
                      file=sys.stderr, flush=True)
        finally: git("worktree", "remove", "--force", str(old))
    rows = []
    for row in rounds[0]["before"]:
        b = [r["before"][row] for r in rounds]; n = [r["after"][row] for r in rounds]
        rows.append(dict(row=row, before_s=statistics.median(b), after_s=statistics.median(n),
                         ratio=statistics.median(x / y for x, y in zip(n, b))))
    long, short = "ODE-LEBM, training iteration, K+=100", "ODE-LEBM, training iteration"
    longer = (statistics.median(r["after"][long] / r["before"][short] for r in rounds)
              if all(long in r["before"] for r in rounds) else None)
    res = dict(before=before, after=after + ("+dirty" if dirty else ""), rounds=rounds, rows=rows, longer_chain=longer,
               machine=platform.processor() or platform.machine(), cores=os.cpu_count(),
               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               command=" ".join(["python", "benchmarks/ab_speed.py", *(argv if argv is not None else sys.argv[1:])]))
    md = (f"# Speed before ({before}) and after ({res['after']})\n\n"
          f"`{res['command']}` on {res['machine']} ({res['cores']} cores), 1 torch thread, {res['date']}; {a.rounds} "
          f"rounds in alternation, each row a median of {a.repeats} calls after {a.warmup} warm-up. Times: medians "
          "over rounds; ratio: median of the per-round ratios after / before.\n\n"
          "| row | before, s | after, s | after / before |\n|---|---|---|---|\n"
          + "".join(f"| {r['row']} | {r['before_s']:.4f} | {r['after_s']:.4f} | {r['ratio']:.3f} |\n" for r in rows)
          + ("" if longer is None else f"\nA 5x longer posterior chain: the K+ = 100 iteration after / the K+ = 20 "
             f"iteration before, per round, median: **{longer:.3f}**.\n"))
    print(md)
    if a.out:
        Path(a.out).with_suffix(".json").write_text(json.dumps(res, indent=1))
        Path(a.out).with_suffix(".md").write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
