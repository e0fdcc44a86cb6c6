"""The on-disk response cache: hits make no model calls, the key is exact, concurrent writers and
torn writes are safe."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
from pathlib import Path


from chimed_eval.backends.fake import FakeBackend
from chimed_eval.backends.cache import DB_NAME, CachingBackend, ResponseCache, cache_key
from chimed_eval.cli.app import main
from chimed_eval.engine.runner import RunSettings, evaluate
from chimed_eval.core.errors import CacheStorageError
from chimed_eval.core.types import GenerationConfig, Request, Response
from conftest import write_exam_csv

ROOT = Path(__file__).resolve().parents[1]


class Counting(FakeBackend):
    """The fake backend, counting the requests it actually computes."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.computed = 0

    def run(self, kind, requests):
        self.computed += len(requests)
        return super().run(kind, requests)


def _task(exam: Path):
    from chimed_eval.tasks.mcq import make_mcq_task, spec_from_args

    return make_mcq_task(spec_from_args({"path": str(exam)}))


def test_second_identical_run_makes_no_backend_calls(tmp_path):
    exam = write_exam_csv(tmp_path / "exam.csv", 30)
    settings = RunSettings(model="random", backend="fake", batch_size=4, data_dir=str(tmp_path))
    backends = []

    def factory():
        inner = Counting(model="random")
        backends.append(inner)
        return CachingBackend(inner, tmp_path / "cache")

    evaluate([_task(exam)], factory, settings, tmp_path / "a", progress=False)
    evaluate([_task(exam)], factory, settings, tmp_path / "b", progress=False)
    assert backends[0].computed == 30 and backends[1].computed == 0
    a, b = ((tmp_path / d / "samples" / "mcq.jsonl").read_text() for d in "ab")
    assert a == b


def test_cli_wraps_the_backend_and_hits(tmp_path, monkeypatch):
    calls = []
    orig = FakeBackend._scored

    def counted(self, requests):
        calls.append(len(requests))
        return orig(self, requests)

    monkeypatch.setattr(FakeBackend, "_scored", counted)
    exam = write_exam_csv(tmp_path / "exam.csv", 12)
    argv = ["run", "--no-progress", "--backend", "fake", "--model", "random", "--tasks", "mcq", "--task-args",
            f"path={exam}"]
    assert main([*argv, "--output", str(tmp_path / "a"), "--cache", str(tmp_path / "c")]) == 0
    assert sum(calls) == 12
    assert main([*argv, "--output", str(tmp_path / "b"), "--cache", str(tmp_path / "c")]) == 0
    assert sum(calls) == 12  # all hits
    assert main([*argv, "--output", str(tmp_path / "d"), "--cache", str(tmp_path / "c"), "--no-cache"]) == 0
    assert sum(calls) == 24
    assert main([*argv, "--output", str(tmp_path / "e")]) == 0  # the fake backend: no cache unless asked
    assert sum(calls) == 36
    assert (tmp_path / "a" / "samples" / "mcq.jsonl").read_text() == (tmp_path / "b" / "samples" / "mcq.jsonl").read_text()


def test_key_covers_identity_settings_and_the_exact_request():
    ident = {"backend": "hf", "model": {"name": "m", "path": "p", "revision": None, "weights_sha256": "0" * 64, "dtype": "bf16"}}
    g = GenerationConfig(max_new_tokens=8, temperature=1.0, top_p=0.85, seed=1)
    r = Request("generate", "k1", "问题：头痛？", generation=g)
    base = cache_key(ident, r)
    assert base == cache_key(json.loads(json.dumps(ident)), Request("generate", "k1", "问题：头痛？", generation=g))
    variants = [
        cache_key({**ident, "model": {**ident["model"], "weights_sha256": "1" * 64}}, r),
        cache_key({**ident, "model": {**ident["model"], "dtype": "fp32"}}, r),
        cache_key({**ident, "run": {"device": "cuda"}}, r),
        cache_key(ident, Request("generate", "k1", "问题：头痛？ ", generation=g)),
        cache_key(ident, Request("generate", "k1", "问题：头痛？", generation=GenerationConfig(8, (), 1.0, 0.85, 2))),
        cache_key(ident, Request("generate", "k1", "问题：头痛？", generation=GenerationConfig(8, (), 0.2, 0.85, 1))),
        cache_key(ident, Request("generate", "k2", "问题：头痛？", generation=g)),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_round_trip_keeps_every_field(tmp_path):
    c = ResponseCache(tmp_path)
    resps = [Response("a", logprobs=(-0.5, float("-inf")), greedy=(True, False), n_tokens=(1, 2)),
             Response("b", text="答案：A", n_tokens=(3,))]
    c.put_many([("ka", "next_token", resps[0]), ("kb", "generate", resps[1])])
    got = c.get_many(["ka", "kb", "missing"])
    assert got == {"ka": resps[0], "kb": resps[1]}
    c.close()


def test_concurrent_writers_threads(tmp_path):
    shared = ResponseCache(tmp_path)
    errors = []

    def work(t: int) -> None:
        try:
            own = ResponseCache(tmp_path) if t % 2 else shared  # own connections and a shared one
            for i in range(60):
                k = f"k{(t * 37 + i) % 150}"  # overlapping keys
                own.put_many([(k, "generate", Response(k, text=f"text-{k}"))])
                assert own.get_many([k])[k].text == f"text-{k}"
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    got = shared.get_many([f"k{i}" for i in range(150)])
    assert len(got) == 150 and all(v.text == f"text-{k}" for k, v in got.items())


WRITER = """
import sys, time
from chimed_eval.backends.cache import ResponseCache
from chimed_eval.core.types import Response
c = ResponseCache(sys.argv[1])
start, n, pause = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
for i in range(start, start + n):
    c.put_many([(f"k{j}", "generate", Response(f"k{j}", text="x" * 200 + str(j))) for j in range(i * 10, i * 10 + 10)])
    print(i, flush=True)
    time.sleep(pause)
"""


def _writer(cache: Path, start: int, n: int, pause: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(cache), str(start), str(n), str(pause)],
                            stdout=subprocess.PIPE, text=True, env=env)


