"""The frame decoder's last transposed convolution on a CPU: oneDNN's kernel (plain `nn.ConvTranspose2d`) against
`FrameDeconv` (ATen's forward, the convolution backward for the gradients), alternated in rounds.

Rows, one thread by default:
- the layer alone at the rotating-MNIST decoder's size (400 frames of 16 x 14 x 14 -> 1 x 28 x 28) and the bouncing
  balls' (500 frames of 8 x 14 x 14 -> 1 x 28 x 28): forward; forward and input gradient (a posterior Langevin step:
  frozen weights); forward and every gradient (a generator update);
- one training iteration (`Learner.step`) of the rotating-MNIST and bouncing-ball ODE-LEBMs of the recipes, on random
  frames of the recipes' sizes, and of the bouncing-ball ensemble of 3 that Table 3 trains (under `vmap`, where
  `FrameDeconv` is the plain layer: that row should not move).

    python benchmarks/frame_decoder.py                 # 1 thread, 3 rounds
    python benchmarks/frame_decoder.py --threads 2 --out benchmarks/results/frame_decoder_2threads.json
    python benchmarks/frame_decoder.py --quick         # tiny sizes: a functional check only
"""
from __future__ import annotations
import argparse, contextlib, dataclasses, statistics, sys
from pathlib import Path
import torch
from torch import nn
from odelebm.emission import FrameDeconv
from odelebm.ensemble import Ensemble
from odelebm.experiments.recipes import recipe
from odelebm.experiments.timing import time_calls
from odelebm.learner import Learner
from odelebm.model import ODELEBM
from odelebm.sequences import SequenceData
sys.path.insert(0, str(Path(__file__).parent))
from searches import alternating_table, commit, machine, write_results  # noqa: E402

KERNELS = ("oneDNN", "FrameDeconv")


@contextlib.contextmanager
def kernel(name: str):
    "Every `FrameDeconv` runs as the plain `nn.ConvTranspose2d` (oneDNN) or as itself, inside the block."
    if name == "FrameDeconv": yield; return
    ours = FrameDeconv.forward
    FrameDeconv.forward = nn.ConvTranspose2d.forward
    try: yield
    finally: FrameDeconv.forward = ours


def layer_calls(frames: int, channels: int) -> dict:
    "The three calls of one 4x4 stride-2 layer from `channels` x 14 x 14 to one channel, on `frames` frames."
    torch.manual_seed(0)
    layer = FrameDeconv(channels, 1, 4, stride=2, padding=1)
    x = torch.randn(frames, channels, 14, 14, requires_grad=True)
    g = torch.randn(frames, 1, 28, 28)
    def frozen():
        layer.requires_grad_(False)
        try: return torch.autograd.grad(layer(x), x, g)
        finally: layer.requires_grad_(True)
    return {"forward": lambda: layer(x).detach(), "forward + input gradient": frozen,
            "forward + every gradient": lambda: torch.autograd.grad(layer(x), (x, *layer.parameters()), g)}


def learner(name: str, quick: bool, members: int = 1) -> Learner:
    """The recipe's ODE-LEBM (an ensemble of `members` > 1) on random frames of its sizes (batch 25; 16 frames for
    rotating MNIST, 20 for the balls)."""
    r = recipe(name)
    batch, frames = (2, 3) if quick else (25, 16 if name == "rotmnist" else 20)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, frames, 1, 28, 28, generator=g)
    if r.model.likelihood == "bernoulli": x = x.round()
    t = 0.1 * torch.arange(frames, dtype=torch.get_default_dtype())
    torch.manual_seed(0)
    fit = dataclasses.replace(r.fit, batch_size=batch, progress=False)
    if members == 1: return Learner(ODELEBM(r.model), SequenceData(t, x), fit)
    return Learner(Ensemble([ODELEBM(r.model) for _ in range(members)]), SequenceData(t, x),
                   [dataclasses.replace(fit, seed=s) for s in range(members)])


def measure(calls: dict, warmup: int, repeats: int, log) -> dict[str, float]:
    out = {k: statistics.median(time_calls(f, warmup, repeats)) for k, f in calls.items()}
    for k, v in out.items(): log(f"  {k}: {v * 1e3:.2f} ms")
    return out


def markdown(res: dict) -> str:
    return "\n".join(alternating_table(res, "The frame decoder's last layer on a CPU: oneDNN against `FrameDeconv`",
                                       KERNELS, "kernels")) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 + 2 calls, 1 round")
    ap.add_argument("--out", default="benchmarks/results/frame_decoder.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    warmup, repeats, n_rounds = (1, 2, 1) if a.quick else (a.warmup, a.repeats, a.rounds)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    calls = {}
    for what, frames, channels in (("rotating MNIST", 400, 16), ("bouncing balls", 500, 8)):
        frames = 4 if a.quick else frames
        calls |= {f"{what} layer ({frames} frames, {channels} -> 1 channel): {k}": f
                  for k, f in layer_calls(frames, channels).items()}
    for name, what in (("rotmnist", "rotating MNIST"), ("balls", "bouncing balls")):
        calls[f"{what}: ODE-LEBM training iteration"] = learner(name, a.quick).step
    calls["bouncing balls: ensemble of 3 ODE-LEBMs, training iteration"] = learner("balls", a.quick, 3).step
    rounds, orders = [], []
    for r in range(n_rounds):
        order = KERNELS if r % 2 == 0 else KERNELS[::-1]
        orders.append("/".join(order))
        got = {}
        for k in order:
            log(f"round {r + 1}/{n_rounds}, {k}:")
            with kernel(k): got[k] = measure(calls, warmup, repeats, log)
        rounds.append(got)
    res = dict(machine=machine(), commit=commit(), quick=a.quick, warmup=warmup, repeats=repeats, rounds=rounds,
               orders=orders, command=" ".join(["python", "benchmarks/frame_decoder.py",
                                                *(argv if argv is not None else sys.argv[1:])]))
    write_results(Path(a.out), markdown(res), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
