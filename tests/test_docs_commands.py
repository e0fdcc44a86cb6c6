"""Every shell command shown in the docs and the README runs as written (the rules, for writers:
docs/en/howto/write-docs.md, "Shell commands").

Each ```bash/```sh/```shell block of a page is one ``bash -e -o pipefail`` script; a page's blocks
run in order in one fresh working directory (``examples/`` linked in), with ``chimed-eval`` and
``python`` on PATH, ``$REPO`` the checkout, ``CHIMED_EVAL_DATA`` the shared data, the hubs offline.
A block whose first line is ``# docs-test: skip REASON`` is not run; ``# docs-test: exit N``
expects exit status N. A block with ``title="name"`` in another language is written to that file.
A Chinese page whose runnable blocks equal its English page's is not run twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
SHELLS = {"bash", "sh", "shell"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
                   re.M | re.S)
MARK = re.compile(r"^#\s*docs-test:\s*(?P<what>skip|exit)\b\s*(?P<arg>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, its ``title=`` (a file to write) and its text."""

    page: str
    line: int
    lang: str
    title: str | None
    body: str

    @property
    def mark(self) -> tuple[str, str] | None:
        """``("skip", reason)`` or ``("exit", "N")`` from the block's first line, else None."""
        first = self.body.lstrip("\n").split("\n", 1)[0].strip()
        m = MARK.match(first)
        return (m["what"], m["arg"].strip()) if m else None

    @property
    def runnable(self) -> bool:
        return self.lang in SHELLS and (self.mark is None or self.mark[0] != "skip")


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown file, indented ones (lists, admonitions) included."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    out = []
    for m in FENCE.finditer(text):
        info = m["info"].strip()
        lang = re.sub(r"^[{.]+", "", info.split()[0]).lower().rstrip("}") if info else ""
        title = re.search(r'title="([^"]+)"', info)
        body = textwrap.dedent(m["body"]) if m["indent"] else m["body"]
        out.append(Block(rel, text.count("\n", 0, m.start()) + 1, lang, title[1] if title else None, body))
    return out


