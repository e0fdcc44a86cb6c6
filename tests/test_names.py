"""Names that say what they are: no module shares its name with a function (``extract_choice``
was both), a task type's module is named after the type, and the Task interface
(chimed_eval/task/base.py), the plug-ins (chimed_eval.tasks) and the NER task module
(tasks/ner/ner_task.py) have names of their own."""

import ast
import importlib.util
from pathlib import Path

from chimed_eval.tasks.factory import TASK_TYPES

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("chimed_eval", "tasks", "training", "leaderboards")  # chimed_eval/tasks etc. link to the last three
#: every command module of the CLI has ``run(args)``, the entry point chimed_eval.cli.app calls
CLI_ENTRY = "run"


def sources() -> list[Path]:
    out = []
    for folder in FOLDERS:
        out += [p for p in (ROOT / folder).rglob("*.py") if not any(
            (ROOT / folder / q).is_symlink() for q in p.relative_to(ROOT / folder).parents)]
    return sorted(set(out))


def module_name(path: Path) -> str:
    return path.parent.name if path.stem == "__init__" else path.stem


def test_no_module_shares_its_name_with_a_function():
    modules = {module_name(p): p for p in sources()}
    clashes = []
    for p in sources():
        for node in ast.parse(p.read_text(encoding="utf-8")).body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name not in modules:
                continue
            if node.name == CLI_ENTRY and p.parent == ROOT / "chimed_eval" / "cli":
                continue
            clashes.append(f"{p.relative_to(ROOT)}: def {node.name} (module {modules[node.name].relative_to(ROOT)})")
    assert not clashes, "\n".join(clashes)


def test_each_task_type_lives_in_the_module_named_after_it():
    for name in TASK_TYPES.names():
        assert importlib.util.find_spec(f"chimed_eval.tasks.{name}") is not None, name


def test_no_module_is_named_task():
    """``task`` is the interface's package (chimed_eval.task); no plug-in module takes the name."""
    assert [p.relative_to(ROOT) for p in sources() if p.stem == "task"] == []
