"""How long the README's two commands take: `make test` and the smoke profile of `make reproduce`, on a fresh clone.

    python benchmarks/times.py            # clone HEAD (a clean commit), make install, make test, make smoke; ~25 min
                                            here

Clones the repository's HEAD into a temporary folder and runs there, as a new user would: `make install` (a new venv:
the pinned CPU torch and the package with its [dev] extra), `make test`, then `make smoke`. Each is timed; the smoke
profile's notebooks by the wall time their results files record. Writes `benchmarks/results/times.json` (with the
commit and the machine) and the README block between the `times` markers, through the same function that
`odelebm-reproduce` uses (`odelebm.reproduce.times_markdown`). Run it on an otherwise idle machine: the times are for
planning, and another job on the same cores slows everything down.
"""
import argparse, datetime, json, re, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from odelebm.files import write_json                                  # noqa: E402
from odelebm.results import git_commit, load_results, machine_info    # noqa: E402
from odelebm.reproduce import TIMES_BEGIN, TIMES_END, TIMES_FILE, times_markdown, update_readme, read_times   # noqa: E402


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    "Run `cmd` in `cwd`, fail loudly if it fails; its wall time in seconds and its output."
    start = time.time()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return time.time() - start, r.stdout + r.stderr


def pytest_summary(output: str) -> str:
    "The last pytest summary line of `output` ('222 passed in 1001.3s')."
    lines = [l.strip("= ") for l in output.splitlines() if re.search(r"\d+ (passed|failed)", l)]
    if not lines: raise SystemExit("no pytest summary line in the output of make test")
    return lines[-1]


def measure(clone: Path) -> dict:
    "Install, test and run the smoke profile in the clone `clone`; the record of what each took."
    install, _ = timed(["make", "install"], clone)
    test, out = timed(["make", "test"], clone)
    smoke, _ = timed(["make", "smoke"], clone)
    notebooks = {r["meta"]["name"]: r["meta"]["wall_seconds"] for r in load_results(clone / "runs" / "smoke")}
    return dict(make_test=dict(install_seconds=round(install, 1), test_seconds=round(test, 1),
                               summary=pytest_summary(out)),
                smoke=dict(seconds=round(smoke, 1), notebooks=notebooks))


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    commit = git_commit(ROOT)
    if commit.endswith("+dirty") or commit == "unknown":
        raise SystemExit(f"commit first: the times must belong to a commit a reader can check out (HEAD is {commit})")
    with tempfile.TemporaryDirectory(prefix="odelebm-times-") as tmp:
        clone = Path(tmp) / "odelebm"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        record = dict(commit=commit, date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      **machine_info(), **measure(clone))
    # the measuring process's own count says nothing about the runs
    record["torch_threads"] = "set by each test and job"
    write_json(ROOT / TIMES_FILE, record)
    update_readme(ROOT / "README.md", times_markdown(load_results(ROOT / "figures"), read_times(ROOT)),
                  TIMES_BEGIN, TIMES_END)
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
