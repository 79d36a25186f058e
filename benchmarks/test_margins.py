"""How far the training tests' quantities move across CPU kernels, torch thread counts and initial weights: the
evidence behind their margins.

Short training runs with Langevin chains are chaotic: PyTorch picks other SIMD kernels on another CPU
(`ATEN_CPU_CAPABILITY`), or splits a reduction over another number of threads, the last bits of a product change and
training amplifies them. A test that trains must assert what holds across all of that. Two studies, each run in a fresh
process per (capability, threads, seed):

- `core`: tests/test_core.py's sine family, 300 iterations: posterior reconstruction MSE untrained and trained, and
  interpolation MSE over the full series from 30% of the points, beside linear interpolation's from the same points.
- `own`: the README example, 300 iterations: held-out MSE of new series observed at 5 / 12 / 30 points on a 0.05 clock
  or anywhere, beside linear interpolation's.
- `smoke`: the notebooks of the stored smoke reference (tests/reference/smoke_results.json) through
  `odelebm-reproduce --profile smoke`: each row's distance from the reference (the threads are the notebook kernel's).

    python benchmarks/test_margins.py --study core --seeds 0 1 2 3 4 5 6 7    # about 2 minutes per configuration
    python benchmarks/test_margins.py --study own --seeds 0 1 2              # about 1 minute per seed and configuration
    python benchmarks/test_margins.py --study smoke                          # about 2 minutes per configuration

The configurations default to those of `make test-cpus`: every capability this CPU runs on 1 thread, the native one on
2. Writes benchmarks/results/test_margins_<study>.{json,md} with the commit, date, CPU and settings.
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _unless_diverged(f, *args):
    "f(*args), or None where a Langevin chain ran away (the run is reported, not the study stopped)."
    from odelebm.langevin import LangevinDivergence
    try: return f(*args)
    except LangevinDivergence: return None


def measure_core(seed: int) -> dict:
    from test_core import train_sine_family, interpolation_mse, _recon_mse
    nan = float("nan")
    trained = _unless_diverged(train_sine_family, seed)
    if trained is None: return dict(before=nan, after=nan, interp=nan, linear=nan)   # training itself ran away
    test, model, before = trained
    interp, linear = _unless_diverged(interpolation_mse, model, test) or (nan, nan)
    after = _unless_diverged(_recon_mse, model, test)
    return dict(before=before, after=nan if after is None else after, interp=interp, linear=linear)


def measure_own(seed: int) -> dict:
    from test_own_series import train_readme_example, heldout_study
    model, train = train_readme_example(seed)[:2]
    return {f"{k}{'c' if clock else 'a'}": list(v) for (k, clock), v in heldout_study(model, train).items()}


REFERENCE = ROOT / "tests" / "reference" / "smoke_results.json"


def measure_smoke(seed: int, overrides: list[str] = ()) -> dict:
    """The smoke profile's rows of the notebooks the reference holds (the profile's own seed; `seed` is not used), with
    `--set` `overrides`."""
    from conftest import core
    names = list(json.loads(REFERENCE.read_text())["results"])
    with tempfile.TemporaryDirectory() as d:
        runs = Path(d) / "runs"
        r = subprocess.run([str(Path(sys.executable).parent / "odelebm-reproduce"), "--profile", "smoke", "--run-dir",
                            str(runs), "--only", ",".join(names), *(["--set", *overrides] if overrides else [])],
                           capture_output=True, text=True, cwd=ROOT)
        if r.returncode: raise RuntimeError(r.stdout[-2000:] + r.stderr[-2000:])
        return dict(rows={n: core(runs / "results" / f"{n}.json") for n in names})


STUDIES = {"core": measure_core, "own": measure_own, "smoke": measure_smoke}
LEGEND = {
    "core": "tests/test_core.py's sine family, 300 iterations from initial weights `seed`: posterior reconstruction "
            "MSE of the test series untrained (`before`, NaN where its chain ran away) and trained (`after`); MSE over "
            "the full series from 30% of the points (`interp`) and linear interpolation's from the same points "
            "(`linear`). NaN everywhere: training ran away.",
    "own": "The README example, 300 iterations from initial weights `seed`: held-out MSE of 60 new series observed at "
           "k points anywhere (`ka`) or on a 0.05 clock (`kc`), as model / linear interpolation.",
    "smoke": "Each row of tests/reference/smoke_results.json against the smoke profile run under each configuration.",
}


def worker(study: str, seed: int, threads: int, overrides: list[str]) -> None:
    "One measurement in this process: its JSON on the last line of stdout."
    import torch
    torch.set_num_threads(threads)
    t0 = time.time()
    out = STUDIES[study](seed, *([overrides] if overrides else []))
    print(json.dumps(dict(capability=torch.backends.cpu.get_cpu_capability(), threads=threads, seed=seed,
                          seconds=round(time.time() - t0, 1), **out)))


def run(study: str, capability: str, threads: int, seed: int, overrides: list[str]) -> dict:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": str(threads)}
    r = subprocess.run([sys.executable, __file__, "--worker", study, "--seed", str(seed), "--threads", str(threads),
                        *(["--set", *overrides] if overrides else [])],
                       env=env, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise RuntimeError(f"{study} {capability} {threads} threads seed {seed} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def smoke_summary(rows: list[dict], overrides: list[str] = ()) -> list[str]:
    """Markdown lines: per reference row, the largest distance from the stored value over all runs, and whether it is
    within the test's tolerance."""
    from test_reproduce import reference_tolerance
    import pytest
    ref = json.loads(REFERENCE.read_text())["results"]
    configs = ", ".join(f"{r['capability']}/{r['threads']}" for r in rows)
    lines = [f"Runs (capability/threads of the kernel): {configs}" + (f"; changed with --set {' '.join(overrides)}"
                                                                      if overrides else "") + ".", "",
             "| notebook | table | method | column | reference | max abs distance | max rel distance | tolerance | "
             "within |", "|---" * 9 + "|"]
    n_out = n = 0
    for name, stored in ref.items():
        for i, row in enumerate(stored):
            got = [r["rows"][name][i] for r in rows]
            assert all(list(g[:4]) == row[:4] for g in got), (name, row)
            d, tol = max(abs(g[4] - row[4]) for g in got), reference_tolerance(row)
            ok = all(g[4] == pytest.approx(row[4], **tol) for g in got)
            n, n_out = n + 1, n_out + (not ok)
            lines.append(f"| {name} | {row[0]} | {row[1]} | {row[2]} | {row[4]:.6g} | {d:.3g} | "
                         f"{d / abs(row[4]) if row[4] else float('inf'):.3g} | "
                         f"{', '.join(f'{k} {v:g}' for k, v in tol.items())} | {'yes' if ok else '**no**'} |")
    return lines[:1] + ["", f"**{n_out} of {n} rows outside the tolerance of tests/test_reproduce.py.**"] + lines[1:]


