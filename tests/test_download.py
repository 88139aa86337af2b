"""CIFAR-10 arrives by itself: resolve_cifar10 and the command line find it in datasets/cache/
or download the official archive there, against a loopback server serving a generated archive
in the official format (no network). Byte-level resume and restart of download_url are in
test_data.py."""
import os

import pytest

from cifar_fixture import tar_folder, write_cifar_batches, write_jpeg_copy
from clirun import assert_fails, run_cli
from loopback import closed_port_url, serve
from tinyvision import data
from tinyvision.data import DownloadError, resolve_cifar10
from tinyvision.errors import InputError

CACHED = os.path.join("datasets", "cache", "cifar-10-python.tar.gz")
ALTERNATIVES = ("--data PATH", "cifar-10-python.tar.gz", "cifar-10-batches-py", "datasets/README.md")


@pytest.fixture
def site(tmp_path):
    """A loopback server with a generated cifar-10-python.tar.gz: yields (server, url, md5)."""
    www = tmp_path / "www"
    www.mkdir()
    batches = write_cifar_batches(str(tmp_path / "src"), n_train=100, n_test=50)
    archive = tar_folder(batches, str(www / "cifar-10-python.tar.gz"))
    with serve(www) as server:
        yield server, server.url("cifar-10-python.tar.gz"), data.md5sum(archive)


