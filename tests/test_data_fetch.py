"""``chimed-eval data``: fetching (through pooch), verifying and reporting data sets, all offline.

A local ``http.server`` on 127.0.0.1 stands in for the official hosts through the mirror mapping
(``base_url + "/" + host + path``), serving small fixture files and a zip that the tests write.
The last tests check the real manifest against the shared copies of the releases when present.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import free_port

from chimed_eval.data import sets as data
from chimed_eval.data.sets import ChecksumError, DatasetSpec, Download, DownloadError
from chimed_eval.core.errors import ConfigError, MissingDataError

CSV = ",Question,A,B,C,D,Answer\n0,壁胸膜的分部不包括,肋胸膜,肺胸膜,膈胸膜,胸膜顶,B\n".encode("utf-8")
GB = "department,title,ask,answer\n心血管科,高血压,能吃党参吗,可以\n".encode("gb18030")
BOM_JSON = b"\xef\xbb\xbf" + '{"originalText": "患者", "entities": []}\n'.encode("utf-8")
DIALOG = "id\t00009\n\nP\t肚子疼\tO\nD\t多久了\tO\n".encode("utf-8")


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


ZIP = make_zip(
    {
        "dev/anatomy_dev.csv": CSV,
        "val/anatomy_val.csv": CSV + b"1,x,a,b,c,d,A\n",
        "test/anatomy_test.csv": b"id,question,A,B,C,D\n",
    }
)
# An archive with an extra top-level folder and macOS junk: members are found by file name.
NESTED_ZIP = make_zip({"Task1/part1.txt": BOM_JSON, "__MACOSX/Task1/._part1.txt": b"junk"})


def official(path: str) -> str:
    return f"https://example.org/{path}"


def fixture_manifest() -> dict[str, DatasetSpec]:
    return {
        "alpha": DatasetSpec(
            "alpha",
            "plain files",
            "MIT",
            "example.org/repo @ abc",
            (
                Download(official("repo/abc/data/dev/anatomy.csv"), {"alpha/dev/anatomy.csv": sha(CSV)}),
                Download(official("repo/abc/样例_内科.csv"), {"alpha/internal_medicine.csv": sha(GB)}),
                Download(official("repo/abc/sample/train.dialog"), {"dialogue/alpha/train.dialog": sha(DIALOG)}),
            ),
        ),
        "beta": DatasetSpec(
            "beta",
            "a zip",
            "CC BY-NC-SA 4.0",
            "example.org/beta.zip",
            (
                Download(
                    official("hub/beta/resolve/main/beta.zip"),
                    {
                        "beta/dev/anatomy_dev.csv": sha(CSV),
                        "beta/val/anatomy_val.csv": sha(CSV + b"1,x,a,b,c,d,A\n"),
                        "beta/test/anatomy_test.csv": sha(b"id,question,A,B,C,D\n"),
                    },
                    kind="zip",
                    members={
                        "beta/dev/anatomy_dev.csv": "dev/anatomy_dev.csv",
                        "beta/val/anatomy_val.csv": "val/anatomy_val.csv",
                        "beta/test/anatomy_test.csv": "test/anatomy_test.csv",
                    },
                ),
                Download(official("repo/abc/nested.zip"), {"beta/part1.txt": sha(BOM_JSON)}, kind="zip"),
            ),
        ),
    }


SERVED = {
    "example.org/repo/abc/data/dev/anatomy.csv": CSV,
    "example.org/repo/abc/样例_内科.csv": GB,
    "example.org/repo/abc/sample/train.dialog": DIALOG,
    "example.org/hub/beta/resolve/main/beta.zip": ZIP,
    "example.org/repo/abc/nested.zip": NESTED_ZIP,
}


class Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        log = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def send_head(self):  # type: ignore[no-untyped-def]
                log.append(self.path)
                return super().send_head()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def write(self, rel: str, content: bytes) -> None:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path: Path):
    srv = Server(tmp_path / "mirror")
    for rel, content in SERVED.items():
        srv.write(rel, content)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def no_env_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)


def quiet(msg: str) -> None:
    pass


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def test_fetch_writes_the_layout_and_verifies(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "data"
    results = data.fetch_datasets(None, out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    expected = {
        "alpha/dev/anatomy.csv": CSV,
        "alpha/internal_medicine.csv": GB,
        "dialogue/alpha/train.dialog": DIALOG,
        "beta/dev/anatomy_dev.csv": CSV,
        "beta/val/anatomy_val.csv": CSV + b"1,x,a,b,c,d,A\n",
        "beta/test/anatomy_test.csv": b"id,question,A,B,C,D\n",
        "beta/part1.txt": BOM_JSON,  # bytes as released: the BOM is kept
    }
    for rel, content in expected.items():
        assert (out / rel).read_bytes() == content, rel
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == set(expected)  # no temporary files, no stray archive
    assert {r.path for r in results} == set(expected)
    assert all(r.action == "downloaded" for r in results)
    assert all(s.ok and s.state == "present" for s in data.status(out, manifest=fixture_manifest(), include_manual=False))


def test_second_run_downloads_nothing(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "data"
    data.fetch_datasets(None, out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    n = len(server.requests)
    again = data.fetch_datasets(None, out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    assert len(server.requests) == n
    assert all(r.action == "present" for r in again)
    forced = data.fetch_datasets(["beta"], out, base_url=server.url, log=quiet, manifest=fixture_manifest(), force=True)
    assert len(server.requests) == n + 2
    assert all(r.action == "downloaded" for r in forced)


def test_only_missing_files_are_fetched(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "data"
    data.fetch_datasets(["alpha"], out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    (out / "alpha/dev/anatomy.csv").unlink()
    server.requests.clear()
    res = data.fetch_datasets(["alpha"], out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    assert [r.path for r in res if r.action == "downloaded"] == ["alpha/dev/anatomy.csv"]
    assert server.requests == ["/example.org/repo/abc/data/dev/anatomy.csv"]


def test_mirror_url_mapping_and_env_var(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://raw.githubusercontent.com/o/r/0123abcd/data/dev/a.csv?x=1"
    assert data.mirror_url(url, "http://m.lan/pre/") == "http://m.lan/pre/raw.githubusercontent.com/o/r/0123abcd/data/dev/a.csv?x=1"
    assert data.mirror_url(url, None) == url
    assert data.mirror_url("https://h.org/样例.csv", None) == "https://h.org/%E6%A0%B7%E4%BE%8B.csv"
    monkeypatch.setenv(data.MIRROR_ENV, server.url)
    data.fetch_datasets(["alpha"], tmp_path / "data", log=quiet, manifest=fixture_manifest())
    assert (tmp_path / "data/alpha/internal_medicine.csv").read_bytes() == GB
    # a file:// mirror works too: the tree is host/path under a folder
    out2 = tmp_path / "data2"
    data.fetch_datasets(["alpha"], out2, base_url=server.root.as_uri(), log=quiet, manifest=fixture_manifest())
    assert (out2 / "alpha/dev/anatomy.csv").read_bytes() == CSV


def test_checksum_mismatch_fails_and_leaves_no_file(server: Server, tmp_path: Path) -> None:
    server.write("example.org/repo/abc/data/dev/anatomy.csv", CSV + b"tampered\n")
    out = tmp_path / "data"
    with pytest.raises(ChecksumError) as info:
        data.fetch_datasets(["alpha"], out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    msg = str(info.value)
    assert "alpha/dev/anatomy.csv" in msg
    assert sha(CSV) in msg and sha(CSV + b"tampered\n") in msg
    assert info.value.expected == sha(CSV)
    assert not (out / "alpha/dev/anatomy.csv").exists()
    assert leftovers(tmp_path / "data") == []


def test_checksum_mismatch_in_zip_member(server: Server, tmp_path: Path) -> None:
    server.write("example.org/hub/beta/resolve/main/beta.zip", make_zip({"dev/anatomy_dev.csv": b"bad"}))
    out = tmp_path / "data"
    with pytest.raises(ChecksumError, match="anatomy_dev.csv"):
        data.fetch_datasets(["beta"], out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    assert not (out / "beta/dev/anatomy_dev.csv").exists()
    assert [p for p in out.rglob("*") if p.is_file()] == []  # neither the archive nor parts remain


def test_not_a_zip_is_a_clear_error(server: Server, tmp_path: Path) -> None:
    server.write("example.org/repo/abc/nested.zip", b"<html>login</html>")
    with pytest.raises(DownloadError, match="did not return a zip"):
        data.fetch_datasets(["beta"], tmp_path / "data", base_url=server.url, log=quiet, manifest=fixture_manifest())
    assert leftovers(tmp_path / "data") == []


def test_a_good_file_survives_a_bad_forced_download(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "data"
    data.fetch_datasets(["alpha"], out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    server.write("example.org/repo/abc/data/dev/anatomy.csv", b"oops")
    with pytest.raises(ChecksumError):
        data.fetch_datasets(["alpha"], out, base_url=server.url, log=quiet, manifest=fixture_manifest(), force=True)
    assert (out / "alpha/dev/anatomy.csv").read_bytes() == CSV


def test_unreachable_server_names_the_url(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DownloadError) as info:
        data.fetch_datasets(["alpha"], tmp_path / "data", base_url=base, log=quiet, manifest=fixture_manifest(),
                            timeout=5)
    msg = str(info.value)
    assert f"{base}/example.org/repo/abc/data/dev/anatomy.csv" in msg
    assert "https://example.org/repo/abc/data/dev/anatomy.csv" in msg  # the official URL too
    assert "by hand" in msg and "alpha/dev/anatomy.csv" in msg and data.MIRROR_ENV in msg
    assert not (tmp_path / "data/alpha/dev/anatomy.csv").exists()


def test_http_404_names_the_url(server: Server, tmp_path: Path) -> None:
    (server.root / "example.org/repo/abc/sample/train.dialog").unlink()
    with pytest.raises(DownloadError, match=r"404.*|train\.dialog") as info:
        data.fetch_datasets(["alpha"], tmp_path / "data", base_url=server.url, log=quiet, manifest=fixture_manifest())
    assert "/example.org/repo/abc/sample/train.dialog" in str(info.value)
    assert "404" in str(info.value)
    assert leftovers(tmp_path / "data") == []


def test_optional_file_only_warns(server: Server, tmp_path: Path) -> None:
    manifest = fixture_manifest()
    licence = Download(official("repo/abc/LICENSE"), {"alpha/LICENSE": sha(b"MIT")}, optional=True)
    alpha = manifest["alpha"]
    manifest["alpha"] = DatasetSpec(alpha.name, alpha.title, alpha.licence, alpha.source, alpha.downloads + (licence,))
    msgs: list[str] = []
    res = data.fetch_datasets(["alpha"], tmp_path / "data", base_url=server.url, log=msgs.append, manifest=manifest)
    assert [r.action for r in res if r.path == "alpha/LICENSE"] == ["unavailable"]
    assert any("warning" in m and "alpha/LICENSE" in m for m in msgs)
    [st] = data.status(tmp_path / "data", manifest=manifest, include_manual=False, names=["alpha"])
    assert st.ok and st.optional_missing == ("alpha/LICENSE",)


def test_status_reports_missing_and_corrupt(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "data"
    rows = {s.name: s for s in data.status(out, manifest=fixture_manifest())}
    assert rows["alpha"].state == "missing" and len(rows["alpha"].missing) == 3
    assert rows["chimst"].manual and rows["chimst"].missing == ("chimst/",)
    data.fetch_datasets(None, out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    (out / "beta/val/anatomy_val.csv").write_bytes(b"edited")
    (out / "alpha/internal_medicine.csv").unlink()
    (out / "chimst").mkdir()
    (out / "chimst/test.jsonl").write_text('{"text": "头痛", "entities": []}\n', encoding="utf-8")
    rows = {s.name: s for s in data.status(out, manifest=fixture_manifest())}
    assert rows["alpha"].state == "partial" and rows["alpha"].missing == ("alpha/internal_medicine.csv",)
    assert rows["beta"].state == "corrupt"
    assert rows["beta"].corrupt == (("beta/val/anatomy_val.csv", sha(CSV + b"1,x,a,b,c,d,A\n"), sha(b"edited")),)
    assert rows["chimst"].ok and rows["chimst"].present == ("chimst/test.jsonl",)
    assert not rows["chimed_qa"].ok
    # fetching again repairs both
    data.fetch_datasets(None, out, base_url=server.url, log=quiet, manifest=fixture_manifest())
    assert all(s.ok for s in data.status(out, manifest=fixture_manifest(), include_manual=False))


def test_unknown_names_suggest_the_close_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'cmmlu'"):
        data.fetch_datasets(["cmmluu"], tmp_path, log=quiet)
    with pytest.raises(ConfigError, match="safetybench"):
        data.fetch_datasets(["safetybnch"], tmp_path, log=quiet)
    with pytest.raises(MissingDataError, match="chimst/"):
        data.fetch_datasets(["chimst"], tmp_path, log=quiet)
    assert data.run_data_command(tmp_path, ["ceavl"], None, False, False) == 2
    assert "Did you mean 'ceval'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was downloaded or created


def test_names_are_normalised(server: Server, tmp_path: Path) -> None:
    res = data.fetch_datasets(["ALPHA", "alpha"], tmp_path / "d", base_url=server.url, log=quiet,
                              manifest=fixture_manifest())
    assert len(res) == 3


def test_run_data_command(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    m = fixture_manifest()
    assert data.run_data_command(out, None, server.url, True, False, manifest=m) == 1
    assert "missing" in capsys.readouterr().out
    assert data.run_data_command(out, None, server.url, False, False, manifest=m) == 0
    text = capsys.readouterr().out
    assert "alpha: 3 downloaded" in text and "/chimst/test.jsonl" in text and "/chimed/test.jsonl" in text
    assert data.run_data_command(out, None, None, True, False, manifest=m) == 0
    assert data.run_data_command(out, ["chimst"], None, True, False, manifest=m) == 1
    # a failing set is reported, the others are still fetched, the exit code says it failed
    server.write("example.org/repo/abc/data/dev/anatomy.csv", b"bad")
    (out / "alpha/dev/anatomy.csv").unlink()
    (out / "beta/part1.txt").unlink()
    capsys.readouterr()
    assert data.run_data_command(out, ["alpha", "beta"], server.url, False, False, manifest=m) == 1
    captured = capsys.readouterr()
    assert "sha256 mismatch" in captured.err and "failed: alpha" in captured.err
    assert (out / "beta/part1.txt").read_bytes() == BOM_JSON


def test_describe_manual_says_where_and_what_format() -> None:
    text = data.describe_manual()
    for needle in ("chimst/", "chimed/test.jsonl", '"answer_1"', "JSON lines", "CoNLL BIO", '"entities"', '"start"', '"question"', "contract"):
        assert needle in text
    assert data.describe_manual(["chimst"], Path("/d")).count("/d/chimst/") >= 2


def test_without_pooch_a_download_says_how_to_install_it(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pooch is imported only to download: a missing pooch is a ConfigError with the install hint,
    raised before anything is written; checking and listing still work without it."""
    monkeypatch.setitem(sys.modules, "pooch", None)
    with pytest.raises(ConfigError, match="pip install pooch"):
        data.fetch_datasets(["alpha"], tmp_path / "data", base_url=server.url, log=quiet, manifest=fixture_manifest())
    assert not (tmp_path / "data").exists()
    assert server.requests == []
    assert not data.status(tmp_path / "data", manifest=fixture_manifest(), include_manual=False)[0].ok


