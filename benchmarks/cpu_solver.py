"""The compiled CPU solver (`odelebm.cpu_kernel`) against the PyTorch fused solver, alternating them in one run.

Rows, each measured with `solver_backend("torch")` (the eager fused solver) and `solver_backend("cpu")` (one C call
per solve), in `--rounds` rounds whose order alternates (torch first, then cpu first, ...); every ratio is taken within
a round and the median over rounds is reported:
- one posterior Langevin step of the Table 1 sinusoid model at batch 50 (a 20-step chain / 20), one model and an
  ensemble of `--members`;
- one training iteration (`Learner.step`) of one ODE-LEBM with K+ = 20, 50, 100 posterior steps (20 prior steps), of
  an ensemble of `--members` with K+ = 20 and 50, and of the Latent ODE, in the sinusoid and Spiral2D setups of
  `odelebm.experiments.timing`.

    python benchmarks/cpu_solver.py                                  # 1 thread, 3 rounds
    python benchmarks/cpu_solver.py --threads 2 --out benchmarks/results/cpu_solver_2threads.json
    python benchmarks/cpu_solver.py --quick                          # tiny sizes: a functional check only
"""
from __future__ import annotations
import argparse, statistics, sys, time
from pathlib import Path
import torch
from odelebm.cpu_kernel import cpu_kernel_available
from odelebm.dynamics import solver_backend
from odelebm.experiments.timing import SETUPS, posterior_step_seconds, time_latent_ode, time_odelebm, time_ensemble
sys.path.insert(0, str(Path(__file__).parent))
from searches import alternating_table, commit, machine, write_results  # noqa: E402

BACKENDS = ("torch", "cpu")


def measure(setups: dict, backend: str, members: int, warmup: int, repeats: int, log) -> dict[str, float]:
    "Every row's median seconds with the fused solver's `backend`."
    out = {}
    sin = setups["sinusoids"]
    for e in (1, members):
        out[f"posterior step, E={e}"] = posterior_step_seconds(sin, backend, warmup=warmup, repeats=repeats,
                                                                  members=e)
    for name, s in setups.items():
        out[f"{name}: Latent ODE"] = statistics.median(time_latent_ode(s, warmup, repeats)["train_runs"])
        for k in (20, 50, 100):
            out[f"{name}: ODE-LEBM, K+={k}"] = statistics.median(time_odelebm(s, k, warmup, repeats)["train_runs"])
        for k in (20, 50):
            out[f"{name}: ensemble of {members}, K+={k}"] = statistics.median(
                time_ensemble(s, members, k, warmup, repeats)["train_runs"])
    for k, v in out.items(): log(f"  {k}: {v * 1e3:.2f} ms")
    return out


def ratios(rounds: list[dict], members: int, setups: list[str]) -> dict[str, float]:
    "The targets' ratios, each within a round, median over rounds."
    def med(f): return statistics.median(f(r["torch"], r["cpu"]) for r in rounds)
    out = {f"posterior step, cpu / torch, E={e}": med(lambda t, c: c[f"posterior step, E={e}"] /
                                                      t[f"posterior step, E={e}"]) for e in (1, members)}
    for s in setups:
        one = lambda d, k: d[f"{s}: ODE-LEBM, K+={k}"]
        out[f"{s}: K+=100 (cpu) / K+=20 (torch)"] = med(lambda t, c: one(c, 100) / one(t, 20))
        out[f"{s}: K+=20 iteration, cpu / torch"] = med(lambda t, c: one(c, 20) / one(t, 20))
        for b in BACKENDS:
            pick = (lambda t, c: t) if b == "torch" else (lambda t, c: c)
            out[f"{s}: ensemble of {members} / one, K+=20 ({b})"] = med(
                lambda t, c: pick(t, c)[f"{s}: ensemble of {members}, K+=20"] / one(pick(t, c), 20))
            for k in (20, 50, 100):
                out[f"{s}: K+={k} / Latent ODE ({b})"] = med(
                    lambda t, c: one(pick(t, c), k) / pick(t, c)[f"{s}: Latent ODE"])
    return out


def markdown(res: dict) -> str:
    lines = alternating_table(res, "The compiled CPU solver against the PyTorch fused solver", BACKENDS, "backends")
    lines += ["", "Ratios (each within a round; median over rounds):", "", "| ratio | value |", "|---|---|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in res["ratios"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--members", type=int, default=12, help="ensemble size (default 12: Table 1's members)")
    ap.add_argument("--setups", default="sinusoids,spiral2d")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 + 2 calls, 1 round")
    ap.add_argument("--out", default="benchmarks/results/cpu_solver.json")
    a = ap.parse_args(argv)
    if not cpu_kernel_available(): sys.exit("the compiled CPU solver is unavailable here (see the warning above)")
    torch.set_num_threads(a.threads)
    warmup, repeats, n_rounds = (1, 2, 1) if a.quick else (a.warmup, a.repeats, a.rounds)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    setups = {n: SETUPS[n](quick=a.quick) for n in a.setups.split(",")}
    rounds, orders = [], []
    for r in range(n_rounds):
        order = BACKENDS if r % 2 == 0 else BACKENDS[::-1]
        orders.append("/".join(order))
        got = {}
        for b in order:
            start = time.perf_counter()
            log(f"round {r + 1}/{n_rounds}, {b}:")
            with solver_backend(b): got[b] = measure(setups, b, a.members, warmup, repeats, log)
            log(f"  ({time.perf_counter() - start:.0f} s)")
        rounds.append(got)
    res = dict(machine=machine(), commit=commit(), quick=a.quick, warmup=warmup, repeats=repeats, rounds=rounds,
               orders=orders, members=a.members, ratios=ratios(rounds, a.members, list(setups)),
               command=" ".join(["python", "benchmarks/cpu_solver.py", *(argv if argv is not None else sys.argv[1:])]))
    res_md = markdown(res)
    write_results(Path(a.out), res_md, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