@pytest.fixture
def home(tmp_path, monkeypatch, site):
    """An empty current folder, with the environment pointing the download at ``site``."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.chdir(folder)
    _, url, md5 = site
    monkeypatch.setenv("TINYVISION_CIFAR10_URL", url)
    monkeypatch.setenv("TINYVISION_CIFAR10_MD5", md5)
    return folder


def one_line(err):
    text = str(err.value)
    assert "\n" not in text
    return text


def test_downloads_into_the_cache_once_and_loads(site, home, tmp_path):
    server, _, md5 = site
    path = resolve_cifar10(progress=False)
    assert path == CACHED and data.md5sum(path) == md5 and not os.path.exists(path + ".part")
    assert len(data.CIFAR10(path, cache_dir=str(tmp_path / "c"))) == 100
    assert resolve_cifar10(progress=False) == CACHED and len(server.requests) == 1  # found, not fetched


def test_cache_order_and_no_network_when_found(site, home):
    cache = home / "datasets" / "cache"
    write_cifar_batches(str(cache))
    assert resolve_cifar10(download=False) == os.path.join("datasets", "cache", "cifar-10-batches-py")
    tar_folder(str(cache / "cifar-10-batches-py"), str(cache / "cifar-10-python.tar.gz"))
    assert resolve_cifar10(download=False) == CACHED
    write_jpeg_copy(str(cache / "cifar10-jpeg.tar.gz"), per_class=1)
    assert resolve_cifar10() == os.path.join("datasets", "cache", "cifar10-jpeg.tar.gz")
    assert resolve_cifar10(str(cache / "cifar-10-batches-py")) == str(cache / "cifar-10-batches-py")  # --data wins
    assert site[0].requests == []


def test_wrong_md5_leaves_no_file_and_empty_md5_skips_the_check(site, home, monkeypatch):
    monkeypatch.setenv("TINYVISION_CIFAR10_MD5", "0" * 32)
    with pytest.raises(DownloadError) as err:
        resolve_cifar10(progress=False)
    text = one_line(err)
    assert isinstance(err.value, OSError) and site[1] in text and "md5" in text and "0" * 32 in text
    assert not os.path.exists(CACHED) and not os.path.exists(CACHED + ".part")
    monkeypatch.setenv("TINYVISION_CIFAR10_MD5", "")
    assert resolve_cifar10(progress=False) == CACHED


@pytest.mark.parametrize("where, reason", [("closed port", "connection refused"), ("missing file", "http 404"),
                                           ("not a url", "unknown url type")])
def test_failed_download_says_why_and_what_to_do_instead(site, home, monkeypatch, where, reason):
    url = {"closed port": closed_port_url(), "missing file": site[0].url("nothing-here.tar.gz"),
           "not a url": "cifar-10-python.tar.gz"}[where]
    monkeypatch.setenv("TINYVISION_CIFAR10_URL", url)
    with pytest.raises(DownloadError) as err:
        resolve_cifar10(progress=False)
    text = one_line(err)
    assert f"download of {url} failed" in text and reason in text.lower()
    assert all(word in text for word in ALTERNATIVES), text
    assert not os.path.exists(CACHED)


def test_dropped_connection_keeps_the_part_file_and_the_next_run_resumes(site, home):
    server, _, md5 = site
    server.cut = 3000
    with pytest.raises(DownloadError) as err:
        resolve_cifar10(progress=False)
    assert "closed after 3000 of" in one_line(err) and "resume" in str(err.value)
    assert os.path.getsize(CACHED + ".part") == 3000 and not os.path.exists(CACHED)
    server.cut = None
    assert resolve_cifar10(progress=False) == CACHED and data.md5sum(CACHED) == md5


def test_no_download_and_missing_path_are_input_errors(site, home):
    with pytest.raises(InputError) as err:
        resolve_cifar10(download=False)
    text = one_line(err)
    assert "--no-download" in text and os.path.join(str(home), "datasets", "cache") in text
    assert all(word in text for word in ("cifar10-jpeg.tar.gz", *ALTERNATIVES)), text
    with pytest.raises(InputError) as err:
        resolve_cifar10("nope/cifar.tar.gz")
    assert "nope/cifar.tar.gz" in one_line(err) and "leave out --data" in str(err.value)
    assert site[0].requests == [] and not os.path.exists("datasets")


def test_cifar10_download_true_uses_the_same_source_and_skips_a_root_with_data(site, home, tmp_path,
                                                                               monkeypatch):
    ds = data.CIFAR10("dl", download=True, cache_dir=str(tmp_path / "c"))  # URL and md5 from the environment
    assert len(ds) == 100 and os.path.exists(os.path.join("dl", "cifar-10-python.tar.gz"))
    monkeypatch.setenv("TINYVISION_CIFAR10_URL", closed_port_url())
    folder = write_cifar_batches(str(tmp_path / "extracted"), n_train=50, n_test=20)
    assert len(data.CIFAR10(folder, train=False, download=True, cache_dir=str(tmp_path / "c"))) == 20
    with pytest.raises(FileNotFoundError, match=r"leave out --data \(command line\) or pass download=True"):
        data.CIFAR10(str(tmp_path / "nowhere"))


# ------------------------------------------------------------------ the command line
TINY = ("--epochs", "1", "--subset", "2", "--test-subset", "2", "--batch-size", "8", "--model", "resnet20",
        "--no-progress")


def test_cli_train_downloads_cifar10_on_a_fresh_machine(site, tmp_path):
    _, url, md5 = site
    result = run_cli("train", *TINY, cwd=tmp_path, env={"TINYVISION_CIFAR10_URL": url, "TINYVISION_CIFAR10_MD5": md5})
    assert result.returncode == 0, result.stdout + result.stderr
    assert data.md5sum(str(tmp_path / CACHED)) == md5 and "epoch 1:" in result.stdout
    assert list(tmp_path.glob("runs/*/best.tvz"))


def test_cli_offline_says_why_in_one_line(tmp_path):
    url = closed_port_url()
    result = run_cli("train", *TINY, cwd=tmp_path, env={"TINYVISION_CIFAR10_URL": url})
    assert_fails(result, 1, f"download of {url} failed", "refused", *ALTERNATIVES)


def test_cli_no_download_and_missing_data_exit_2(tmp_path):
    env = {"TINYVISION_CIFAR10_URL": closed_port_url()}
    assert_fails(run_cli("train", *TINY, "--no-download", cwd=tmp_path, env=env), 2, "--no-download",
                 "cifar-10-batches-py")
    assert_fails(run_cli("train", *TINY, "--data", "nope.tar.gz", cwd=tmp_path, env=env), 2, "nope.tar.gz",
                 "leave out --data")
    assert not (tmp_path / "datasets").exists()
