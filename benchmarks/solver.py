"""What each solver change buys: one posterior Langevin step's ODE work on the sinusoid setup (Table 1 recipe).

Times the forward solve plus the gradient with respect to the start state (what a Langevin step needs) and the
forward solve plus all gradients (what the generator update needs) for the autograd grid loop and the fused solver,
with the weights trainable or frozen (`odelebm.langevin.frozen`, as the samplers run), and the full posterior
Langevin step of the model; prints a Markdown table and writes a JSON file.

    python benchmarks/solver.py [--batch 50] [--points 100] [--repeats 200] [--out benchmarks/results/solver.json]
"""
import argparse, json, platform, statistics, subprocess, time
from pathlib import Path
import torch
from odelebm.dynamics import solve
from odelebm.langevin import frozen
from odelebm.model import ODELEBM
from odelebm.experiments.recipes import recipe


def median_ms(fn, repeats: int) -> float:
    for _ in range(5): fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); out.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/solver.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = recipe("table1")
    torch.manual_seed(0)
    model = ODELEBM(r.model)
    f, t = model.func, torch.cat([torch.zeros(1), torch.rand(a.points - 1).sort().values * 5])
    z = torch.randn(a.batch, r.model.z0_dim, requires_grad=True)
    x, mask = torch.randn(a.batch, a.points, 1), torch.rand(a.batch, a.points) < 0.5
    rows = []
    for fused in (False, True):
        name = "fused" if fused else "autograd loop"
        grad_z = lambda: torch.autograd.grad(solve(f, z, t, r.model.solver, fused=fused).square().sum(), z)
        grad_all = lambda: torch.autograd.grad(solve(f, z, t, r.model.solver, fused=fused).square().sum(),
                                               [z, *f.parameters()])
        rows.append((name, "solve + grad z, weights trainable", median_ms(grad_z, a.repeats)))
        with frozen(f): rows.append((name, "solve + grad z, weights frozen", median_ms(grad_z, a.repeats)))
        rows.append((name, "solve + all gradients", median_ms(grad_all, a.repeats)))
    for fused in (False, True):
        model.config.fused_solver = fused
        step = lambda: model.sample_posterior(x, t, mask, n_steps=1, step_size=r.fit.posterior_step_size)
        rows.append(("fused" if fused else "autograd loop", "posterior Langevin step (model, frozen weights)",
                     median_ms(step, a.repeats)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [f"Sinusoid setup (latent {r.model.z0_dim}, ODE 10-100-10 tanh, {r.model.solver}), batch {a.batch}, "
             f"{a.points} grid points; median of {a.repeats} calls, {a.threads} torch thread(s), torch "
             f"{torch.__version__}, commit {commit}.", "",
             "| solver | measured | ms | vs autograd loop |", "|---|---|---|---|"]
    ref = {what: ms for name, what, ms in rows if name == "autograd loop"}
    for name, what, ms in rows: lines.append(f"| {name} | {what} | {ms:.2f} | {ref[what] / ms:.2f}x |")
    md = "\n".join(lines)
    print(md)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(args=vars(a), rows=[dict(solver=n, measured=w, ms=m) for n, w, m in rows],
                                   commit=commit, torch=torch.__version__, machine=platform.machine()), indent=1))
    out.with_suffix(".md").write_text("# Solver benchmark\n\n" + md + "\n")


if __name__ == "__main__":
    main()