def test_concurrent_writer_processes(tmp_path):
    procs = [_writer(tmp_path, p * 15 - 5 * p, 15, 0.0) for p in range(4)]  # overlapping ranges
    for p in procs:
        assert p.wait(timeout=60) == 0
    keys = [f"k{j}" for j in range(0, 500)]
    got = ResponseCache(tmp_path).get_many(keys)
    assert len(got) == 450 and all(v.text == "x" * 200 + k[1:] for k, v in got.items())


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_a_writer_killed_mid_write_leaves_a_valid_cache(tmp_path):
    proc = _writer(tmp_path, 0, 10_000, 0.0)
    for _ in range(30):  # let it commit some batches, then kill it wherever it is
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    wal = tmp_path / (DB_NAME + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # an unfinished, un-checkpointed log is left
    # tear the log's tail as a crash in the middle of a write would
    with open(wal, "r+b") as f:
        f.truncate(wal.stat().st_size - 1234)
    c = ResponseCache(tmp_path)
    keys = [f"k{j}" for j in range(0, 100_000)]
    got = c.get_many(keys)
    assert len(got) >= 100  # earlier commits survive
    n_batches = len(got) // 10
    assert len(got) % 10 == 0 and set(got) == {f"k{j}" for j in range(n_batches * 10)}  # whole transactions only
    assert all(v.text == "x" * 200 + k[1:] for k, v in got.items())
    c.put_many([("after", "generate", Response("after", text="ok"))])
    assert c.get_many(["after"])["after"].text == "ok"
    c.close()
    assert _integrity(tmp_path / DB_NAME) == "ok"


def test_a_damaged_row_is_a_miss_and_a_garbage_file_is_replaced(tmp_path):
    c = ResponseCache(tmp_path)
    c.put_many([("k", "generate", Response("k", text="good")), ("j", "generate", Response("j", text="fine"))])
    c.close()
    conn = sqlite3.connect(str(tmp_path / DB_NAME))
    conn.execute("UPDATE responses SET value = '{\"key\": \"k\", \"text\": \"tampered\"' WHERE key = 'k'")
    conn.commit()
    conn.close()
    c = ResponseCache(tmp_path)
    assert set(c.get_many(["k", "j"])) == {"j"}
    c.close()

    other = tmp_path / "other"
    other.mkdir()
    (other / DB_NAME).write_bytes(b"this is not a database" * 100)
    c = ResponseCache(other)
    c.put_many([("k", "generate", Response("k", text="new"))])
    assert c.get_many(["k"])["k"].text == "new"
    assert any(p.name.startswith(DB_NAME + ".corrupt-") for p in other.iterdir())
    c.close()


def _filled_and_damaged(directory: Path, n: int = 400) -> list[str]:
    """A cache of ``n`` entries, closed, then 8 KB of 0xFF written over the middle of its file."""
    c = ResponseCache(directory)
    keys = [f"k{i:04d}" for i in range(n)]
    c.put_many([(k, "generate", Response(k, text="答案：" * 40 + k)) for k in keys])
    c.close()
    path = directory / DB_NAME
    size = path.stat().st_size
    assert size > 64 * 1024
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * 8192)
    return keys


def _moved_aside(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(DB_NAME + ".corrupt-")
                  and not p.name.endswith(("-wal", "-shm")))


