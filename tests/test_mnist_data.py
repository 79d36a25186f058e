"""MNIST and rotating MNIST (odelebm.data_mnist): IDX reading, data-dir lookup, checksummed download, rotation,
sequences, cache."""
import functools, http.server, os, re, shutil, socket, subprocess, sys, threading, time
from pathlib import Path
import pytest
import torch
import odelebm.data_mnist as dm
from odelebm.data_mnist import (MNIST_FILES, download_mnist, load_mnist, make_rotating_mnist, read_idx,
                                resolve_data_dir, rotate, shuffle_frames)

DATA = dm.BUNDLED.parent                  # <repo>/data: the committed test split lives in its mnist/
SMALL = dict(n_train=20, n_val=5, n_test=6, t_train=17, t_test=20, data_dir=DATA)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for k in ("ODELEBM_DATA", "ODELEBM_MNIST_URL", "ODELEBM_CACHE"): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ODELEBM_MNIST_URL", "off")           # no test may reach the internet


@pytest.fixture(scope="module")
def mnist():
    return load_mnist("test", DATA)


def test_read_committed_test_split(mnist):
    images, labels = mnist
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert labels.min() == 0 and labels.max() == 9
    counts = labels.bincount()
    assert counts.sum() == 10000 and counts.min() > 850 and counts.max() < 1200 and counts[1] == 1135
    assert images.max() == 255 and 25 < images.float().mean() < 40           # mostly black, white strokes
    assert torch.equal(read_idx(dm.BUNDLED / MNIST_FILES["test"][1]).long(), labels)


