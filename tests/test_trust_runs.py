"""Runs that never harm what they do not own, and caches that cannot lie: each test replays one attack on the pipeline
(a foreign folder, a planted lock, an edited cache, a crafted results file, a killed run) and checks that it is refused
or undone."""
import json, os, signal, socket, stat, time
from pathlib import Path
import pytest
import torch
from test_reproduce import _write_nb, _start, SLOW
from test_trust import _learner, _tiny_rotmnist
from odelebm.files import atomic_write
from odelebm.learner import Learner
from odelebm.reproduce import main, plan, is_current, run_lock


def _tree(folder: Path) -> dict[str, bytes | None]:
    "Every path under `folder` with its bytes (None for a folder): what must not change."
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


def _flip(path: Path, inside: bytes) -> None:
    "Flip one bit in the middle of the bytes `inside` (a tensor's storage) where they lie in the file `path`."
    raw = bytearray(path.read_bytes())
    at = raw.find(inside)
    assert at >= 0, "the tensor's bytes are not in the file"
    raw[at + len(inside) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.fixture
def scratch(tmp_path):
    nbs = tmp_path / "nbs" / "experiments"; nbs.mkdir(parents=True)
    _write_nb(nbs, "a_ok")
    return nbs, tmp_path / "runs"


def test_a_folder_that_is_not_a_run_folder_is_refused_and_left_alone(scratch, tmp_path, capsys):
    "--report-only, or a whole run, on a folder of the user's: before, its report/ was renamed away and deleted."
    nbs, _ = scratch
    theirs = tmp_path / "thesis"; (theirs / "report").mkdir(parents=True)
    (theirs / "report" / "thesis.tex").write_text("years of work")
    before = _tree(theirs)
    for extra in (["--report-only"], []):
        assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(theirs), *extra]) == 2
        err = capsys.readouterr().err
        assert f"{theirs} is not empty and is not a run folder" in err and "--run-dir" in err, err
        assert _tree(theirs) == before                       # nothing written, renamed or deleted: not even a .lock