def test_a_cache_damaged_in_the_middle_is_moved_aside_on_open(tmp_path, caplog):
    keys = _filled_and_damaged(tmp_path)
    damaged = (tmp_path / DB_NAME).read_bytes()
    with caplog.at_level("WARNING", logger="chimed_eval.backends.cache"):
        c = ResponseCache(tmp_path)
    assert any("damaged" in r.getMessage() and "corrupt-" in r.getMessage() for r in caplog.records)
    [aside] = _moved_aside(tmp_path)
    assert aside.read_bytes() == damaged  # kept as it was, for inspection
    assert c.get_many(keys) == {} and len(c) == 0  # a fresh cache: every answer is recomputed
    c.put_many([("new", "generate", Response("new", text="ok"))])
    c.close()
    again = ResponseCache(tmp_path)  # and later runs go on with it
    assert again.get_many(["new"])["new"].text == "ok"
    again.close()
    assert _integrity(tmp_path / DB_NAME) == "ok" and len(_moved_aside(tmp_path)) == 1


def test_damage_a_read_meets_after_open_is_moved_aside_once_by_two_caches(tmp_path, caplog, monkeypatch):
    """Damage the open-time check did not see (it happened later, or the check was skipped here)
    surfaces on a read: that cache moves the file aside; a second cache on the same directory
    meeting the damage through its old connection reopens the fresh file instead of moving it."""
    monkeypatch.setattr(ResponseCache, "_check", staticmethod(lambda conn: None), raising=False)
    keys = _filled_and_damaged(tmp_path)
    first, second = ResponseCache(tmp_path), ResponseCache(tmp_path)
    with caplog.at_level("WARNING", logger="chimed_eval.backends.cache"):
        assert first.get_many(keys) == {}
        first.put_many([("new", "generate", Response("new", text="fresh"))])
        assert len(_moved_aside(tmp_path)) == 1
        assert second.get_many(keys + ["new"]) == {"new": Response("new", text="fresh")}
        second.put_many([("newer", "generate", Response("newer", text="also"))])
    assert len(_moved_aside(tmp_path)) == 1  # the fresh file was not moved away again
    assert first.get_many(["newer"])["newer"].text == "also"
    assert sum("damaged" in r.getMessage() for r in caplog.records) == 2
    first.close()
    second.close()


class _FailingConnection:
    """A connection whose first INSERT fails as SQLite does on a damaged page."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.failed = conn, False

    def execute(self, sql: str, *args):
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, rows):
        if sql.startswith("INSERT") and not self.failed:
            self.failed = True
            raise sqlite3.DatabaseError("database disk image is malformed")
        return self.conn.executemany(sql, rows)

    def close(self) -> None:
        self.conn.close()


def test_damage_a_write_meets_is_recovered_and_the_write_kept(tmp_path, caplog):
    c = ResponseCache(tmp_path)
    c.put_many([("old", "generate", Response("old", text="before"))])
    c._conn = _FailingConnection(c._conn)
    with caplog.at_level("WARNING", logger="chimed_eval.backends.cache"):
        c.put_many([("k", "generate", Response("k", text="kept"))])
    assert any("damaged" in r.getMessage() for r in caplog.records)
    assert len(_moved_aside(tmp_path)) == 1
    assert c.get_many(["k", "old"]) == {"k": Response("k", text="kept")}
    c.close()


def test_a_busy_database_is_not_taken_for_a_damaged_one(tmp_path):
    from chimed_eval.backends.cache import is_corruption

    assert not is_corruption(sqlite3.OperationalError("database is locked"))
    assert is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
    ResponseCache(tmp_path).close()
    holder = sqlite3.connect(str(tmp_path / DB_NAME), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        c = ResponseCache(tmp_path, busy_timeout_s=0.2)
        try:
            c.put_many([("k", "generate", Response("k", text="x"))])
        except sqlite3.OperationalError as e:
            assert "locked" in str(e)
        else:
            raise AssertionError("the write should have waited and failed on the lock")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _moved_aside(tmp_path) == []


def test_open_waits_out_a_lock_that_sqlite_reports_at_once(tmp_path, monkeypatch):
    """SQLite can answer "database is locked" at once (no busy wait) when several processes open a
    new file and switch it to WAL together; CI met it. The cache tries the open again instead of
    failing the run."""
    real_open, calls = ResponseCache._open, []

    def flaky_open(self):
        calls.append(1)
        if len(calls) <= 3:
            raise sqlite3.OperationalError("database is locked")
        return real_open(self)

    monkeypatch.setattr(ResponseCache, "_open", flaky_open)
    cache = ResponseCache(tmp_path)
    cache.put_many([("k", "generate", Response("k", text="t"))])
    assert cache.get_many(["k"])["k"].text == "t" and len(calls) == 4


def test_open_gives_up_on_a_lock_after_the_busy_timeout(tmp_path, monkeypatch):
    def locked(self):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(ResponseCache, "_open", locked)
    with pytest.raises(CacheStorageError, match="database is locked"):
        ResponseCache(tmp_path, busy_timeout_s=0.05)


def test_many_processes_opening_a_new_cache_together_all_write(tmp_path):
    procs = [_writer(tmp_path, p * 2, 2, 0.0) for p in range(8)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    got = ResponseCache(tmp_path).get_many([f"k{j}" for j in range(160)])
    assert len(got) == 160