def summary(study: str, rows: list[dict], overrides: list[str] = ()) -> list[str]:
    "Markdown lines: every row, then each quantity's range over all rows and over seed 0's configurations."
    if study == "smoke": return smoke_summary(rows, overrides)
    keys = [k for k in rows[0] if k not in ("capability", "threads", "seed", "seconds")]
    fmt = lambda v: " / ".join(f"{x:.4g}" for x in v) if isinstance(v, list) else f"{v:.4g}"
    lines = ["| capability | threads | seed | " + " | ".join(keys) + " | s |", "|---" * (len(keys) + 4) + "|"]
    lines += [f"| {r['capability']} | {r['threads']} | {r['seed']} | " + " | ".join(fmt(r[k]) for k in keys)
              + f" | {r['seconds']} |" for r in rows]
    if study == "core":
        ok = [r for r in rows if r["interp"] == r["interp"]]   # NaN: a trained model's chain ran away
        ratio = [r["interp"] / r["linear"] for r in ok]
        lines += ["", f"- interpolation MSE: min {min(r['interp'] for r in ok):.4g}, median "
                  f"{statistics.median(r['interp'] for r in ok):.4g}, max {max(r['interp'] for r in ok):.4g}; linear "
                  f"interpolation {ok[0]['linear']:.4g} (deterministic); {len(rows) - len(ok)} run(s) of {len(rows)} "
                  "ran away",
                  f"- model / linear interpolation: min {min(ratio):.3g}, median {statistics.median(ratio):.3g}, max "
                  f"{max(ratio):.3g}",
                  "- trained / untrained reconstruction: max "
                  f"{max(r['after'] / r['before'] for r in ok if r['before'] == r['before']):.3g}; trained "
                  f"reconstruction max {max(r['after'] for r in ok):.4g}; untrained min "
                  f"{min(r['before'] for r in ok if r['before'] == r['before']):.4g}"]
        for s in sorted({r["seed"] for r in rows}):
            v = [r["interp"] for r in ok if r["seed"] == s]
            lines.append(f"- seed {s}: " + (f"interpolation MSE over configurations {min(v):.4g} - {max(v):.4g}" if v
                                            else "ran away in every configuration"))
        lines += ["", "What tests/test_core.py asserts, the median over seeds 0-2 of each configuration (a run that "
                      "ran away counts as +inf):", "",
                  "| configuration | trained reconstruction MSE | interpolation MSE |", "|---|---|---|"]
        for cap, n in dict.fromkeys((r["capability"], r["threads"]) for r in rows):
            mine = [r for r in rows if (r["capability"], r["threads"]) == (cap, n) and r["seed"] in (0, 1, 2)]
            med = lambda k: statistics.median_low([r[k] if r[k] == r[k] else float("inf") for r in mine])
            lines.append(f"| {cap}, {n} thread(s) | {med('after'):.4g} | {med('interp'):.4g} |")
    else:
        for k in (5, 12, 30):
            clock = [max(r[f"{k}c"][0], r[f"{k}a"][0]) / min(r[f"{k}c"][0], r[f"{k}a"][0]) for r in rows]
            beat = [max(r[f"{k}c"][0] / r[f"{k}c"][1], r[f"{k}a"][0] / r[f"{k}a"][1]) for r in rows]
            lines.append(f"- {k} points: on/off-clock ratio min {min(clock):.3g}, median "
                         f"{statistics.median(clock):.3g}, max {max(clock):.3g}; model / linear interpolation (worse "
                         f"of the two) max {max(beat):.3g}")
        mono = sum(r["5c"][0] > r["12c"][0] > r["30c"][0] and r["5a"][0] > r["12a"][0] > r["30a"][0] for r in rows)
        lines.append(f"- error falls with 5 -> 12 -> 30 observed points in {mono} of {len(rows)} runs")
    return lines


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    names = ([l.split(":", 1)[1].strip() for l in info.read_text().splitlines() if l.startswith("model name")]
             if info.exists() else [])
    return names[0] if names else platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", choices=sorted(STUDIES), default="core")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--configs", nargs="+", default=None, metavar="CAPABILITY/THREADS",
                    help="e.g. default/1 avx2/1; default: every capability of this CPU on 1 thread, the native one on "
                         "2 (as make test-cpus)")
    ap.add_argument("--render", action="store_true", help="rewrite the study's .md from its stored .json")
    ap.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                    help="smoke study: a change to the computation (odelebm-reproduce --set), to see that it moves "
                         "rows beyond the tolerances; written to test_margins_smoke_changed")
    ap.add_argument("--threads", type=int, nargs=1, default=[1], help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=sorted(STUDIES), help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker: return worker(a.worker, a.seed, a.threads[0], a.set)
    if a.set and a.study != "smoke": ap.error("--set is for the smoke study")
    out = ROOT / "benchmarks" / "results" / f"test_margins_{a.study}{'_changed' if a.set else ''}"
    if a.render: return write(out, a.study, json.loads(out.with_suffix(".json").read_text()))
    from conftest import cpu_capabilities
    caps = cpu_capabilities()
    configs = ([(c.split("/")[0], int(c.split("/")[1])) for c in a.configs] if a.configs else [(c, 1) for c in caps]
               + [(caps[-1], 2)])
    rows = []
    for seed in a.seeds:
        for cap, n in configs:
            rows.append(run(a.study, cap, n, seed, a.set))
            print({k: v for k, v in rows[-1].items() if k != "rows"}, flush=True)
    import torch
    meta = dict(commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                      text=True, cwd=ROOT).stdout.strip(),
                dirty=bool(subprocess.run(["git", "status", "--porcelain", "odelebm", "tests"], capture_output=True,
                                          text=True, cwd=ROOT).stdout),
                date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), cpu=cpu_name(),
                native=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__, seeds=a.seeds,
                configs=[f"{c}/{n}" for c, n in configs], set=a.set)
    write(out, a.study, dict(meta=meta, rows=rows))


def write(out: Path, study: str, res: dict) -> None:
    meta, rows = res["meta"], res["rows"]
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    head = (f"# Test margins: {study}\n\ncommit {meta['commit']}{' (uncommitted changes)' if meta['dirty'] else ''}, "
            f"{meta['date']}, {meta['cpu']} (native capability {meta['native']}), torch {meta['torch']}\n\n"
            f"{LEGEND[study]}\n\n")
    out.with_suffix(".md").write_text(head + "\n".join(summary(study, rows, meta.get("set", []))) + "\n")
    print(f"written {out}.json / .md")

if __name__ == "__main__":
    main()
