"""Generating Table 4's data at the paper's size: 10,000 trajectories x 100 states per environment (Hopper, Swimmer,
HalfCheetah).

Simulates each environment with `odelebm.data_mujoco.simulate` (the protocol of `nbs/api/14_data_mujoco`, seed 0, no
cache), and records the wall and CPU time, the rejected draws by cause, the largest |x|, and a SHA-256 of the
trajectories (two runs with the same MuJoCo give the same digest). Prints a Markdown table and writes it with a JSON
file.

    python benchmarks/mujoco_generation.py [--n 10000] [--steps 100] [--out benchmarks/results/mujoco_generation.json]
"""
import argparse, hashlib, json, platform, subprocess, time
from pathlib import Path
import numpy as np
from odelebm.data_mujoco import ENVIRONMENTS, simulate


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/mujoco_generation.json")
    a = ap.parse_args()
    import mujoco
    from importlib.metadata import version
    rows = []
    for name, env in ENVIRONMENTS.items():
        cpu0 = time.process_time()
        s = simulate(name, a.n, a.steps, a.seed, progress=True)
        rows.append(dict(env=env.title, domain=f"{env.domain}/{env.task}", dim=s.x.shape[-1], qvel_range=env.qvel_range,
                         wall_s=round(s.seconds, 1), cpu_s=round(time.process_time() - cpu0, 1), rejected=s.rejected,
                         drawn=a.n + sum(s.rejected.values()), max_abs=float(np.abs(s.x).max()),
                         sha256=hashlib.sha256(s.x.tobytes()).hexdigest()[:16]))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = dict(n=a.n, steps=a.steps, seed=a.seed, mujoco=mujoco.__version__, dm_control=version('dm_control'),
                machine=f"{platform.machine()}, {__import__('os').cpu_count()} cores", commit=commit)
    lines = ["# MuJoCo data generation", "",
             f"{a.n} trajectories x {a.steps} states per environment, seed {a.seed}, one raw physics step per state; "
             f"mujoco {meta['mujoco']}, dm_control {meta['dm_control']}; {meta['machine']}; commit {commit}. Wall and "
             "CPU time of `odelebm.data_mujoco.simulate` (one process, the dm_control step loop).", "",
             "| environment | dim | qvel ~ U(-a, a) | wall s | CPU s | drawn | rejected (PhysicsError / non-finite / "
             "bound) | max abs(x) | sha256[:16] |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rj = r["rejected"]
        lines.append(f"| {r['env']} ({r['domain']}) | {r['dim']} | {r['qvel_range']:g} | {r['wall_s']} | {r['cpu_s']} "
                     f"| {r['drawn']} | {rj['physics_error']} / {rj['non_finite']} / {rj['bound']} | "
                     f"{r['max_abs']:.1f} | `{r['sha256']}` |")
    md = "\n".join(lines) + "\n"
    print(md)
    out = Path(a.out)
    out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1) + "\n")
    out.with_suffix(".md").write_text(md)


if __name__ == "__main__":
    main()