def pages() -> list[Path]:
    """README.md and every page under docs/ (picked up anew at each collection)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def page_id(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    return rel.removeprefix("docs/").removesuffix(".md")


def _sequence(path: Path) -> list[tuple[str, str | None, str]]:
    return [(b.lang, b.title, b.body) for b in blocks(path) if b.runnable or (b.title and b.lang not in SHELLS)]


def runnable_pages() -> list[Path]:
    """Pages with a block to run; a Chinese page identical in its blocks to the English one is left out."""
    out = []
    for path in pages():
        if not any(b.runnable for b in blocks(path)):
            continue
        rel = path.relative_to(ROOT / "docs").as_posix() if path.is_relative_to(ROOT / "docs") else ""
        if rel.startswith("zh/"):
            twin = ROOT / "docs" / "en" / rel[3:]
            if twin.is_file() and _sequence(twin) == _sequence(path):
                continue
        out.append(path)
    return out


def _shim(bin_dir: Path, name: str, line: str) -> None:
    p = bin_dir / name
    p.write_text(f"#!/bin/sh\nexec {line} \"$@\"\n", encoding="utf-8")
    p.chmod(0o755)


def environment(tmp: Path) -> dict[str, str]:
    """PATH with chimed-eval/python/chimed-train shims for this interpreter, the checkout first on
    PYTHONPATH, the shared data, the hubs offline, the response cache private."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    py = f'"{sys.executable}"'
    _shim(bin_dir, "python", py)
    _shim(bin_dir, "python3", py)
    _shim(bin_dir, "chimed-eval", f"{py} -m chimed_eval")
    _shim(bin_dir, "chimed-train", f"{py} -m chimed_eval.training.cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHIMED_EVAL_", "HF_", "OPENAI_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               REPO=str(ROOT), CHIMED_EVAL_DATA=str(SHARED_DATA), CHIMED_EVAL_CACHE=str(tmp / "cache"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp / "hf"),
               PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    return env


def run_page(path: Path, tmp_path: Path) -> list[str]:
    """Run the page's blocks as documented; one message per block that did not exit as it says."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = environment(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    failures = []
    for i, b in enumerate(blocks(path)):
        if b.title and b.lang not in SHELLS:
            target = (work / b.title).resolve()
            if not target.is_relative_to(work):
                failures.append(f"{b.page}:{b.line}: title={b.title!r} leaves the working directory")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.body, encoding="utf-8")
            continue
        if not b.runnable:
            continue
        want = int(b.mark[1].split()[0]) if b.mark else 0
        script = tmp_path / f"block-{i}.sh"
        script.write_text(b.body, encoding="utf-8")
        try:
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", str(script)], cwd=work, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            failures.append(f"{b.page}:{b.line}: the block ran past 120 s")
            continue
        if proc.returncode != want:
            failures.append(f"{b.page}:{b.line}: exit {proc.returncode}, documented {want}\n--- block\n{b.body}"
                            f"--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-3000:]}")
    return failures


@pytest.mark.parametrize("path", runnable_pages(), ids=page_id)
def test_documented_commands_run(path: Path, tmp_path: Path) -> None:
    """Each runnable block of the page exits as documented (0, or its ``# docs-test: exit N``)."""
    if not (SHARED_DATA / "cmmlu").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set CHIMED_EVAL_SHARED_DATA to its folder)")
    failures = run_page(path, tmp_path)
    assert not failures, "\n\n".join(failures)


def test_a_failing_or_misdocumented_block_is_reported(tmp_path: Path) -> None:
    """The runner itself: a block that fails, one whose documented exit differs, and a title that
    leaves the working directory are reported with their page and line; the rest pass."""
    page = tmp_path / "probe.md"
    page.write_text("# P\n\n```text title=\"a.txt\"\nhello\n```\n\n```bash\ngrep -q hello a.txt\n```\n\n"
                    "```bash\nfalse\necho never\n```\n\n```sh\n# docs-test: exit 3\nexit 2\n```\n\n"
                    "```bash\n# docs-test: exit 1\nchimed-eval check missing-run --baseline nope.json || exit $(( $? - 1 ))\n```\n\n"
                    "```text title=\"../escape.txt\"\nx\n```\n", encoding="utf-8")
    failures = run_page(page, tmp_path / "run")
    assert len(failures) == 3, failures
    assert failures[0].startswith("probe.md:11: exit 1, documented 0"), failures[0]
    assert failures[1].startswith("probe.md:16: exit 2, documented 3"), failures[1]
    assert "title='../escape.txt' leaves the working directory" in failures[2]


# --- the extraction itself ----------------------------------------------------------------------

def test_blocks_are_read_with_their_marks(tmp_path: Path) -> None:
    """Fences in lists and admonitions are found; marks, titles and languages are read."""
    page = tmp_path / "probe.md"
    text = ("# T\n\n```bash\necho one\n```\n\n!!! note\n    ```sh\n    # docs-test: exit 2\n    exit 2\n    ```\n\n"
            "```console\n$ chimed-eval run\n```\n\n```yaml title=\"run.yaml\"\nmodel: x\n```\n\n"
            "```bash\n# docs-test: skip needs a GPU\nnvidia-smi\n```\n")
    page.write_text(text, encoding="utf-8")
    got = blocks(page)
    assert [(b.lang, b.runnable, b.mark, b.title) for b in got] == [
        ("bash", True, None, None), ("sh", True, ("exit", "2"), None), ("console", False, None, None),
        ("yaml", False, None, "run.yaml"), ("bash", False, ("skip", "needs a GPU"), None)]
    assert got[1].body == "# docs-test: exit 2\nexit 2\n"


def test_every_skip_says_why() -> None:
    """A skipped block names its reason, so that 'skip' is not a way to hide a broken command."""
    bare = [f"{b.page}:{b.line}" for p in pages() for b in blocks(p) if b.mark and b.mark[0] == "skip" and not b.mark[1]]
    assert not bare, f"'# docs-test: skip' without a reason at {bare}"


def test_readme_and_docs_show_runnable_commands() -> None:
    """The README and the tutorial have commands that really run (not all marked away)."""
    for name in ("README.md", "docs/en/tutorial.md", "docs/zh/tutorial.md"):
        assert any(b.runnable for b in blocks(ROOT / name)), f"{name}: no runnable shell block"