def test_manifest_file_round_trip(tmp_path: Path) -> None:
    """The shipped manifest is data: destinations are joined to DATA_LOCATIONS, and a malformed
    file is a ConfigError naming it."""
    assert data.load_manifest(data.MANIFEST_FILE) == data.MANIFEST
    ceval_zip = data.MANIFEST["ceval"].downloads[0]
    assert ceval_zip.kind == "zip" and ceval_zip.member_for("ceval/val/physician_val.csv") == "val/physician_val.csv"
    bad = tmp_path / "m.json"
    bad.write_text('{"format": 1, "datasets": [{"name": "nowhere"}]}', encoding="utf-8")
    with pytest.raises(ConfigError, match="m.json"):
        data.load_manifest(bad)


def test_import_is_light() -> None:
    code = (
        "import sys, chimed_eval.data.sets; "
        "heavy = [m for m in ('numpy', 'torch', 'transformers', 'tqdm') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- the real manifest ---------------------------------------------------------------------


def test_real_manifest_is_well_formed() -> None:
    names = set(data.MANIFEST)
    assert names == {"cmmlu", "ceval", "medqa_mcmle", "safetybench", "ccks2019", "cmd", "hetmc", "covid_zh", "cmexam",
                     "cmb_clin"}
    assert data.data_location("cmb_clin") == "cmb-clin"
    clin = data.MANIFEST["cmb_clin"].downloads[0]
    assert "/FreedomIntelligence/CMB/b8d1005cc1c67b4fb9d96c2bcf43d741cfd45470/" in clin.url
    assert clin.files == {"cmb-clin/CMB-Clin-qa.json": "fc4d8d2dbfe7f647e257ceefddc9ab467576e2c4c2978fecba70f38d3c27c07e"}
    dests = [f for spec in data.MANIFEST.values() for f in spec.files()]
    assert len(dests) == len(set(dests))
    assert "cmmlu/test/anatomy.csv" in dests and "ceval/val/clinical_medicine_val.csv" in dests
    for spec in data.MANIFEST.values():
        assert spec.licence and spec.downloads
        for d in spec.downloads:
            assert d.url.startswith("https://"), d.url
    urls = data.list_urls()
    assert "https://huggingface.co/datasets/ceval/ceval-exam/resolve/main/ceval-exam.zip" in urls
    assert len(urls) == len(set(urls))


def test_real_manifest_matches_the_shared_copies(shared_data: Path) -> None:
    """The manifest's sha256 values and layout equal the byte-for-byte copies of the releases.

    Skipped (by the ``shared_data`` fixture, with the path it looked at) when they are absent.
    """
    rows = data.status(shared_data, include_manual=False)
    for row in rows:
        assert row.corrupt == (), row.corrupt
        assert row.missing == () and row.optional_missing == (), (row.name, row.missing, row.optional_missing)
    on_disk = {p.relative_to(shared_data).as_posix() for p in shared_data.rglob("*") if p.is_file()} - {"README.md"}
    in_manifest = {f for spec in data.MANIFEST.values() for f in spec.files()}
    assert on_disk == in_manifest
    assert "cmb_clin" in data.MANIFEST  # sizes are checked in test_data_limits
