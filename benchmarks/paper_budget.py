"""The price of the paper profile: every table's training at the paper's budgets, priced from seconds per iteration
measured here.

For each experiment and method: the paper profile's iterations (`odelebm.experiments.profiles.PAPER`) times the seconds
of one training iteration measured on this machine, with the members trained the way the notebooks train them
(`run_jobs`: a method's members as one ensemble where it allows, else one model at a time). The models, batch sizes
and samplers are the recipes' (the paper profile changes only iterations and, for rotating MNIST, where its digits
come from); the data here are small (enough for one batch), which leaves the seconds per iteration unchanged.
Validation scoring, test-time chains and data generation are not priced: training only.

    python benchmarks/paper_budget.py                              # CPU, 1 thread
    python benchmarks/paper_budget.py --device cuda --out benchmarks/results/paper_budget_cuda.json
    python benchmarks/paper_budget.py --quick                      # 1 + 1 iterations: a functional check only
"""
from __future__ import annotations
import argparse, datetime, os, platform, statistics, sys, time
from pathlib import Path
import torch
from odelebm.experiments import balls, irregular, mujoco, rotmnist, spiral
from odelebm.experiments.methods import method, trainer_for
from odelebm.experiments.profiles import PAPER
from odelebm.experiments.recipes import recipe
sys.path.insert(0, str(Path(__file__).parent))
from searches import commit, write_results  # noqa: E402

# experiment -> (its notebooks, recipe, methods, members per method, whether the notebooks train a method's members
# as one ensemble, runs of those members, small data for timing)
EXPERIMENTS = {
    "table1": ("table1_irregular", "table1", irregular.METHODS, 12, True, 1, {"data.n_series": 200, "data.n_val": 8}),
    # one job per method and seed (experiments.rotmnist.train_all)
    "rotmnist": ("table2_rotmnist, table10_11_ablations", "rotmnist", rotmnist.METHODS, 3, False, 1,
                 {"data.n_train": 50, "data.n_test": 10}),
    "spiral": ("table6_spiral", "spiral", spiral.METHODS, 3, True, 1, {}),
    "balls": ("table3_balls", "balls", balls.METHODS, 3, True, 1,
              {"data.n_train": 50, "data.n_val": 5, "data.n_test": 5}),
    # three environments of the same sizes but for the state (14 / 16 / 18): the hopper's price, three times
    "mujoco": ("table4_mujoco", "mujoco", mujoco.METHODS, 3, True, len(mujoco.DIMS), {"data.n_traj": 200}),
}
# a member's `(seed, observation ratio)`: Table 1's four ratios for each seed, elsewhere the seed alone
RATIOS = {"table1": (0.1, 0.3, 0.5, 0.7)}


def members(experiment: str, n: int) -> list[tuple[int, float | None]]:
    ratios = RATIOS.get(experiment, (None,))
    return [(seed, ratio) for seed in range(n // len(ratios)) for ratio in ratios][:n]


def price(experiment: str, device: str, warmup: int, repeats: int, log) -> list[dict]:
    "One row per method of `experiment`: how it trains its members, seconds per iteration, paper iterations, hours."
    notebooks, name, methods, n, together, runs, small = EXPERIMENTS[experiment]
    r = recipe(name, "cpu", small)
    paper = recipe(name, "paper")
    data = r.data.load().train
    rows = []
    for mname in methods:
        m = method(mname)
        group = n if together and m.ensemble else 1   # members per training run
        trainer = trainer_for(m, r, data, members(experiment, group), device)
        seconds = []
        for i in range(warmup + repeats):
            if device.startswith("cuda"): torch.cuda.synchronize()
            start = time.perf_counter()
            trainer.step()
            if device.startswith("cuda"): torch.cuda.synchronize()
            if i >= warmup: seconds.append(time.perf_counter() - start)
        s = statistics.median(seconds)
        iterations = m.config(paper).iterations
        hours = s * iterations * (n // group) * runs / 3600
        rows.append(dict(experiment=experiment, notebooks=notebooks, method=mname, members=n * runs,
                         per_run=group, runs=(n // group) * runs, s_per_it=s, iterations=iterations, hours=hours,
                         posterior_steps=m.config(r).posterior_steps if m.kind.fit == "fit" else None))
        log(f"{experiment}: {mname}: {s:.3f} s/it x {iterations} x {(n // group) * runs} run(s) = {hours:.2f} h")
    return rows


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# The paper profile's price", "", f"`{res['command']}` at {res['commit']}", "",
             f"{m['name']} ({res['device']}), {m['cores']} cores, torch {m['torch']}, {m['threads']} thread(s); "
             f"{m['date']}; seconds per iteration: the median of {res['repeats']} after {res['warmup']} warm-up"
             f"{' (QUICK: not comparable)' if res['quick'] else ''}. Training only (no validation scoring, test "
             "chains or data generation); each run one after another on this device.", "",
             "| experiment | method | members | trained as | K+ | s / iteration | paper iterations | hours |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        how = f"{r['runs']} ensemble(s) of {r['per_run']}" if r["per_run"] > 1 else f"{r['runs']} single runs"
        lines.append(f"| {r['experiment']} | {r['method']} | {r['members']} | {how} | {r['posterior_steps'] or '–'} | "
                     f"{r['s_per_it']:.3f} | {r['iterations']} | {r['hours']:.2f} |")
    by = {}
    for r in res["rows"]: by[r["experiment"]] = by.get(r["experiment"], 0) + r["hours"]
    lines += ["", "| experiment | notebooks | hours |", "|---|---|---|"]
    lines += [f"| {e} | {EXPERIMENTS[e][0]} | {h:.1f} |" for e, h in by.items()]
    lines += [f"| **all** | | **{sum(by.values()):.1f}** |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--experiments", default=",".join(EXPERIMENTS))
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 warm-up and 1 timed iteration")
    ap.add_argument("--out", default="benchmarks/results/paper_budget_cpu.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    warmup, repeats = (1, 1) if a.quick else (a.warmup, a.repeats)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    dev = a.device
    machine = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   name=(torch.cuda.get_device_name(dev) if dev.startswith("cuda")
                         else platform.processor() or platform.machine()),
                   torch=torch.__version__, threads=torch.get_num_threads(), cores=os.cpu_count())
    rows = [r for e in a.experiments.split(",") for r in price(e, dev, warmup, repeats, log)]
    command = " ".join(["python", "benchmarks/paper_budget.py", *(argv if argv is not None else sys.argv[1:])])
    res = dict(machine=machine, device=dev, commit=commit(), quick=a.quick, warmup=warmup, repeats=repeats, rows=rows,
               paper_budgets=PAPER.budgets, command=command)
    write_results(Path(a.out), markdown(res), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
