"The reproduction pipeline: fail-fast validation, failure isolation, --resume, and the smoke profile end to end."
import json, subprocess, sys, time
from pathlib import Path
import nbformat
import pytest
from conftest import ROOT
from odelebm.reproduce import main, plan, experiment_notebooks, render, readme_block, SMOKE_BANNER
from odelebm.results import load_results, COVERAGE

PARAMS = '''profile = "smoke"
seeds = 1
device = "cpu"
run_dir = None
fig_dir = None
resume = False
value = 1.0'''

BODY = '''from odelebm.reproduce import run_paths
from odelebm.results import Results
rd, fd = map(str, run_paths(profile, run_dir, fig_dir))
res = Results(NAME, profile, rd, fd, params=dict(value=value))
res.add("toy", "method", "col", value)
{extra}
res.save()'''


def _write_nb(folder: Path, name: str, extra: str = "") -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(PARAMS); p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(BODY.replace("NAME", repr(name)).format(extra=extra))]
    nb.metadata["kernelspec"] = dict(name="python3", display_name="Python 3", language="python")
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def scratch(tmp_path):
    nbs = tmp_path / "nbs" / "experiments"; nbs.mkdir(parents=True)
    _write_nb(nbs, "a_ok")
    _write_nb(nbs, "b_ok")
    return nbs, tmp_path / "runs"


def test_unknown_profile_fails_fast(capsys, scratch):
    nbs, runs = scratch
    assert main(["--profile", "fastest", "--nbs-dir", str(nbs), "--run-dir", str(runs)]) == 2
    assert "unknown profile 'fastest'" in capsys.readouterr().err
    assert not runs.exists()


def test_unknown_parameter_fails_before_anything_runs(capsys, scratch):
    nbs, runs = scratch
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--set", "valeu=2"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter(s) ['valeu']" in err and "value" in err
    assert not runs.exists()


def test_unknown_notebook_name_fails_fast(scratch):
    nbs, runs = scratch
    with pytest.raises(ValueError, match="unknown notebook"):
        plan("smoke", only=["nope"], nbs_dir=nbs, run_dir=runs)


def test_failing_notebook_is_reported_and_others_still_run(capsys, scratch):
    nbs, runs = scratch
    _write_nb(nbs, "a_bad", extra="raise RuntimeError('boom in the toy notebook')")
    code = main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs)])
    out = capsys.readouterr()
    assert code == 1
    assert "FAILED a_bad" in out.err and "RuntimeError: boom in the toy notebook" in out.err
    assert "(from odelebm.reproduce import run_paths): RuntimeError" in out.err   # names the cell that raised
    assert (runs / "results" / "a_ok.json").exists() and (runs / "results" / "b_ok.json").exists()
    assert not (runs / "results" / "a_bad.json").exists()
    assert "2 ok / 1 failed" in out.out


def test_resume_reruns_nothing_when_nothing_changed(capsys, scratch):
    nbs, runs = scratch
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs)]) == 0
    first = (runs / "results" / "a_ok.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--resume"]) == 0
    out = capsys.readouterr()
    assert out.out.count("skipped") == 2 or out.err.count("skipped") == 2
    assert (runs / "results" / "a_ok.json").stat().st_mtime_ns == first
    # a changed parameter makes that notebook current no more
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--resume", "--set", "value=3"]) == 0
    assert json.loads((runs / "results" / "a_ok.json").read_text())["records"][0]["value"] == 3.0


def test_tables_and_figure_index_are_assembled(scratch):
    nbs, runs = scratch
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs)]) == 0
    tables = (runs / "figures" / "tables.md").read_text()
    assert "## toy" in tables and "profile `smoke`" in tables
    assert (runs / "figures" / "README.md").exists()


def test_smoke_profile_runs_every_experiment_notebook(tmp_path):
    "What CI runs: the real experiment notebooks through the console script, smoke profile."
    runs = tmp_path / "runs"
    exe = Path(sys.executable).parent / "odelebm-reproduce"
    t0 = time.time()
    r = subprocess.run([str(exe), "--profile", "smoke", "--run-dir", str(runs)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    names = [p.stem for p in experiment_notebooks()]
    assert names, "no experiment notebooks found"
    for n in names:
        assert (runs / "results" / f"{n}.json").exists(), f"{n} wrote no results file"
        assert (runs / f"{n}.ipynb").exists()
    tables = (runs / "figures" / "tables.md").read_text()
    assert "## Table 1" in tables and "## Table 2" in tables and "## Table 10" in tables
    assert SMOKE_BANNER in tables and SMOKE_BANNER in (runs / "figures" / "table1.md").read_text()   # tiny sizes, said so
    coverage = (runs / "figures" / "coverage.md").read_text()
    assert all(f"| {it.name} |" in coverage for it in COVERAGE)
    assert "| Table 6 | Spiral2D: EBM prior and MCMC ablation | not yet |" in coverage
    assert readme_block((ROOT / "README.md").read_text()) != coverage          # the smoke run leaves the README alone
    print(f"smoke profile: {len(names)} notebooks in {time.time() - t0:.1f} s")


def test_set_overrides_a_parameter_the_profile_sets():
    job = plan("cpu", only=["table2_rotmnist"], overrides={"workers": 1})[0]
    assert job.params["workers"] == 1 and job.params["iterations"] == 1500


def test_committed_tables_figures_index_and_readme_match_their_results():
    "figures/ holds the results files it was assembled from; re-rendering them gives every committed file and the README block."
    results = load_results(ROOT / "figures")
    assert results, "no results files in figures/results: run make reproduce"
    profiles = {r["meta"]["profile"] for r in results}
    assert len(profiles) == 1, profiles
    for name, text in render(results, profiles.pop()).items():
        assert (ROOT / "figures" / name).read_text() == text, f"figures/{name} differs from what its results files give"
        if name == "coverage.md": assert readme_block((ROOT / "README.md").read_text()) == text, "README coverage block drifted"
    for res in results:
        for f in res["figures"]: assert (ROOT / "figures" / f["file"]).is_file(), f["file"]


def test_readme_lists_every_paper_item_and_no_stale_table_files():
    block = readme_block((ROOT / "README.md").read_text())
    for it in COVERAGE: assert f"| {it.name} |" in block
    produced = {f"{t}.md" for r in load_results(ROOT / "figures") for t in {rec["table"] for rec in r["records"]}}
    assert {p.name for p in (ROOT / "figures").glob("table*.md")} | {p.name for p in (ROOT / "figures").glob("figure*.md")} <= produced | {"tables.md"}
