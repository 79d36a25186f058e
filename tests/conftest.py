import json, os, pathlib, subprocess, sys, time
import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]

# One torch thread for the whole run, set here (conftest is imported before any test module or fixture of any scope
# runs): a reduction split over another number of threads rounds differently, and a short training run amplifies the
# difference, so every test trains under the same count. ODELEBM_TEST_THREADS=2 runs the suite on two (make test-cpus).
THREADS = int(os.environ.get("ODELEBM_TEST_THREADS", "1"))
torch.set_num_threads(THREADS)

# x86 SIMD levels of PyTorch's CPU kernels, lowest first ("default" is plain C++, present on every CPU)
_LEVELS = ["default", "avx2", "avx512"]


def cpu_capabilities() -> list[str]:
    """Every `ATEN_CPU_CAPABILITY` this CPU can run: 'default' and each level up to the native one (read without the
    variable)."""
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    native = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                            env=env, capture_output=True, text=True, check=True).stdout.strip().lower()
    return _LEVELS[:_LEVELS.index(native) + 1] if native in _LEVELS else ["default", native]


def _setting() -> str:
    return (f"torch {torch.__version__}: {THREADS} thread(s) (ODELEBM_TEST_THREADS), "
            f"CPU kernels {torch.backends.cpu.get_cpu_capability()} (ATEN_CPU_CAPABILITY)")


def pytest_report_header(config):
    return _setting()


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"tests ran on {_setting()}")   # also under -q, which leaves out the header


@pytest.fixture(autouse=True)
def _threads():
    # a test or notebook that changes the count (the executors, the benchmark notebook) does not change it for the next
    torch.set_num_threads(THREADS)
    yield


def core(results_file: pathlib.Path) -> list[tuple]:
    """The measured values of a results file: (table, method, column, seed, value) rows, sorted; timings (records
    marked `timing`, which differ between any two runs) left out."""
    return sorted((r["table"], r["method"], r["column"], r["seed"], r["value"])
                  for r in json.loads(results_file.read_text())["records"] if not r.get("timing"))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """What CI runs: the real experiment notebooks through the console script, smoke profile, uninterrupted, local
    executor."""
    runs = tmp_path_factory.mktemp("smoke") / "runs"
    exe = pathlib.Path(sys.executable).parent / "odelebm-reproduce"
    t0 = time.time()
    r = subprocess.run([str(exe), "--profile", "smoke", "--run-dir", str(runs)], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"smoke profile, local executor: {time.time() - t0:.1f} s")
    return runs
