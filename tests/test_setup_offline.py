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


def test_fetch_reports_what_it_found_and_fails_only_for_what_is_missing(offline, data_less_repo, capsys):
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
