"""Checks of the GPU path, for a machine with a CUDA device (CI has none; the CPU tests cover the same code eagerly).

1. `odelebm.dynamics.check_kernel`: the Triton solver kernel against the PyTorch fused solver (values, gradients, stacked members).
2. Posterior chains replayed as a CUDA graph against step-by-step chains, without noise (deterministic): same samples.
3. A short ensemble training of 12 Table 1 models with graphed chains: finite, and the members' MSE falls on average.

    python benchmarks/gpu_check.py [--device cuda] [--iterations 300]
"""
from __future__ import annotations
import argparse, math, sys, time
import torch
from odelebm.dynamics import check_kernel
from odelebm.kernels import triton_available
from odelebm.model import ODELEBM, ModelConfig
from odelebm.learner import FitConfig
from odelebm.ensemble import Ensemble, EnsembleLearner
from odelebm.data_sinusoids import make_sinusoids
from odelebm.irregular import Table1Setup


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iterations", type=int, default=300)
    a = ap.parse_args(argv)
    dev = a.device
    if triton_available(dev):
        for r in check_kernel(dev): print("kernel", r)
    else: print("kernel: triton cannot run on", dev)
    s = Table1Setup()
    data = make_sinusoids(200, s.n_points, seed=0).train
    torch.manual_seed(0)
    model = ODELEBM(ModelConfig(z0_dim=s.latent_dim, ebm_hidden=s.ebm_hidden, sigma=s.sigma, solver=s.solver, max_step=None)).to(dev)
    x, t, mask = torch.nan_to_num(data.x[:50]).to(dev), data.t.to(dev), data.mask[:50].to(dev)
    init = torch.randn(50, model.latent_dim, device=dev)
    # an untrained model: step 0.01 (paper Table 8), and runaway chains set aside as in training
    eager, ok_e = model.sample_posterior(x, t, mask, 20, 0.01, init=init, noise=False, graph=False, runaway="drop")
    graphed, ok_g = model.sample_posterior(x, t, mask, 20, 0.01, init=init, noise=False, graph=True, runaway="drop")
    assert torch.equal(ok_e, ok_g) and bool(ok_e.any())
    diff = (eager - graphed)[ok_e].abs().max().item()
    print(f"graph vs eager posterior chain (no noise, 20 steps): max |difference| {diff:.2e}")
    assert diff < 1e-4, diff
    cfgs = [FitConfig(iterations=a.iterations, batch_size=s.batch_size, prior_steps=s.prior_steps, prior_step_size=s.prior_step_size,
                      posterior_steps=s.posterior_steps, posterior_step_size=s.posterior_step_size, lr_gen=s.lr_gen, lr_ebm=s.lr_ebm,
                      lr_decay=s.lr_decay, obs_ratio=r, seed=sd, device=dev, progress=False)
            for sd in range(3) for r in (0.1, 0.2, 0.3, 0.5)]
    models = []
    for k in cfgs:
        torch.manual_seed(k.seed); models.append(ODELEBM(model.config))
    learner = EnsembleLearner(Ensemble(models), data, cfgs)
    start = time.perf_counter()
    learner.fit()
    sec = (time.perf_counter() - start) / a.iterations
    first = [sum(h.mse[:10]) / 10 for h in learner.history]
    last = [sum(h.mse[-10:]) / 10 for h in learner.history]
    print(f"ensemble of {len(cfgs)}: {a.iterations} iterations, {sec:.4f} s/it; mean MSE of the first / last 10 iterations per member:")
    for k, f, l in zip(cfgs, first, last): print(f"  seed {k.seed} ratio {k.obs_ratio}: {f:.4f} -> {l:.4f}")
    assert all(map(math.isfinite, last)) and sum(last) < sum(first), "the ensemble did not learn"
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
