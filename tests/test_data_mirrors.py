"""Mirrors for ``chimed-eval data``: a Hugging Face endpoint (``$HF_ENDPOINT``, hf-mirror.com's
layout under another host), ModelScope, a mirror tree (``base/host/path``) as a URL or a local
folder; one data-dir resolver for ``data`` and ``run``; ``tasks`` marks the data present.

One local ``http.server`` (127.0.0.1) imitates each layout at once: ``/datasets/...`` as the
Hugging Face hub and hf-mirror.com serve it, ``/ms/datasets/{owner}/{name}/resolve/{rev}/{path}``
as ModelScope does, and ``/tree/{host}/{path}`` as a mirror tree. Every file is still checked
against the manifest's sha256.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_data_fetch import CSV, ZIP, Server, make_zip, quiet, sha

from chimed_eval.core.errors import ConfigError
from chimed_eval.data import sets as data
from chimed_eval.data.fetch import download_url
from chimed_eval.data.mirrors import MODELSCOPE, Mirror, ModelScopeFile, parse_mirror, source_url
from chimed_eval.data.specs import DatasetSpec, Download, shipped_manifest

HF_URL = "https://huggingface.co/datasets/acme/exam/resolve/main/exam.zip"
GH_URL = "https://raw.githubusercontent.com/acme/repo/abc123/data/dev/anatomy.csv"
MS = ModelScopeFile("acme-ms/exam", "master", "exam.zip")
ZIP_FILES = {"exam/dev/anatomy_dev.csv": sha(CSV), "exam/val/anatomy_val.csv": sha(CSV + b"1,x,a,b,c,d,A\n")}
ZIP_MEMBERS = {"exam/dev/anatomy_dev.csv": "dev/anatomy_dev.csv", "exam/val/anatomy_val.csv": "val/anatomy_val.csv"}


def manifest() -> dict[str, DatasetSpec]:
    return {"exam": DatasetSpec("exam", "an exam", "MIT", "acme", (
        Download(HF_URL, ZIP_FILES, kind="zip", members=ZIP_MEMBERS, modelscope=MS),
        Download(GH_URL, {"exam/extra/anatomy.csv": sha(CSV)}),
    ))}


@pytest.fixture
def hub(tmp_path: Path):
    """One server with the three layouts: HF at /, ModelScope under /ms, a mirror tree under /tree."""
    srv = Server(tmp_path / "served")
    srv.write("datasets/acme/exam/resolve/main/exam.zip", ZIP)
    srv.write("ms/datasets/acme-ms/exam/resolve/master/exam.zip", ZIP)
    srv.write("tree/huggingface.co/datasets/acme/exam/resolve/main/exam.zip", ZIP)
    srv.write("tree/raw.githubusercontent.com/acme/repo/abc123/data/dev/anatomy.csv", CSV)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHIMED_EVAL_DATA_MIRROR", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


def fetched(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_parse_mirror_forms(tmp_path: Path) -> None:
    assert parse_mirror("https://hf-mirror.com") == Mirror("hf-endpoint", "https://hf-mirror.com")
    assert parse_mirror("hf-mirror") == Mirror("hf-endpoint", "https://hf-mirror.com")
    assert parse_mirror("hf:http://127.0.0.1:9/hub/") == Mirror("hf-endpoint", "http://127.0.0.1:9/hub")
    assert parse_mirror("modelscope") == Mirror("modelscope", MODELSCOPE)
    assert parse_mirror("modelscope:http://127.0.0.1:9/ms") == Mirror("modelscope", "http://127.0.0.1:9/ms")
    assert parse_mirror("http://mirror.lan/chimed/") == Mirror("tree", "http://mirror.lan/chimed")
    assert parse_mirror(str(tmp_path)) == Mirror("tree", tmp_path.resolve().as_uri())
    assert parse_mirror("") == Mirror() and parse_mirror(None, env={}) == Mirror()
    assert parse_mirror(None, env={"CHIMED_EVAL_DATA_MIRROR": "modelscope"}).kind == "modelscope"
    for bad in ("ftp://x/y", str(tmp_path / "nope"), "hf:not-a-url"):
        with pytest.raises(ConfigError, match="--mirror"):
            parse_mirror(bad)


def test_each_layout_maps_the_official_urls() -> None:
    hf, ms = Mirror("hf-endpoint", "https://hf-mirror.com"), Mirror("modelscope", MODELSCOPE)
    assert source_url(HF_URL, hf, MS, env={}) == "https://hf-mirror.com/datasets/acme/exam/resolve/main/exam.zip"
    assert source_url(GH_URL, hf, None, env={}) == GH_URL  # hf-mirror serves only the hub's files
    assert source_url(HF_URL, ms, MS, env={}) == "https://www.modelscope.cn/datasets/acme-ms/exam/resolve/master/exam.zip"
    assert source_url(GH_URL, ms, None, env={}) == GH_URL  # no ModelScope copy declared: official
    assert source_url(HF_URL, Mirror(), MS, env={"HF_ENDPOINT": "https://hf-mirror.com/"}) == \
        "https://hf-mirror.com/datasets/acme/exam/resolve/main/exam.zip"
    assert source_url(GH_URL, Mirror(), None, env={"HF_ENDPOINT": "https://hf-mirror.com"}) == GH_URL
    assert source_url(HF_URL, Mirror("tree", "http://m.lan"), MS, env={}) == \
        "http://m.lan/huggingface.co/datasets/acme/exam/resolve/main/exam.zip"


def test_shipped_modelscope_sources_are_the_declared_ones() -> None:
    """Only C-Eval's archive is declared on ModelScope (opencompass/ceval-exam, the archive
    OpenCompass documents); it is the same archive, checked by the same per-file sha256s."""
    declared = {s.name: d.modelscope for s in shipped_manifest().values() for d in s.downloads if d.modelscope}
    assert declared == {"ceval": ModelScopeFile("opencompass/ceval-exam", "master", "ceval-exam.zip")}
    dl = next(d for d in shipped_manifest()["ceval"].downloads if d.modelscope)
    assert download_url(dl, parse_mirror("modelscope")) == \
        "https://www.modelscope.cn/datasets/opencompass/ceval-exam/resolve/master/ceval-exam.zip"
    assert download_url(dl, parse_mirror("https://hf-mirror.com")) == \
        "https://hf-mirror.com/datasets/ceval/ceval-exam/resolve/main/ceval-exam.zip"


def test_hf_endpoint_layout_serves_the_hub_file(hub: Server, tmp_path: Path, monkeypatch) -> None:
    """--mirror hf:URL fetches the hub's archive in the HF layout; the GitHub file is official,
    so with no network for it that one download fails and names its URL."""
    out = tmp_path / "d"
    spec = manifest()
    only_hub = {"exam": DatasetSpec("exam", "t", "MIT", "s", spec["exam"].downloads[:1])}
    data.fetch_datasets(None, out, base_url=f"hf:{hub.url}", log=quiet, manifest=only_hub)
    assert fetched(out) == {"exam/dev/anatomy_dev.csv": CSV, "exam/val/anatomy_val.csv": CSV + b"1,x,a,b,c,d,A\n"}
    assert hub.requests == ["/datasets/acme/exam/resolve/main/exam.zip"]


def test_hf_endpoint_env_is_honoured_without_a_mirror(hub: Server, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    only_hub = {"exam": DatasetSpec("exam", "t", "MIT", "s", manifest()["exam"].downloads[:1])}
    data.fetch_datasets(None, tmp_path / "d", base_url=None, log=quiet, manifest=only_hub)
    assert hub.requests == ["/datasets/acme/exam/resolve/main/exam.zip"]
    assert len(fetched(tmp_path / "d")) == 2


def test_modelscope_layout_and_its_checksum(hub: Server, tmp_path: Path) -> None:
    only_hub = {"exam": DatasetSpec("exam", "t", "MIT", "s", manifest()["exam"].downloads[:1])}
    data.fetch_datasets(None, tmp_path / "d", base_url=f"modelscope:{hub.url}/ms", log=quiet, manifest=only_hub)
    assert hub.requests == ["/ms/datasets/acme-ms/exam/resolve/master/exam.zip"]
    assert len(fetched(tmp_path / "d")) == 2
    # a ModelScope copy that differs from the release is refused, nothing written
    hub.write("ms/datasets/acme-ms/exam/resolve/master/exam.zip",
              make_zip({"dev/anatomy_dev.csv": CSV + b"tampered", "val/anatomy_val.csv": CSV}))
    with pytest.raises(data.ChecksumError, match="sha256 mismatch"):
        data.fetch_datasets(None, tmp_path / "e", base_url=f"modelscope:{hub.url}/ms", log=quiet, manifest=only_hub)
    assert not (tmp_path / "e" / "exam" / "dev").exists()


def test_tree_layout_by_url_and_by_local_folder(hub: Server, tmp_path: Path) -> None:
    data.fetch_datasets(None, tmp_path / "d", base_url=f"{hub.url}/tree", log=quiet, manifest=manifest())
    assert len(fetched(tmp_path / "d")) == 3
    assert sorted(hub.requests) == ["/tree/huggingface.co/datasets/acme/exam/resolve/main/exam.zip",
                                    "/tree/raw.githubusercontent.com/acme/repo/abc123/data/dev/anatomy.csv"]
    folder = hub.root / "tree"  # the same tree as a plain local folder, and as a file:// URL
    for spec in (str(folder), folder.as_uri()):
        out = tmp_path / f"local-{len(spec)}"
        data.fetch_datasets(None, out, base_url=spec, log=quiet, manifest=manifest())
        assert fetched(out) == fetched(tmp_path / "d")


def test_data_command_names_a_bad_mirror(tmp_path: Path, capsys) -> None:
    code = data.run_data_command(tmp_path, None, "ftp://nowhere/x", False, False, manifest=manifest())
    assert code == 2 and "--mirror 'ftp://nowhere/x'" in capsys.readouterr().err


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    full = {**os.environ, **env, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-m", "chimed_eval", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=120)


def test_data_check_and_run_find_the_same_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --data-dir, `data --check` looks where `run` looks: ../shared/data from a sibling folder."""
    shared = tmp_path / "shared" / "data" / "ceval"
    shared.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    res = _cli(["data", "--check", "--datasets", "ceval"], work, {"CHIMED_EVAL_DATA": ""})
    assert "data dir: ../shared/data" in res.stdout, res.stdout + res.stderr
    from chimed_eval.data.locations import default_data_dir

    monkeypatch.chdir(work)
    monkeypatch.delenv("CHIMED_EVAL_DATA", raising=False)
    assert default_data_dir() == str(Path("../shared/data"))


def test_tasks_marks_which_tasks_have_their_data(tmp_path: Path) -> None:
    """`tasks` loads each task as a run would: present with its item count, or 'no'."""
    src = Path(os.environ.get("CHIMED_EVAL_SHARED_DATA", "/work/shared/data")) / "ceval"
    if not (src / "val").is_dir():
        pytest.skip("the shared C-Eval copy is not here")
    import shutil

    shutil.copytree(src, tmp_path / "data" / "ceval")
    res = _cli(["tasks", "--data-dir", str(tmp_path / "data")], tmp_path, {})
    assert res.returncode == 0, res.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in res.stdout.splitlines() if line[:1].isalnum()}
    assert rows["ceval-medical-paper"] == ["yes", "41"]
    assert rows["cmmlu-medical"][0] == "no" and rows["chimed-qa"][0] == "no"
    quick = _cli(["tasks", "--no-data-check"], tmp_path, {})
    assert " yes " not in quick.stdout and "ceval-medical-paper" in quick.stdout
