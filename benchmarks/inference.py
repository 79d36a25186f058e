"""Inference-cost benchmark (paper Table 7 and beyond): a thin command line over `odelebm.experiments.timing`.

Times one training iteration and one test prediction of Latent ODE and of ODE-LEBM with 20 / 50 / 100 posterior
Langevin steps and with persistent or staged training chains, in the Spiral2D, Table 1 sinusoid and rotating-MNIST-sized
setups; reports peak memory and the arithmetic rate of one Langevin step against this machine's matmul rate.

    python benchmarks/inference.py                 # full sizes: 2 warm-up + 5 timed calls per row (about 10 min on 1
                                                     thread)
    python benchmarks/inference.py --quick         # small sizes, 1 + 2 calls: a functional check (numbers not
                                                     comparable)
    python benchmarks/inference.py --threads 2 --setups spiral2d --out /tmp/spiral.json
    python benchmarks/inference.py --ensemble 12   # adds a row: one iteration of 12 models trained at once
                                                     (odelebm.ensemble)
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path
from odelebm.experiments.timing import SETUPS, run_benchmark, markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes and 1 warm-up + 2 timed calls (a functional check)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated subset of {','.join(SETUPS)}")
    ap.add_argument("--steps", default="20,50,100", help="posterior Langevin steps of the ODE-LEBM rows")
    ap.add_argument("--fast-steps", type=int, default=5, help="steps per revisit of the persistent-chain row")
    ap.add_argument("--fast-stages", type=int, default=2, help="iterations a chain spans in the staged-chain row")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls per row (default 2; --quick 1)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed calls per row, median reported (default 5; --quick 2)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="time every setup's rows this many times in turn; ratios: median over rounds")
    ap.add_argument("--ensemble", type=int, default=0,
                    help="also time an ensemble of this many ODE-LEBMs per iteration")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="benchmarks/results/inference.json",
                    help="JSON results file (a .md twin is written beside it)")
    a = ap.parse_args(argv)
    names = [s.strip() for s in a.setups.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SETUPS))
    if unknown: ap.error(f"unknown setup(s) {unknown}; choose from {list(SETUPS)}")
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 2)
    repeats = a.repeats if a.repeats is not None else (2 if a.quick else 5)
    steps = [int(k) for k in a.steps.split(",")]
    log = lambda s: print(s, file=sys.stderr, flush=True)
    result = run_benchmark([SETUPS[n](quick=a.quick) for n in names], steps, a.fast_steps, warmup, repeats, a.threads,
                           a.device, log, a.fast_stages, a.rounds, a.ensemble)
    result["command"] = " ".join(["python", "benchmarks/inference.py", *(argv if argv is not None else sys.argv[1:])])
    result["quick"] = a.quick
    md = markdown(result)
    print(md)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(f"# Inference benchmark\n\n`{result['command']}`\n\n{md}")
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
