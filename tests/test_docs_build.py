"""The documentation site builds in both languages with strict checking (a broken link, a missing
anchor, a page left out: the build fails), its generated reference pages cover the code, and every
page exists in both languages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))
import refgen  # noqa: E402

CONFIGS = {"en": "mkdocs.yml", "zh": "mkdocs.zh.yml"}


def _md_pages(lang: str) -> set[str]:
    base = ROOT / "docs" / lang
    return {p.relative_to(base).as_posix() for p in base.rglob("*.md")}


def test_both_languages_have_the_same_pages() -> None:
    """docs/en/X.md and docs/zh/X.md come in pairs."""
    en, zh = _md_pages("en"), _md_pages("zh")
    assert not en - zh, f"English pages without a Chinese one (docs/zh/...): {sorted(en - zh)}"
    assert not zh - en, f"Chinese pages without an English one (docs/en/...): {sorted(zh - en)}"


def test_reference_is_generated_not_written() -> None:
    """reference/ holds no hand-written page: the hook generates them from the code."""
    for lang in CONFIGS:
        written = {p.name for p in (ROOT / "docs" / lang / "reference").glob("*.md")}
        assert not written & set(refgen.PAGES), f"docs/{lang}/reference: {sorted(written & set(refgen.PAGES))}"


def test_cli_reference_lists_every_command_and_flag() -> None:
    from chimed_eval.cli.app import build_parser

    page = refgen.cli_page("en")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert f"\n## {name}\n" in page, name
        for action in p._actions:
            for flag in ([] if action.__class__.__name__ == "_HelpAction" else action.option_strings):
                assert f"`{flag}`" in page, f"{name} {flag}"


def test_task_catalogue_and_metrics_cover_the_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    from chimed_eval.metrics import declared_directions
    from chimed_eval.tasks import TASKS

    monkeypatch.setenv("CHIMED_EVAL_DATA", str(SHARED_DATA))
    tasks = refgen.tasks_page("en")
    for name in TASKS:
        assert f"| `{name}` |" in tasks, name
    if (SHARED_DATA / "ceval").is_dir():
        assert "| `ceval-medical-paper` | 41 | present |" in tasks
    metrics = refgen.metrics_page("zh")
    for key in declared_directions():
        assert f"| `{key.replace('|', chr(92) + '|')}` |" in metrics, key


@pytest.mark.parametrize("lang", sorted(CONFIGS))
def test_site_builds_strict(lang: str, tmp_path: Path) -> None:
    """``mkdocs build --strict`` for the language: any warning (a broken link or anchor, a docstring
    mkdocstrings cannot read, a page outside the nav) fails it."""
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]' (scripts/setup.sh installs it)")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", CHIMED_EVAL_DATA=str(SHARED_DATA),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    out = tmp_path / lang
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", CONFIGS[lang], "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith(("WARNING", "ERROR"))]
    assert proc.returncode == 0, "\n".join(warnings) or proc.stderr[-4000:]
    for page in ("index.html", "tutorial.html", "reference/cli.html", "reference/api.html", "reference/tasks.html",
                 "reference/metrics.html", "reference/schema.html"):
        assert (out / page).is_file(), page
    assert "chimed_eval.cli.api.evaluate" in (out / "reference/api.html").read_text(encoding="utf-8")


def test_readme_is_short_links_resolve_and_holds_the_ci_command() -> None:
    """The README stays a front page (at most 200 lines), every relative link in it names a file
    that exists, and it shows the exact test command that .ci/run runs."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200, len(readme.splitlines())
    targets = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)]+)\)", readme) if "://" not in t]
    missing = [t for t in targets if t and not (ROOT / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = "bash scripts/setup.sh && .venv/bin/python -m pytest -q --durations=15"
    assert command in ci and command in readme
