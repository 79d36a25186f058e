"""Checks of the GPU path, for a machine with a CUDA device (CI has none; the CPU tests cover the same code eagerly).

1. `odelebm.dynamics.check_kernel`: the Triton solver kernel against the PyTorch fused solver (values, gradients,
   stacked members).
2. Posterior chains replayed as a CUDA graph against step-by-step chains, without noise (deterministic): same samples.
3. A short ensemble training of 12 Table 1 models with graphed chains: finite, and the members' MSE falls on average.

    python benchmarks/gpu_check.py [--device cuda] [--iterations 300]
"""
from __future__ import annotations
import argparse, math, sys, time
import torch
from odelebm.dynamics import check_kernel
from odelebm.kernels import triton_available
from odelebm.model import ODELEBM
from odelebm.ensemble import Ensemble
from odelebm.learner import Learner
from odelebm.data_sinusoids import make_sinusoids
from odelebm.experiments.recipes import recipe, override
from odelebm.experiments.methods import method, member_configs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iterations", type=int, default=300)
    a = ap.parse_args(argv)
    dev = a.device
    if triton_available(dev):
        for r in check_kernel(dev): print("kernel", r)
    else: print("kernel: triton cannot run on", dev)
    r = recipe("table1")
    data = make_sinusoids(200, r.data.n_points, seed=0).train
    torch.manual_seed(0)
    model = ODELEBM(r.model).to(dev)
    x, t, mask = torch.nan_to_num(data.x[:50]).to(dev), data.t.to(dev), data.mask[:50].to(dev)
    init = torch.randn(50, model.latent_dim, device=dev)
    # an untrained model: step 0.01 (paper Table 8), and runaway chains set aside as in training
    eager, ok_e = model.sample_posterior(x, t, mask, 20, 0.01, init=init, noise=False, graph=False, runaway="drop")
    graphed, ok_g = model.sample_posterior(x, t, mask, 20, 0.01, init=init, noise=False, graph=True, runaway="drop")
    assert torch.equal(ok_e, ok_g) and bool(ok_e.any())
    diff = (eager - graphed)[ok_e].abs().max().item()
    print(f"graph vs eager posterior chain (no noise, 20 steps): max |difference| {diff:.2e}")
    assert diff < 1e-4, diff
    members = [(sd, ratio) for sd in range(3) for ratio in (0.1, 0.2, 0.3, 0.5)]
    cfgs = member_configs(method("ODE-LEBM"), override(r, {"fit.iterations": a.iterations}), members, dev)
    models = []
    for k in cfgs:
        torch.manual_seed(k.seed); models.append(ODELEBM(model.config))
    learner = Learner(Ensemble(models), data, cfgs)
    start = time.perf_counter()
    learner.fit()
    sec = (time.perf_counter() - start) / a.iterations
    first = [sum(h.mse[:10]) / 10 for h in learner.history]
    last = [sum(h.mse[-10:]) / 10 for h in learner.history]
    print(f"ensemble of {len(cfgs)}: {a.iterations} iterations, {sec:.4f} s/it; mean MSE of the first / last 10 "
          "iterations per member:")
    for k, f, l in zip(cfgs, first, last): print(f"  seed {k.seed} ratio {k.obs_ratio}: {f:.4f} -> {l:.4f}")
    assert all(map(math.isfinite, last)) and sum(last) < sum(first), "the ensemble did not learn"
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
