"""`python -m claimbench.data fetch` offline and without data: a short message, exit 2 (0 with --allow-missing),
no traceback, no empty data-cache/ left behind. Downloads are monkeypatched to fail: nothing touches the network."""

from urllib.error import URLError

import pytest
from conftest import REPO

from claimbench import data


def failing_download(exc):
    """A downloader that leaves a partial file in its target folder, then raises `exc`."""

    def download(target):
        (target / "partial.tmp").write_bytes(b"half")
        raise exc

    return download


@pytest.fixture
def offline(data_less_repo, monkeypatch):
    """No dataset anywhere; every download fails as without network. Returns the list of datasets tried."""
    tried = []
    for name in ("fashion_mnist", "tinyshakespeare", "cifar10"):
        def download(target, name=name):
            tried.append(name)
            failing_download(URLError("[Errno -3] Temporary failure in name resolution"))(target)

        monkeypatch.setattr(data, f"_download_{name}", download)
    return tried


def test_fetch_offline_without_data_exits_2_with_a_short_message(offline, data_less_repo, capsys):
    assert data.main(["fetch"]) == 2
    out, err = capsys.readouterr()
    assert offline == ["fashion_mnist", "tinyshakespeare"]
    assert "Traceback" not in out + err and len(err.splitlines()) <= 14
    assert err.startswith("error: dataset 'fashion-mnist' not found")
    for folder in data.default_dirs("fashion-mnist") + data.default_dirs("tinyshakespeare"):
        assert str(folder) in err
    for way in ("shared/data/fashion-mnist", "apt-get install dataset-fashion-mnist", "CLAIMBENCH_DATA=",
                "python -m claimbench.data fetch", "URLError", "name resolution"):
        assert way in err
    assert not (data_less_repo / data.DOWNLOAD_CACHE).exists()


def test_fetch_allow_missing_warns_and_exits_0(offline, data_less_repo, capsys):
    assert data.main(["fetch", "--allow-missing"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: dataset ") == 2 and "error:" not in err and "Traceback" not in err
    assert not (data_less_repo / data.DOWNLOAD_CACHE).exists()


def test_fetch_reports_what_it_found_and_fails_only_for_what_is_missing(offline, data_less_repo, capsys, monkeypatch):
    monkeypatch.setattr(data, "expected_checksums", lambda: {})  # a stand-in input.txt: its checksum is not known
    shakespeare = data_less_repo.parent / "shared" / "data" / "tinyshakespeare"
    shakespeare.mkdir(parents=True)
    (shakespeare / "input.txt").write_text("To be")
    assert data.main(["fetch"]) == 2
    out, err = capsys.readouterr()
    assert f"tinyshakespeare: {shakespeare}" in out and "fashion-mnist" in err and "tinyshakespeare" not in err
    assert offline == ["fashion_mnist"]


def test_failed_download_keeps_an_existing_cache_and_drops_only_its_own_folder(offline, data_less_repo):
    cache = data_less_repo / data.DOWNLOAD_CACHE
    (cache / "other").mkdir(parents=True)
    with pytest.raises(data.DataError, match="download failed too: URLError"):
        data.fetch_one("fashion-mnist")
    assert cache.is_dir() and sorted(p.name for p in cache.iterdir()) == ["other"]


def test_torchvision_style_multiline_error_is_one_line(data_less_repo, monkeypatch):
    err = RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a/, got:\n<urlopen error x>\n")
    monkeypatch.setattr(data, "_download_fashion_mnist", failing_download(err))
    with pytest.raises(data.DataError) as e:
        data.fetch_one("fashion-mnist")
    assert str(e.value).splitlines()[-1] == (
        "The download failed too: RuntimeError: Error downloading train-images-idx3-ubyte.gz: … <urlopen error x>")
    assert not (data_less_repo / data.DOWNLOAD_CACHE).exists()


def test_offline_flag_and_explicit_folder_never_download(offline, data_less_repo, monkeypatch, capsys):
    assert data.main(["fetch", "--offline"]) == 2
    monkeypatch.setenv("CLAIMBENCH_DATA", str(data_less_repo.parent / "empty"))
    assert data.main(["fetch"]) == 2
    assert data.main(["fetch", "--root", str(data_less_repo.parent / "empty"), "--cifar10"]) == 2
    err = capsys.readouterr().err
    assert offline == [] and "CLAIMBENCH_DATA" in err and "data.root" in err and "cifar10/" in err
    assert not (data_less_repo / data.DOWNLOAD_CACHE).exists()


def test_setup_sh_lets_setup_complete_without_data():
    lines = (REPO / "setup.sh").read_text().splitlines()
    assert "python -m claimbench.data fetch --allow-missing" in lines


def _lock() -> dict[str, str]:
    """requirements.lock as normalised name -> version; every line that is not a comment must be `name==version`."""
    from claimbench.provenance import _name

    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version and " " not in line and "@" not in line, f"not an exact pin: {line!r}"
            pins[_name(name)] = version
    return pins


def test_setup_sh_installs_from_the_lock_in_one_command():
    installs = [line for line in (REPO / "setup.sh").read_text().splitlines() if "pip install" in line]
    want = 'python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev,ray]"'
    assert installs == [want]


def test_the_lock_pins_every_dependency_named_in_pyproject():
    import tomllib

    from claimbench.provenance import _name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    named = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    pins = _lock()
    assert "claimbench" not in pins
    assert [r for r in named if _name(r) not in pins] == []
    for r in named:  # an exact pin in pyproject (torch, torchvision, ray) is the lock's version
        if "==" in r:
            assert pins[_name(r)] == r.split("==")[1].strip(), r


def test_lock_generator_lists_the_closure_of_the_installed_dependencies(capsys):
    """The lock is the transitive closure: pyproject's dependencies and theirs (torch needs filelock, sympy)."""
    from importlib import metadata

    from claimbench import provenance

    try:
        metadata.requires("claimbench")
    except metadata.PackageNotFoundError:
        pytest.skip("claimbench is not pip-installed here (PYTHONPATH=src): no metadata to walk")
    pins = provenance.locked_requirements()
    assert {"torch", "numpy", "pyyaml", "pytest", "ray", "filelock", "sympy"} <= set(pins)
    assert pins["torch"] == metadata.version("torch") and "claimbench" not in pins
    assert provenance.main(["lock"]) == 0
    out = capsys.readouterr().out
    assert f"torch=={metadata.version('torch')}" in out.splitlines()


def test_fetch_names_a_corrupt_dataset_file_in_one_line(offline, data_less_repo, capsys):
    shakespeare = data_less_repo.parent / "shared" / "data" / "tinyshakespeare"
    shakespeare.mkdir(parents=True)
    (shakespeare / "input.txt").write_text("To be")
    assert data.main(["fetch"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "tinyshakespeare" in line]
    assert len(err) == 1 and err[0].startswith(f"error: {shakespeare / 'input.txt'}: checksum mismatch: sha256 is ")
    assert offline == ["fashion_mnist"]  # found, so never downloaded over
