"""Shared fixtures: a throwaway repository root holding params.yaml with only the toy claim; the whole
pipeline reproduced once at the `ci` scale (session-scoped: every end-to-end test reads the same run);
torch's default dtype restored after every test (the ci scale sets float64)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import toy_claim
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    """make_context(…, 'ci') switches torch to float64 for the process; no test may leak that."""
    import torch

    before = torch.get_default_dtype()
    yield
    torch.set_default_dtype(before)


def run(cmd, cwd, env, timeout=1500):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def copy_tree(root: Path) -> Path:
    """Copy the committed tree (+ uncommitted, non-ignored files) of the repository into `root`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / f)
    shutil.rmtree(root / "results" / "ci", ignore_errors=True)
    return root


def ci_env(root: Path, data: Path, **extra: str) -> dict:
    return {**os.environ, "CLAIMBENCH_DATA": str(data), "PYTHONPATH": str(root / "src"), "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", **extra}


@pytest.fixture(scope="session")
def ci_data(tmp_path_factory):
    """One folder holding links to both datasets the ci scale reads (wherever the search finds them)."""
    from claimbench.data import fashion_mnist_dir, tinyshakespeare_dir

    try:
        found = {"fashion-mnist": fashion_mnist_dir(), "tinyshakespeare": tinyshakespeare_dir()}
    except Exception as e:  # noqa: BLE001 - DataError: the end-to-end tests cannot run without data
        pytest.skip(f"the ci pipeline needs Fashion-MNIST and Tiny Shakespeare: {str(e).splitlines()[0]}")
    data = tmp_path_factory.mktemp("data")
    for name, folder in found.items():
        (data / name).symlink_to(folder, target_is_directory=True)
    return data


@pytest.fixture(scope="session")
def ci_repo(tmp_path_factory, ci_data):
    """A fresh copy of the tree, reproduced with `dvc repro` at scale ci on this CPU's own kernels and
    torch's default thread count. Every end-to-end test reads this one run."""
    root = copy_tree(tmp_path_factory.mktemp("repo"))
    env = ci_env(root, ci_data)
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("\nscale: quick\n", "\nscale: ci\n", 1))
    run(["git", "init", "-q"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "snapshot"], root, env)
    run(["dvc", "repro", "--no-commit"], root, env)
    return root


OTHER_KERNELS = {"AVX512": "avx2"}  # else (AVX2 CPUs) both runs use avx2 and differ in threads and processes


@pytest.fixture(scope="session")
def ci_repo_other_kernels(tmp_path_factory, ci_data):
    """The ci scale again in another copy, on the other common kernel path (avx2 where this CPU picks
    avx512) and with one thread: `python -m claimbench.reference run`, all claims in one process."""
    import torch

    native = torch.backends.cpu.get_cpu_capability()
    root = copy_tree(tmp_path_factory.mktemp("repo_other_kernels"))
    env = ci_env(root, ci_data, ATEN_CPU_CAPABILITY=OTHER_KERNELS.get(native, "avx2"), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "claimbench.reference", "run"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=1500)
    assert out.returncode in (0, 1), f"reference run failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return root


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    """A repo-like folder with params.yaml for the toy claim; claim discovery and cards point at it."""
    import claimbench.cards
    import claimbench.claims

    params = {"scale": "ci", "data": {"root": None, "device": "cpu"}, "executor": {"workers": 1},
              "toy": {s: {"per_class": 20, "epochs": 2, "seeds": [0, 1]}
                      for s in ("ci", "quick", "long", "gpu", "paper")}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(claimbench.claims, "registry", lambda: {"toy": toy_claim.ToyEntry()})
    monkeypatch.setattr(claimbench.cards, "CARD_DIR", FIXTURES)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_data(name='fashion-mnist'): skip unless the dataset is found by the search (env or defaults)"
    )


def pytest_runtest_setup(item):
    """Skip a test marked needs_data whose dataset is not found, so a data-less checkout runs the data-free tests."""
    from claimbench.data import candidate_dirs, locate
    from claimbench.errors import DataError

    for mark in item.iter_markers("needs_data"):
        name = mark.args[0] if mark.args else "fashion-mnist"
        try:
            locate(name)
        except DataError:
            searched = ", ".join(str(p) for p in candidate_dirs(name))
            pytest.skip(f"needs the {name} data, not found in {searched}; see `python -m claimbench.data fetch`")


@pytest.fixture
def data_less_repo(tmp_path, monkeypatch):
    """A repository at tmp/repo: env CLAIMBENCH_DATA unset and every default data folder empty (tmp/shared/data,
    tmp/system for /usr/share/datasets, tmp/repo/data-cache), so no dataset is found unless a test puts one there."""
    from claimbench import data

    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setattr(data, "repo_root", lambda: repo)
    monkeypatch.setattr(data, "SYSTEM_DATASETS", tmp_path / "system")
    monkeypatch.delenv("CLAIMBENCH_DATA", raising=False)
    return repo


@pytest.fixture
def float64_one_thread():
    """float64 and one torch thread for the test (exact, order-stable comparisons); both restored after."""
    import torch

    before, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(before)
    torch.set_num_threads(threads)
