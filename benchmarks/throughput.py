"""Throughput benchmark (issue 15): ensembles of ODE-LEBMs in one pass, and the solver kernel on a GPU.

Times, in one run on one device (ratios compare calls made minutes apart at most):
- one posterior Langevin step of the Table 1 sinusoid model (batch 50, 100 points; a 20-step chain / 20), with the
  PyTorch fused solver and, where Triton runs, the one-launch kernel; step by step and, on a GPU, replayed as a CUDA
  graph; alone and for an ensemble of E;
- one training iteration (20 posterior + 20 prior steps) of Latent ODE, of one ODE-LEBM and of an ensemble of E
  ODE-LEBMs, in the sinusoid and Spiral2D setups of `odelebm.experiments.timing`;
- the wall-time estimate of the paper-budget Table 1 grid: 12 ODE-LEBM members x 8000 iterations;
- with --baselines, the Table 1 baselines: one `fit_baseline` iteration against one `fit_baselines` iteration of E.

    python benchmarks/throughput.py                          # CPU, 1 thread, E = 12
    python benchmarks/throughput.py --threads 2 --out benchmarks/results/throughput_cpu2.json
    python benchmarks/throughput.py --device cuda --out benchmarks/results/throughput_cuda.json
    python benchmarks/throughput.py --quick                  # tiny sizes: a functional check, numbers not comparable
    python benchmarks/throughput.py --baselines --setups none --out benchmarks/results/throughput_baselines_cpu.json
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, statistics, sys, time
from pathlib import Path
import torch
from odelebm.experiments.timing import (SETUPS, time_latent_ode, time_odelebm, time_ensemble, posterior_step_seconds,
                                        matmul_gflops)
from odelebm.kernels import triton_available
from odelebm.baselines import fit_baseline, fit_baselines
from odelebm.experiments.recipes import recipe
from odelebm.experiments.methods import method, member_configs
from odelebm.experiments.irregular import METHODS

PAPER_ITERATIONS, PAPER_MEMBERS = 8000, 12   # Table 1 at the paper's budget: 500 epochs at batch 50; 4 ratios x 3 seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads on the CPU (default 1)")
    ap.add_argument("--members", type=int, default=12, help="ensemble size E (default 12: Table 1's ODE-LEBM members)")
    ap.add_argument("--setups", default="sinusoids,spiral2d", help="setups of the iteration rows")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 + 2 calls")
    ap.add_argument("--baselines", action="store_true",
                    help="also time the Table 1 baselines alone and as ensembles of --members")
    ap.add_argument("--out", default=None,
                    help="JSON results (default benchmarks/results/throughput_<device>.json); a .md twin beside it")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    warmup, repeats = (1, 2) if a.quick else (a.warmup, a.repeats)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    dev = a.device
    name = (torch.cuda.get_device_name(dev) if torch.device(dev).type == "cuda"
            else (platform.processor() or platform.machine()))
    machine = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), device=dev,
                   name=name, torch=torch.__version__, threads=torch.get_num_threads(), cores=os.cpu_count(),
                   triton=triton_available(dev), matmul_gflops=matmul_gflops(device=dev), load_before=os.getloadavg())
    log(f"{machine}")
    sin = SETUPS["sinusoids"](quick=a.quick)
    backends = ["torch"] + (["triton"] if triton_available(dev) else [])
    graphs = [False, True] if torch.device(dev).type == "cuda" else [False]   # CUDA graphs exist on a GPU only
    steps = {}
    for b in backends:
        for g in graphs:
            for e in (1, a.members):
                k = f"{b}, {'graph' if g else 'eager'}, E={e}"
                steps[k] = posterior_step_seconds(sin, b, warmup=warmup, repeats=repeats, device=dev, members=e,
                                                  graph=g)
                log(f"posterior step, {k}: {steps[k] * 1e3:.2f} ms")
    rows = []
    for sname in [n for n in a.setups.split(",") if n != "none"]:
        s = SETUPS[sname](quick=a.quick)
        for label, fn in (("Latent ODE", lambda: time_latent_ode(s, warmup, repeats, dev)),
                          ("ODE-LEBM", lambda: time_odelebm(s, 20, warmup, repeats, dev)),
                          (f"ensemble of {a.members}", lambda: time_ensemble(s, a.members, 20, warmup, repeats, dev))):
            start = time.perf_counter()
            r = fn()
            rows.append(dict(setup=sname, row=label, train_s=r["train_s"], train_runs=r["train_runs"]))
            log(f"{sname}: {label}: {r['train_s']:.4f} s/it ({time.perf_counter() - start:.0f} s)")
    by = {(r["setup"], r["row"]): r["train_s"] for r in rows}
    ratios = {}
    for sname in [n for n in a.setups.split(",") if n != "none"]:
        lone, lat, ens = by[(sname, "ODE-LEBM")], by[(sname, "Latent ODE")], by[(sname, f"ensemble of {a.members}")]
        ratios[sname] = dict(odelebm_vs_latent_ode=lone / lat, ensemble_vs_one=ens / lone,
                             throughput_gain=a.members * lone / ens)
    one, ens = by.get(("sinusoids", "ODE-LEBM")), by.get(("sinusoids", f"ensemble of {a.members}"))
    estimate = dict(members=PAPER_MEMBERS, iterations=PAPER_ITERATIONS, ensemble_members_measured=a.members,
                    ensemble_hours=ens * PAPER_ITERATIONS * (PAPER_MEMBERS / a.members) / 3600,
                    one_at_a_time_hours=one * PAPER_ITERATIONS * PAPER_MEMBERS / 3600) if one and ens else None
    baselines = time_baselines(a.members, 4 if a.quick else 2 + repeats, a.quick, dev, log) if a.baselines else []
    machine["load_after"] = os.getloadavg()
    result = dict(machine=machine, quick=a.quick, warmup=warmup, repeats=repeats, members=a.members,
                  posterior_step_s=steps, rows=rows, ratios=ratios, paper_table1_estimate=estimate, baselines=baselines,
                  command=" ".join(["python", "benchmarks/throughput.py",
                                    *(argv if argv is not None else sys.argv[1:])]))
    md = markdown(result)
    print(md)
    out = Path(a.out or f"benchmarks/results/throughput_{torch.device(dev).type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(f"# Throughput benchmark\n\n`{result['command']}`\n\n{md}")
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def time_baselines(members: int, iterations: int, quick: bool, dev: str, log) -> list[dict]:
    """Median seconds per iteration (after 2) of each Table 1 baseline alone and of `members` of it trained by
    `fit_baselines`."""
    r = recipe("table1", "cpu",
               {"baseline.iterations": iterations, **({"data.n_series": 20, "data.n_points": 6} if quick else {})})
    data = r.data.load().train
    out = []
    for name in METHODS[1:]:
        m = method(name)
        cfgs = member_configs(m, r, [(e, 0.3) for e in range(members)], dev)
        one = statistics.median(fit_baseline((torch.manual_seed(0), m.build(r))[1], data, cfgs[0]).seconds[2:])
        models = [(torch.manual_seed(e), m.build(r))[1] for e in range(members)]
        ens = statistics.median(fit_baselines(models, data, cfgs)[0].seconds[2:])
        out.append(dict(method=name, one_s=one, ensemble_s=ens))
        log(f"{name}: one {one:.4f} s/it, ensemble of {members} {ens:.4f} s/it")
    return out


def markdown(r: dict) -> str:
    m, E = r["machine"], r["members"]
    lines = [f"{m['name']} ({m['device']}), torch {m['torch']}, {m['threads']} thread(s), Triton kernel: "
             f"{'yes' if m['triton'] else 'no'}; {m['date']}; median of {r['repeats']} timed calls after {r['warmup']} "
             f"warm-up{' (QUICK sizes: not comparable)' if r['quick'] else ''}.", "",
             "One posterior Langevin step, Table 1 sinusoid model (batch 50 per member, 100 points, Euler):", "",
             "| solver | chain | members | ms per step | ms per member-step |", "|---|---|---|---|---|"]
    for k, v in r["posterior_step_s"].items():
        b, g, e = k.split(", ")
        e = int(e.removeprefix("E="))
        lines.append(f"| {b} | {g} | {e} | {v * 1e3:.2f} | {v * 1e3 / e:.2f} |")
    lines += ["", "One training iteration (20 posterior + 20 prior Langevin steps for ODE-LEBM; chains on CUDA graphs "
                  "on a GPU):", "",
              "| setup | row | s/it |", "|---|---|---|"]
    lines += [f"| {x['setup']} | {x['row']} | {x['train_s']:.4f} |" for x in r["rows"]]
    lines += [""]
    for s, q in r["ratios"].items():
        lines.append(f"- {s}: one ODE-LEBM iteration = **{q['odelebm_vs_latent_ode']:.2f}x** a Latent ODE iteration; "
                     f"an ensemble of {E} = **{q['ensemble_vs_one']:.2f}x** one model's iteration "
                     f"(**{q['throughput_gain']:.1f}x** the throughput of one model at a time)")
    if r.get("baselines"):
        lines += ["", "Table 1 baselines (batch 50, 100 points, ratio 0.3), seconds per iteration, one model and an "
                  f"ensemble of {E} (`fit_baselines`: torch.func.vmap over the stacked weights):", "",
                  "| baseline | one | ensemble | ensemble ÷ one | throughput gain |", "|---|---|---|---|---|"]
        lines += [f"| {b['method']} | {b['one_s']:.4f} | {b['ensemble_s']:.4f} | {b['ensemble_s'] / b['one_s']:.2f} | "
                  f"{E * b['one_s'] / b['ensemble_s']:.1f}x |" for b in r["baselines"]]
    if (e := r["paper_table1_estimate"]):
        lines += ["", f"Paper-budget Table 1 grid ({e['members']} ODE-LEBM members x {e['iterations']} iterations, "
                  f"training only): **{e['ensemble_hours']:.2f} h** as ensembles of {e['ensemble_members_measured']}, "
                  f"against {e['one_at_a_time_hours']:.2f} h one model at a time."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