def test_fresh_clone_lookup_needs_nothing_beside_it(tmp_path):
    """A copy of the package and data/mnist in an empty folder, ODELEBM_DATA empty, downloads off: the test split is
    found."""
    repo = tmp_path / "clone"
    shutil.copytree(dm.REPO / "odelebm", repo / "odelebm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(dm.BUNDLED, repo / "data" / "mnist")
    shutil.copy(dm.REPO / "pyproject.toml", repo)
    code = ("import odelebm.data_mnist as dm; d = dm.make_rotating_mnist(n_train=3, n_val=1, n_test=2, t_train=4, "
            "t_test=5); print(dm.REPO, dm.find_mnist('test'), d.train.x.shape[0])")
    env = {**os.environ, "PYTHONPATH": str(repo), "ODELEBM_DATA": "", "ODELEBM_MNIST_URL": "off"}
    env.pop("ODELEBM_CACHE", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(repo), str(repo / "data" / "mnist"), "3"]
    assert (repo / "data" / "cache").is_dir()                                # the cache stays inside the clone


def test_no_module_knows_a_folder_outside_the_repository():
    for p in (dm.REPO / "odelebm").glob("*.py"):
        assert not re.search(r"['\"]shared['\"]|\.\./shared", p.read_text()), p.name


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x00\x00\x99\x01" + bytes(8))
    with pytest.raises(ValueError, match="bad.idx"): read_idx(bad)
    trunc = tmp_path / "trunc.gz"
    trunc.write_bytes((dm.BUNDLED / MNIST_FILES["test"][0]).read_bytes()[:5000])   # cut gzip stream
    with pytest.raises(ValueError, match="trunc.gz"): read_idx(trunc)


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    assert resolve_data_dir() == dm.REPO / "data"
    monkeypatch.setenv("ODELEBM_DATA", "")
    assert resolve_data_dir() == dm.REPO / "data"
    monkeypatch.setenv("ODELEBM_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir("/some/param") == Path("/some/param")
    assert dm.find_mnist("test") == dm.BUNDLED                                 # not in ODELEBM_DATA: the committed copy
    assert dm.find_mnist("train", tmp_path) is None


def test_missing_split_without_network_names_the_fix(tmp_path):
    with pytest.raises(dm.MNISTUnavailable) as e: load_mnist("train", tmp_path / "empty")
    msg = str(e.value)
    assert all(f in msg for f in MNIST_FILES["train"]) and "by hand" in msg and "ODELEBM_DATA" in msg
    assert "ossci-datasets" in msg and str(tmp_path / "empty" / "mnist") in msg
    assert isinstance(e.value, FileNotFoundError)


def test_unreachable_mirror_is_reported(tmp_path):
    with socket.socket() as s:                                                # a port nobody listens on
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    with pytest.raises(dm.MNISTUnavailable, match="by hand") as e:
        download_mnist("test", tmp_path, url=f"http://127.0.0.1:{port}", timeout=5, progress=False)
    assert f"127.0.0.1:{port}/t10k-images-idx3-ubyte.gz" in str(e.value)
    assert not [p for p in (tmp_path / "mnist").iterdir()]


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving a copy of the committed MNIST test files, and `/endless/<name>`, a response
    that never ends."""
    served = tmp_path / "served"
    shutil.copytree(dm.BUNDLED, served)
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            if not self.path.startswith("/endless/"): return super().do_GET()
            self.send_response(200); self.end_headers()
            try:
                while True: self.wfile.write(bytes(1 << 16))
            except OSError: pass
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    th = threading.Thread(target=httpd.serve_forever, daemon=True); th.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown(); httpd.server_close()


def test_download_on_first_use_from_local_http_server(server, tmp_path, monkeypatch, mnist):
    url, _ = server
    monkeypatch.setattr(dm, "BUNDLED", tmp_path / "no-committed-copy")        # as for a split that is not committed
    # the first mirror fails, the second serves
    monkeypatch.setenv("ODELEBM_MNIST_URL", f"http://127.0.0.1:1/nothing,{url}")
    images, labels = load_mnist("test", tmp_path / "d")
    assert sorted(p.name for p in (tmp_path / "d" / "mnist").iterdir()) == sorted(MNIST_FILES["test"])
    assert torch.equal(images, mnist[0]) and torch.equal(labels, mnist[1])


def test_endless_response_is_cut_at_the_size_limit(server, tmp_path):
    url, _ = server
    t0 = time.perf_counter()
    with pytest.raises(dm.MNISTUnavailable, match="sent more than 3297754 bytes"):   # twice the 1,648,877-byte archive
        download_mnist("test", tmp_path, url=f"{url}/endless", progress=False)
    assert time.perf_counter() - t0 < 30
    assert list((tmp_path / "mnist").iterdir()) == []                         # nothing written, no .part left


def test_stale_part_files_are_removed(server, tmp_path):
    url, _ = server
    dest = tmp_path / "mnist"; dest.mkdir()
    stale, fresh = dest / ".t10k-images-idx3-ubyte.gz.abc123.part", dest / ".t10k-labels-idx1-ubyte.gz.def456.part"
    stale.write_bytes(bytes(100)); fresh.write_bytes(bytes(100))
    os.utime(stale, (time.time() - 3600, time.time() - 3600))                  # a download killed an hour ago
    download_mnist("test", tmp_path, url=url, progress=False)
    assert not stale.exists() and fresh.exists()                               # a running download's file is left alone


def test_corrupted_download_raises_and_leaves_nothing(server, tmp_path):
    url, served = server
    f = served / MNIST_FILES["test"][1]
    raw = bytearray(f.read_bytes()); raw[100] ^= 0xFF; f.write_bytes(bytes(raw))
    with pytest.raises(dm.MNISTUnavailable, match="checksum mismatch") as e:
        download_mnist("test", tmp_path, url=url, progress=False)
    assert "t10k-labels-idx1-ubyte.gz" in str(e.value)
    left = sorted(p.name for p in (tmp_path / "mnist").iterdir())
    assert left == [MNIST_FILES["test"][0]]                        # the good images file only: no labels, no .part


def test_files_on_disk_are_verified_once(tmp_path, monkeypatch):
    d = tmp_path / "mnist"; shutil.copytree(dm.BUNDLED, d)
    calls = []
    real = dm.sha256_file
    monkeypatch.setattr(dm, "sha256_file", lambda p: calls.append(Path(p).name) or real(p))
    load_mnist("test", tmp_path); load_mnist("test", tmp_path)
    assert sorted(calls) == sorted(MNIST_FILES["test"])                       # each file hashed once, not per load
    f = d / MNIST_FILES["test"][1]
    raw = bytearray(f.read_bytes()); raw[-30] ^= 0xFF; f.write_bytes(bytes(raw))   # damaged on disk (a new mtime)
    with pytest.raises(ValueError, match="Delete the file") as e: load_mnist("test", tmp_path)
    assert str(f) in str(e.value)


def test_rotate(mnist):
    x = mnist[0][:16].float()[:, None] / 255
    assert torch.allclose(rotate(x, 360.0), x, atol=1e-4)
    assert torch.allclose(rotate(x, torch.full((16,), 90.0)), torch.rot90(x, 1, (2, 3)), atol=1e-5)  # counter-clockwise
    assert not torch.allclose(rotate(x, 90.0), torch.rot90(x, -1, (2, 3)), atol=1e-2)
    y = rotate(x, torch.linspace(0, 300, 16))
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.05)   # ink is kept (digit away from the border)
    with pytest.raises(ValueError, match="float"): rotate(mnist[0][:2, None], 10.0)


def test_rotating_mnist_shapes_labels_range_period(tmp_path, mnist):
    d = make_rotating_mnist(**SMALL, cache_dir=tmp_path)
    assert (d.train.x.shape == (20, 17, 1, 28, 28) and d.val.x.shape == (5, 20, 1, 28, 28)
            and d.test.x.shape == (6, 20, 1, 28, 28))
    assert (d.train.x.dtype == torch.float32 and d.train.mask.all()
            and torch.allclose(d.test.t, 0.1 * torch.arange(20.0)))
    for s in ("train", "val", "test"):
        split = getattr(d, s)
        assert split.labels.dtype == torch.int64 and torch.equal(split.labels, mnist[1][d.index[s]])
        assert split.x.min() >= 0 and split.x.max() <= 1
    assert len(torch.cat([d.index[s] for s in ("train", "val", "test")]).unique()) == 31
    assert (d.train.x[:, 16] - d.train.x[:, 0]).abs().max() < 1e-3          # 16 x 22.5 degrees = one turn
    assert (d.train.x[:, 8] - d.train.x[:, 0]).abs().max() > 0.5            # half a turn is not
    e = make_rotating_mnist(**{**SMALL, "n_angles": 8, "t_train": 9}, cache_dir=tmp_path)
    assert (e.train.x[:, 8] - e.train.x[:, 0]).abs().max() < 1e-3


def test_rotating_mnist_seeds_and_cache(tmp_path, monkeypatch):
    t0 = time.perf_counter(); a = make_rotating_mnist(**SMALL, cache_dir=tmp_path); t_gen = time.perf_counter() - t0
    assert len(list(tmp_path.glob("*.pt"))) == 1
    monkeypatch.setattr(dm, "load_mnist", lambda *a, **k: pytest.fail("cache miss: MNIST was read again"))
    t0 = time.perf_counter(); b = make_rotating_mnist(**SMALL, cache_dir=tmp_path); t_hit = time.perf_counter() - t0
    assert t_hit < max(t_gen, 0.5)
    for s in ("train", "val", "test"):
        assert torch.equal(getattr(a, s).x, getattr(b, s).x) and torch.equal(a.angles[s], b.angles[s])
    monkeypatch.undo()
    c = make_rotating_mnist(**SMALL, cache_dir=tmp_path / "fresh")          # same seed, regenerated: identical
    assert torch.equal(a.train.x, c.train.x) and torch.equal(a.test.labels, c.test.labels)
    other = make_rotating_mnist(**{**SMALL, "seed": 1}, cache_dir=tmp_path)
    assert not torch.equal(other.train.x, a.train.x) and not torch.equal(other.angles["test"], a.angles["test"])


def test_rotating_mnist_bad_arguments(tmp_path):
    for kw, msg in ((dict(n_train=9990), "10000"), (dict(t_train=1), "t_train"), (dict(n_test=0), "n_test"),
                    (dict(dt=0.0), "dt"), (dict(n_angles=0), "n_angles")):
        with pytest.raises(ValueError, match=msg): make_rotating_mnist(data_dir=DATA, cache_dir=tmp_path, **kw)


def test_shuffle_frames_is_a_per_sequence_permutation():
    x = torch.arange(200 * 4).reshape(200, 4, 1, 1).float()
    y = shuffle_frames(x, torch.Generator().manual_seed(0))
    order = (y[:, :, 0, 0] - x[:, :1, 0, 0]).long()                           # frame indices used, per sequence
    assert torch.equal(order.sort(1).values, torch.arange(4).expand(200, 4))  # a permutation of the frames
    assert not (order == torch.arange(4)).all(1).any()                        # never the identity
    assert len({tuple(r) for r in order.tolist()}) > 10                       # different per sequence
    assert torch.equal(y, shuffle_frames(x, torch.Generator().manual_seed(0)))
    two = shuffle_frames(x[:, :2], torch.Generator().manual_seed(1))
    assert torch.equal(two, x[:, :2].flip(1))                                # T = 2: the only non-identity order
