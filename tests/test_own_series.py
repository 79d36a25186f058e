"Fitting ODE-LEBM to a user's own irregular series: any stamps, any lengths, defaults that work (issue 13)."
import importlib.util, json, re, subprocess, sys, tomllib, warnings
from pathlib import Path
import pytest
import torch
from odelebm.baselines import linear_interpolation
from odelebm.learner import Learner, predict
from odelebm.model import ODELEBM, resolve_max_step
from odelebm.sequences import SequenceData

pytestmark = pytest.mark.trains   # must hold on any CPU kernel and thread count: make test-cpus

ROOT = Path(__file__).resolve().parents[1]


def _example():
    spec = importlib.util.spec_from_file_location("fit_your_series", ROOT / "examples" / "fit_your_series.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def _ragged(n: int, seed: int = 0) -> list:
    "Series of 3 to 200 points at continuous stamps over spans of 1 to 20: the union grid has thousands of times."
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        k, span = [3, 10, 60, 200][i % 4], [1.0, 5.0, 10.0, 20.0][(i // 4) % 4]
        t = (span * torch.rand(k, generator=g, dtype=torch.float64)).sort().values
        out.append((t, torch.sin(t + 3 * torch.rand(1, generator=g, dtype=torch.float64))[:, None].float()))
    return out


def test_continuous_stamps_of_very_different_lengths_train_with_a_bounded_grid():
    data = SequenceData.from_series(_ragged(64))
    assert len(data.t) > 3000                                         # the union grid of all stamps
    torch.manual_seed(0)
    model = ODELEBM(obs_shape=(1,), z0_dim=4, ode_hidden=16, sigma=0.1, solver="euler_grid")
    L = Learner(model, data, iterations=80, batch_size=16, lr_gen=1e-2, lr_ebm=1e-3, progress=False)
    h = model.config.max_step
    # 'auto' on scattered stamps, stored in the config
    assert h == resolve_max_step(data.t, data.mask) and 0.05 < h <= 20 / 100
    _, t, x, mask = L.sample_batch()
    longest = int(data.mask.sum(1).max())
    # each sequence at its own stamps, padded to the batch's longest
    assert t.ndim == 2 and t.shape[1] == int(mask.sum(1).max()) <= longest
    assert mask.any(1).all() and x.shape[:2] == t.shape
    L.fit()
    mse = L.history.mse
    # no explosion (issue 13: 1.4e21 at iteration 1)
    assert all(torch.isfinite(torch.tensor(mse))) and max(mse) < 10
    # and it learns. Over PyTorch's default / AVX2 / AVX-512 kernels on 1 and 2 threads the mean of the last 20 batch
    # MSEs was 0.212-0.253 against 0.294 for the first 10; after 40 iterations the last 10 were still above the first
    # 10 under AVX2 on 2 threads (0.336), so the run is 80 iterations and the comparison takes the last 20
    assert sum(mse[-20:]) / 20 < sum(mse[:10]) / 10
    # a chain beyond 10 sqrt(D) is absurd though finite: reported and left out of the update (issue 16; the bound was
    # 100 sqrt(D), under which these chains trained the model); under the 'auto' step they are few, and fewer as it
    # trains (the same six configurations: 59-91 in all, 3-27 in the second half against 56-64 in the first)
    dropped = L.history.dropped
    assert sum(dropped) < 0.15 * 80 * 16 and sum(dropped[40:]) < sum(dropped[:40])


def test_sparse_off_grid_predictions_match_dense_grid_predictions():
    "The trajectory at a time depends on z and that time only: 6 scattered stamps read what a dense grid reads there."
    torch.manual_seed(0)
    model = ODELEBM(obs_shape=(1,), z0_dim=4, ode_hidden=16, sigma=0.1, solver="euler_grid", max_step=0.05)
    t_obs = torch.tensor([0.0, 0.7, 1.3, 2.2, 3.9])
    x = torch.sin(2 * t_obs)[None, :, None]
    sparse = torch.tensor([0.013, 0.77, 1.9031, 2.5, 3.333, 4.99])
    dense = torch.cat([sparse, torch.linspace(0, 5, 501)]).unique()
    a = predict(model, x, t_obs, t_query=sparse, n_steps=30, seed=3).mean
    b = predict(model, x, t_obs, t_query=dense, n_steps=30, seed=3).mean[:, torch.isin(dense, sparse)]
    assert torch.allclose(a, b, atol=1e-6)                            # stated tolerance: float rounding only
    fine = ODELEBM(obs_shape=(1,), z0_dim=4, ode_hidden=16, sigma=0.1, solver="euler_grid", max_step=0.0005)
    fine.load_state_dict(model.state_dict())
    z = torch.randn(4, 4)
    assert (model.decode(z, sparse) - fine.decode(z, sparse)).abs().max() < 0.02   # the solver's own error at h = 0.05


def train_readme_example(seed: int = 0):
    "The README example, trained as the README runs it (300 iterations, about 35 s here) from initial weights `seed`."
    ex = _example()
    torch.manual_seed(seed)
    return ex.main(300)


@pytest.fixture(scope="module")
def trained():
    return train_readme_example(0)


def _heldout(train, model, k: int, on_clock: bool, seed: int = 5) -> tuple[float, float]:
    """MSE at 20 unseen stamps of 60 new README-family series observed at k points (on a 0.05 clock, or anywhere), and
    linear interpolation's."""
    g = torch.Generator().manual_seed(seed)
    seen, held = [], []
    for _ in range(60):
        f = lambda t, ph=3 * torch.rand(1, generator=g, dtype=torch.float64): torch.sin(2 * t + ph)[:, None].float()
        to = (torch.randperm(100, generator=g)[:k].sort().values * 0.05).double() if on_clock else \
             (5 * torch.rand(k, generator=g, dtype=torch.float64)).sort().values
        tq = (5 * torch.rand(20, generator=g, dtype=torch.float64)).sort().values
        seen.append((to, f(to) + 0.05 * torch.randn(k, 1, generator=g))); held.append((tq, f(tq)))
    obs = SequenceData.from_series(seen, t_offset=train.t_offset).standardize(like=train)
    tq = torch.cat([t for t, _ in held]).unique()
    mean = train.unstandardize(predict(model, obs.x, obs.t, obs.mask, t_query=tq.float(), n_steps=100, seed=0).mean)
    ruler = linear_interpolation(obs.t, train.unstandardize(obs.x), obs.mask, tq.float())
    at = [torch.searchsorted(tq, t) for t, _ in held]
    mse = lambda p: torch.stack(
        [((p[i, j] - x) ** 2).mean() for i, (j, (_, x)) in enumerate(zip(at, held))]).mean().item()
    return mse(mean), mse(ruler)


def heldout_study(model, train) -> dict:
    """(model MSE, linear interpolation MSE) of new series observed at 5, 12 and 30 points, on a clock (True) or
    anywhere (False)."""
    return {(k, clock): _heldout(train, model, k, clock) for k in (5, 12, 30) for clock in (False, True)}


def test_new_series_predictions_improve_with_observations_and_ignore_the_clock(trained):
    model, train = trained[:2]
    res = heldout_study(model, train)
    for key, (m, lin) in res.items(): print(key, f"model {m:.4f} linear {lin:.4f}")
    for clock in (False, True):
        assert res[(5, clock)][0] > res[(12, clock)][0] > res[(30, clock)][0]     # more observed points, lower error
        # better than a ruler where it matters
        assert all(res[(k, clock)][0] < res[(k, clock)][1] for k in (5, 12))
    # on a clock or not: the same error up to training noise. Over PyTorch's default / AVX2 / AVX-512 kernels, 1 and 2
    # threads and seeds 0-2 (benchmarks/results/test_margins_own.md; the example validating on a fifth of its series)
    # the ratio of the two reached 1.43 at 5 points, 1.54 at 12 and 1.31 at 30, where both errors are near the noise
    # floor (0.0017-0.0041); the clock bug this guards against gave 110 (1.03 off the clock against 0.0094 on it). The
    # other assertions held in all 12 of those runs: the error fell with more points, and the model's was at most 0.144
    # of linear interpolation's.
    for k in (5, 12, 30):
        on, off = res[(k, True)][0], res[(k, False)][0]
        assert max(on, off) / min(on, off) < 4


def test_the_readme_example_is_the_script_and_its_figure_is_drawn(trained, tmp_path, capsys):
    src = (ROOT / "examples" / "fit_your_series.py").read_text()
    code = src.split("# --- the README example starts here ---\n")[1].split("# --- the README example ends here ---")[0]
    readme = (ROOT / "README.md").read_text()
    assert "```python\n" + code.rstrip() + "\n```" in readme
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)          # the block runs on its own, imports included
    assert ns["main"](2)[0].config.max_step == pytest.approx(0.05, abs=1e-3)
    model, train, obs, held, pred, mean, (lo, hi) = trained
    assert pred.std.shape == pred.mean.shape and (pred.std > 0).any()        # spread over 8 posterior samples
    assert (lo < mean).all() and (mean < hi).all() and lo.shape == mean.shape
    _example().plot(obs, held, pred, mean, (lo, hi), tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_the_readme_states_the_example_run_that_its_record_holds():
    "The README's time and output of the example are the ones its --record run measured, at a clean commit."
    ex = _example()
    rec = json.loads(ex.RECORD.read_text())
    from odelebm.files import read_json
    assert read_json(ex.RECORD) is not None, ("examples/fit_your_series.json fails its checksum: run the example with "
                                              "--record")
    from odelebm.reproduce import readme_block
    assert readme_block((ROOT / "README.md").read_text(), ex.EXAMPLE_BEGIN, ex.EXAMPLE_END) == ex.readme_text(rec)
    assert "+dirty" not in rec["commit"] and any(l.startswith("held-out MSE of 100 new series") for l in rec["printed"])


def test_the_example_writes_its_figure_where_git_does_not_track_it(tmp_path):
    (tmp_path / "examples").mkdir()
    script = tmp_path / "examples" / "fit_your_series.py"
    script.write_text((ROOT / "examples" / "fit_your_series.py").read_text())
    r = subprocess.run([sys.executable, str(script), "--iterations", "2"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "examples" / "fit_your_series.png").is_file()      # runs/ is ignored by git
    assert not (tmp_path / "examples" / "fit_your_series.png").exists()             # the committed figure is left alone


def test_from_series_merges_stamps_of_different_series_that_float32_cannot_tell_apart():
    a, b = (torch.tensor([0.0, 2.37744373061], dtype=torch.float64),
            torch.tensor([1.0, 2.37744388238], dtype=torch.float64))
    d = SequenceData.from_series([(a, torch.ones(2, 1)), (b, torch.zeros(2, 1))])
    assert len(d.t) == 3 and d.mask[:, -1].all()                      # one grid time, observed by both
    with pytest.raises(ValueError, match="series 0 times"):           # within one series it stays an error
        SequenceData.from_series(
            [(torch.tensor([0.0, 2.37744373061, 2.37744388238], dtype=torch.float64), torch.ones(3, 1))])


def test_learner_settles_max_step_and_warns_where_it_should(tmp_path):
    series = _ragged(16)
    data = SequenceData.from_series(series)
    m = ODELEBM(obs_shape=(1,), z0_dim=3, ode_hidden=8, sigma=0.1, solver="euler_grid")
    L = Learner(m, data, iterations=1, batch_size=8, progress=False); L.fit()
    p = L.save(tmp_path / "c.pt")
    assert Learner.load(p, data).model.config.max_step == m.config.max_step != "auto"   # stored with the model
    regular = SequenceData(torch.linspace(0, 5, 101), torch.randn(4, 101, 1))
    m2 = ODELEBM(obs_shape=(1,), z0_dim=3, ode_hidden=8, sigma=0.1)
    Learner(m2, regular, iterations=1, batch_size=4, progress=False)
    assert m2.config.max_step == pytest.approx(0.05)                      # a regular grid keeps its spacing
    wide = SequenceData.from_series(_ragged(64))
    with pytest.warns(UserWarning, match="steps along all"):
        Learner(ODELEBM(obs_shape=(1,), z0_dim=3, ode_hidden=8, max_step=None), wide, iterations=1,
                batch_size=8, progress=False)
    big = SequenceData.from_series([(t, 50 + 20 * x) for t, x in series])
    with pytest.warns(UserWarning, match="standardize"):
        Learner(ODELEBM(obs_shape=(1,), z0_dim=3, ode_hidden=8), big, iterations=1, batch_size=8, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Learner(ODELEBM(obs_shape=(1,), z0_dim=3, ode_hidden=8), big.standardize(), iterations=1,
                batch_size=8, progress=False)


def _imports(text: str) -> set[str]:
    return {m.split(".")[0] for m in re.findall(r"^\s*(?:import|from)\s+([A-Za-z_][\w.]*)", text, re.M)}


def test_every_imported_package_is_declared():
    "A plain `pip install .` gives the library; `[reproduce]` gives the command and the notebooks: nothing undeclared."
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = lambda req: re.split(r"[<>=\[ ;]", req)[0].lower().replace("-", "_")
    core = {name(r) for r in meta["dependencies"]}
    extra = core | {name(r) for r in meta["optional-dependencies"]["reproduce"]}
    alias = {"sklearn": "scikit_learn", "yaml": "pyyaml"}
    std = set(sys.stdlib_module_names) | {"odelebm"}
    # odelebm/experiments/ too
    lib = set().union(*(_imports(p.read_text()) for p in (ROOT / "odelebm").rglob("*.py"))) - std
    gpu = {name(r) for r in meta["optional-dependencies"]["gpu"]}
    dask = {name(r) for r in meta["optional-dependencies"]["dask"]}
    mujoco = {name(r) for r in meta["optional-dependencies"]["mujoco"]}
    assert ({alias.get(m, m) for m in lib} - extra - gpu - dask - mujoco
            - {"distributed"} == set()), "imported by the library, not declared"
    assert set(meta["optional-dependencies"]["mujoco"]) == {"mujoco==3.17.0", "dm_control==1.0.50"}, ("both pinned: "
                                                                                                      "mujoco 4 breaks "
                                                                                                      "dm_control "
                                                                                                      "1.0.50")
    assert ("dask" in dask
            and "distributed" in (ROOT / "pyproject.toml").read_text()), "dask.distributed comes with the [dask] extra"
    # only the reproduce command (its runner and report), the GPU kernel, the Dask executor and the MuJoCo data may need
    # an extra
    assert {alias.get(m, m) for m in lib} - core <= {"nbformat", "nbconvert", "mistune", "jinja2", "pygments",
                                                     "latex2mathml", "triton", "distributed", "mujoco", "dm_control"}
    kernels = (ROOT / "odelebm" / "kernels.py").read_text()
    assert ("except ImportError" in kernels
            and gpu == {"triton"}), "triton stays optional: the library imports without it"
    import json
    nbs = set()
    for nb in (ROOT / "nbs" / "experiments").glob("*.ipynb"):
        nbs |= _imports("\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                                  if c["cell_type"] == "code"))
    assert ({alias.get(m, m) for m in nbs - std} - extra
            - mujoco == set()), "imported by an experiment notebook, not declared"
    assert {"Paper"} <= set(meta["urls"])


def test_reproduce_says_which_extra_to_install(monkeypatch, capsys):
    import odelebm.reproduce as r
    monkeypatch.setattr(r, "REPRODUCE_NEEDS", r.REPRODUCE_NEEDS + ("no_such_module_xyz",))
    assert r.main(["--list"]) == 2
    assert 'pip install "odelebm[reproduce]"' in capsys.readouterr().err


@pytest.mark.parametrize("chains", [dict(chain_stages=2), dict(persistent=True, persistent_steps=2)])
def test_staged_and_persistent_chains_on_per_sequence_stamps_resume_exactly(chains, tmp_path):
    "Rows of per-sequence times follow their sequences through staged cohorts, persistent revisits and dropped chains."
    data = SequenceData.from_series(_ragged(48))
    def learner(**kw):
        torch.manual_seed(0)
        return Learner(ODELEBM(obs_shape=(1,), z0_dim=3, ode_hidden=8, sigma=0.1, solver="euler_grid"), data,
                       iterations=6, batch_size=8, posterior_steps=4, prior_steps=2, obs_ratio=0.7,
                       progress=False, **chains, **kw)
    straight = learner(); straight.fit()
    assert straight.sample_batch()[1].ndim == 2                              # the per-sequence layout is in use
    first = learner(checkpoint_every=3, checkpoint_path=str(tmp_path / "c.pt")); first.fit(3)
    resumed = Learner.load(tmp_path / "c.pt", data); resumed.fit()
    assert straight.history.nll == resumed.history.nll
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()): assert torch.equal(a, b)


def test_the_readme_states_the_own_series_study_its_record_holds():
    """The README's table of families is the one benchmarks/own_series_calibration.py measured at a clean commit, with
    its figure."""
    spec = importlib.util.spec_from_file_location("own_series_calibration",
                                                  ROOT / "benchmarks" / "own_series_calibration.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    from odelebm.files import read_json
    from odelebm.reproduce import readme_block
    rec = read_json(mod.OUT / "own_series_calibration.json")
    assert rec is not None, ("benchmarks/results/own_series_calibration.json is missing or fails its checksum: run the "
                             "study")
    assert "+dirty" not in rec["commit"] and (mod.OUT / "own_series_calibration.png").exists()
    assert readme_block((ROOT / "README.md").read_text(), mod.BEGIN, mod.END) == mod.readme_text(rec)