def test_a_run_folder_of_an_earlier_version_is_claimed_under_runs_and_marked_by_hand_elsewhere(tmp_path, monkeypatch):
    """The checkout's runs/ is the pipeline's (earlier versions, and notebooks run outside the command, fill it without
    a marker)."""
    import odelebm.experiments.store as store
    monkeypatch.setattr(store, "repo_root", lambda start=None: tmp_path)   # a checkout here
    for d in (tmp_path / "runs" / "cpu", tmp_path / "elsewhere"):
        (d / "results").mkdir(parents=True); (d / ".lock").write_text("1")
    assert store.claim_run_dir(tmp_path / "runs" / "cpu") == tmp_path / "runs" / "cpu"
    with pytest.raises(store.NotARunFolder, match="touch"): store.claim_run_dir(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / store.RUN_MARKER).touch()
    assert store.claim_run_dir(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_the_report_replaces_only_a_report_it_wrote(scratch, capsys):
    nbs, runs = scratch
    with run_lock(runs): pass                                 # a run folder of the command's
    (runs / "report").mkdir(); (runs / "report" / "thesis.tex").write_text("years of work")
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--report-only"]) == 2
    assert "is not a report written by odelebm-reproduce" in capsys.readouterr().err
    assert (runs / "report" / "thesis.tex").read_text() == "years of work"


def test_a_lock_planted_as_a_link_is_refused_and_its_target_untouched(tmp_path):
    "A `.lock` made a link to another file: before, the next run truncated that file and wrote its PID into it."
    runs, victim = tmp_path / "runs", tmp_path / "victim.txt"
    with run_lock(runs): pass
    victim.write_text("precious")
    (runs / ".lock").unlink(); (runs / ".lock").symlink_to(victim)
    with pytest.raises(ValueError, match="symbolic link") as e:
        with run_lock(runs): pass
    assert str(runs / ".lock") in str(e.value) and victim.read_text() == "precious"
    (runs / ".lock").unlink(); os.link(victim, runs / ".lock")    # a hard link: the same file under a second name
    with pytest.raises(ValueError, match="not the lock file odelebm-reproduce makes"):
        with run_lock(runs): pass
    assert victim.read_text() == "precious"


def test_an_edited_number_in_a_job_cache_is_a_warned_recompute(tmp_path):
    "One number of a job cache changed, the JSON still valid: before, --resume tabled it silently."
    from odelebm.experiments.recipes import recipe
    from odelebm.experiments.methods import method
    from odelebm.experiments.irregular import run_method
    tiny = recipe("table1", "smoke", {"data.n_series": 40, "data.n_points": 20, "baseline.iterations": 3,
                                      "baseline.batch_size": 8})
    first = run_method("GRU-D", [(0.5, 0)], tiny, run_dir=str(tmp_path))[0]
    cache = tmp_path / "jobs" / "table1" / f"{method('GRU-D').key(tiny, test=True, ratio=0.5, seed=0)}.json"
    content = json.loads(cache.read_text()); content["mse"] = 123.456
    cache.write_text(json.dumps(content))
    with pytest.warns(UserWarning, match="does not match its checksum") as w:
        again = run_method("GRU-D", [(0.5, 0)], tiny, run_dir=str(tmp_path), resume=True)[0]
    assert any(str(cache) in str(m.message) for m in w)
    assert again["mse"] == first["mse"] and not again["cached"]


def test_a_flipped_byte_in_the_rotating_mnist_cache_is_a_warned_regeneration(tmp_path):
    "Before, the frames of a damaged cache were trained on silently (the MuJoCo cache was checked, this one not)."
    from odelebm.data_mnist import make_rotating_mnist
    small = dict(n_train=4, n_val=2, n_test=2, t_train=3, t_test=4, cache_dir=tmp_path)
    first = make_rotating_mnist(**small)
    [f] = tmp_path.glob("*.pt")
    _flip(f, first.train.x.numpy().tobytes())
    with pytest.warns(UserWarning, match="rotating-MNIST cache") as w:
        again = make_rotating_mnist(**small)
    assert str(f) in str(w[0].message)
    assert all(torch.equal(getattr(again, k).x, getattr(first, k).x) for k in ("train", "val", "test"))


def _damage_model(run: Path, info: dict) -> None:
    p = run / info["file"]
    raw = bytearray(p.read_bytes()); raw[len(raw) // 2] ^= 0x01; p.write_bytes(bytes(raw))


def test_a_damaged_trained_model_is_trained_again_under_resume(tmp_path, monkeypatch):
    """Before, train returned the cached record without checking the model, so every --resume refused it and none
    retrained it."""
    from odelebm.experiments.rotmnist import train_all, load_model
    monkeypatch.setenv("ODELEBM_CACHE", str(tmp_path / "cache"))
    s, run = _tiny_rotmnist(), tmp_path / "runs"
    [info] = train_all(["Latent ODE"], 1, s, run)
    _damage_model(run, info)
    with pytest.warns(UserWarning, match="does not match the SHA-256 in its training record"):
        [again] = train_all(["Latent ODE"], 1, s, run, resume=True)
    assert not again["cached"]
    assert load_model("Latent ODE", 0, s, run)[1]["sha256"] == again["sha256"]


def test_resume_runs_again_the_notebook_whose_model_was_damaged(scratch, monkeypatch):
    """Before, the producer's stamp covered neither its manifest nor its models: --resume skipped it and its consumers
    failed."""
    from odelebm.experiments.rotmnist import train_all
    nbs, runs = scratch
    # stands in for the notebook that trains rotating-MNIST models
    _write_nb(nbs, "table2_rotmnist")
    monkeypatch.setenv("ODELEBM_CACHE", str(runs.parent / "cache"))
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--only", "table2_rotmnist"]) == 0
    [info] = train_all(["Latent ODE"], 1, _tiny_rotmnist(), runs)   # what it trains, listed in the run's manifest
    [job] = plan("smoke", only=["table2_rotmnist"], nbs_dir=nbs, run_dir=runs)
    assert is_current(job)
    _damage_model(runs, info)
    assert not is_current(job)
    # and the manifest with it: rebuilt, it still lists that model
    (runs / "manifests" / "rotmnist.json").write_text("{")
    with pytest.warns(UserWarning, match="unreadable manifest"): assert not is_current(job)


def test_a_damaged_missing_or_foreign_manifest_is_rebuilt_naming_the_file(tmp_path, monkeypatch):
    """Before, a corrupted manifest was never rebuilt under --resume, and JSON of the wrong structure gave a raw
    KeyError."""
    from odelebm.experiments.rotmnist import train_all, load_model
    monkeypatch.setenv("ODELEBM_CACHE", str(tmp_path / "cache"))
    s, run = _tiny_rotmnist(), tmp_path / "runs"
    [info] = train_all(["Latent ODE"], 1, s, run)
    path = run / "manifests" / "rotmnist.json"
    def foreign():   # its checksum holds, but it is no manifest
        from odelebm.files import write_json
        write_json(path, {"experiment": "rotmnist", "models": {"Latent ODE seed 0": {"key": "x"}}})
    damage = [lambda: path.write_text("{"), lambda: path.write_text('{"models": []}'), foreign]
    for hurt, said in zip(damage, ["unreadable manifest", "no checksum", "not a manifest of trained models"]):
        hurt()
        with pytest.warns(UserWarning, match=said) as w:
            assert load_model("Latent ODE", 0, s, run)[1]["sha256"] == info["sha256"]
        assert str(path) in str(w[0].message)
        assert load_model("Latent ODE", 0, s, run)[1]["file"] == info["file"]   # written back: no warning the next time
    path.unlink()
    assert load_model("Latent ODE", 0, s, run)[1]["key"] == info["key"] and path.is_file()


def test_results_files_cannot_name_files_outside_the_figure_folder(tmp_path):
    "Before, a results file whose figure was ../../<folder>/secret.txt had that file copied into the report."
    from odelebm.results import load_results
    from odelebm.report import write_report
    (tmp_path / "secret.txt").write_text("private")
    fd = tmp_path / "figures"; (fd / "results").mkdir(parents=True)
    f = fd / "results" / "x.json"
    f.write_text(json.dumps(dict(meta=dict(name="x"), records=[], figures=[dict(file="../secret.txt", caption="c")])))
    with pytest.raises(ValueError, match="refused") as e: load_results(fd)
    assert str(f) in str(e.value)
    # the README is read from disk too
    (fd / "README.md").write_text("# Figures\n\n![s](../secret.txt)\n\n![t](/etc/hostname)\n")
    index = write_report(tmp_path / "runs", fd, tmp_path / "no_api")
    assert not (index.parent / "figures").exists() and (index.parent / "figures.html").read_text().count("refused") == 2


def test_atomic_writes_follow_the_umask_or_keep_the_mode_they_replace(tmp_path):
    "Before, every atomically written file was 0600 (mkstemp's mode survived the rename), the README included."
    from odelebm.training import save_checkpoint
    mode = lambda p: stat.S_IMODE(Path(p).stat().st_mode)
    umask = os.umask(0o022)
    try:
        assert mode(atomic_write(tmp_path / "results.json", "{}")) == 0o644
        assert mode(save_checkpoint({"w": torch.zeros(2)}, tmp_path / "c.pt")) == 0o644
        kept = tmp_path / "README.md"; kept.write_text("a"); os.chmod(kept, 0o640)
        assert mode(atomic_write(kept, "b")) == 0o640
    finally: os.umask(umask)


def test_a_checkpoint_without_a_digest_and_with_a_flipped_byte_is_refused(tmp_path):
    "Before, a checkpoint with no trailer and no .sha256 beside it loaded silently, with wrong weights."
    L, d = _learner(); L.fit()
    p = tmp_path / "c.pt"
    torch.save(L.state_dict(), p)
    weights = max(L.model.state_dict().values(), key=lambda t: t.numel())
    _flip(p, weights.numpy().tobytes())
    with pytest.raises(ValueError, match="carries no SHA-256") as e: Learner.load(p, d.train)
    assert str(p) in str(e.value)
    with pytest.warns(UserWarning, match="training from the start"): assert Learner.resume(p, d.train) is None


TICKER = '''import time
from pathlib import Path
from odelebm.files import atomic_write
for i in range(1000): atomic_write(Path(run_dir) / "tick.txt", str(i)); time.sleep(0.01)'''


def test_a_killed_runs_kernel_writes_nothing_once_the_lock_is_free_and_its_part_files_go(scratch):
    """SIGKILL of the command's process group: before, the kernel (in a session of its own) went on writing for 0.5-2 s
    after the lock was free, and the .part files of killed writers stayed forever."""
    nbs, runs = scratch
    _write_nb(nbs, "w_ticker", extra=TICKER)
    p = _start(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--only", "w_ticker"])
    tick, deadline = runs / "tick.txt", time.time() + 120
    while not tick.exists() and time.time() < deadline: time.sleep(0.05)
    assert tick.exists(), "the notebook never wrote"
    os.killpg(p.pid, signal.SIGKILL); p.wait(); p.stdout.close()
    with run_lock(runs):                                      # the next run holds the folder
        time.sleep(0.2)                                       # (a rename already past its check lands now)
        seen = tick.read_text()
        time.sleep(2.5)
        assert tick.read_text() == seen, "the killed run's kernel wrote into a folder another run holds"
    # a writer killed in mid-write
    (runs / "checkpoints").mkdir(); (runs / "checkpoints" / ".c.pt.4f2a.part").write_text("half")
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--only", "a_ok"]) == 0
    assert not [q for q in runs.rglob("*.part")]


def test_only_with_no_name_is_an_error_not_the_whole_profile(scratch, capsys):
    nbs, runs = scratch
    assert main(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--only", ""]) == 2
    assert "--only names no notebook" in capsys.readouterr().err and not runs.exists()


def test_ctrl_c_ends_the_command_with_a_line_not_a_traceback(scratch):
    nbs, runs = scratch
    # written by the notebook's own cell: its kernel is running
    started = nbs.parent / "c_slow.started"
    _write_nb(nbs, "c_slow", extra=f"open({str(started)!r}, 'w').close()\n" + SLOW)
    p = _start(["--profile", "smoke", "--nbs-dir", str(nbs), "--run-dir", str(runs), "--only", "c_slow"])
    deadline = time.time() + 120                              # a loaded machine starts kernels slowly
    while not started.exists() and time.time() < deadline: time.sleep(0.1)
    assert started.exists(), "the notebook never started"
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in out and "Traceback" not in out, out


def test_empty_complex_and_zero_width_inputs_are_refused_with_a_message():
    from odelebm.data_sinusoids import make_sinusoids
    from odelebm.learner import predict
    from odelebm.model import ODELEBM, ModelConfig
    from odelebm.sequences import SequenceData
    d = make_sinusoids(n=10, n_points=10, seed=0)
    model = ODELEBM(z0_dim=3, ode_hidden=8)
    with pytest.raises(ValueError, match="no sequences"): predict(model, d.test.x[:0], d.test.t)
    with pytest.raises(ValueError, match="no sequences"): Learner(model, d.test[:0], iterations=1, progress=False)
    with pytest.raises(ValueError, match="complex"): SequenceData(d.test.t, d.test.x.to(torch.complex64))
    with pytest.raises(ValueError, match="ode_hidden must be an integer >= 1"): ModelConfig(ode_hidden=0)


def test_a_dense_grid_from_zero_is_not_called_absolute_stamps():
    from odelebm.model import ODELEBM
    m = ODELEBM(z0_dim=4, ode_hidden=8, max_step=1e-3)
    with pytest.raises(ValueError, match="dense") as e: m.decode(torch.randn(2, 4), torch.linspace(0, 1000, 5))
    assert "absolute" not in str(e.value) and "raise max_step" in str(e.value)


@pytest.mark.parametrize("address, error, said",
                         [("tcp://127.0.0.1:notaport", ValueError, "is not a Dask scheduler address"),
                                                  ("127.0.0.1:8786", ValueError, "is not a Dask scheduler address"),
                                                  ("closed", OSError, "no Dask scheduler answers")])
def test_a_bad_or_closed_scheduler_address_fails_at_once(address, error, said, tmp_path):
    "Before, a malformed address hung for 60 s and a closed port waited Dask's 30 s connect timeout."
    from odelebm.experiments.executors import check_cluster
    if address == "closed":
        with socket.socket() as s: s.bind(("127.0.0.1", 0)); address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    t0 = time.time()
    with pytest.raises(error, match=said): check_cluster(address, tmp_path)
    assert time.time() - t0 < 10
