"""The text of the generated reference pages (used by the MkDocs hook ``reference.py`` and the tests).

Each function returns Markdown built from the code itself: the argparse parser, the public API
(mkdocstrings directives), the results JSON Schema, the task registry (loading each task's data to
count its items) and the metric modules' ``DIRECTIONS`` with their docstrings.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]

T = {
    "cli": {"en": "Command line", "zh": "命令行"},
    "cli_intro": {"en": "Every command and flag of `chimed-eval`, read from its argument parser "
                        "(`chimed_eval.cli.app.build_parser`) when the site is built.",
                  "zh": "`chimed-eval` 的全部命令与参数，在构建文档站时从其参数解析器"
                        "（`chimed_eval.cli.app.build_parser`）读出。帮助文字保留英文原文。"},
    "flag": {"en": "flag", "zh": "参数"}, "default": {"en": "default", "zh": "默认值"},
    "help": {"en": "what", "zh": "说明"},
    "api": {"en": "Python API", "zh": "Python API"},
    "api_intro": {"en": "The public API (`import chimed_eval`), from the docstrings.",
                  "zh": "公开的 Python API（`import chimed_eval`），由文档字符串生成（保留英文原文）。"},
    "schema": {"en": "Results schema", "zh": "结果文件结构（results.json）"},
    "schema_intro": {"en": "`results.json`, as `chimed_eval/schema/results.schema.json` defines it "
                           "(JSON Schema 2020-12). Required fields are marked **required**.",
                     "zh": "`results.json` 的结构，即 `chimed_eval/schema/results.schema.json`（JSON Schema 2020-12）"
                           "的定义。必填字段标为 **required**。说明文字保留英文原文。"},
    "field": {"en": "field", "zh": "字段"}, "type": {"en": "type", "zh": "类型"},
    "tasks": {"en": "Task catalogue", "zh": "任务目录"},
    "tasks_intro": {"en": "Every registered task, with the number of items on the data found when the "
                          "site was built (`$CHIMED_EVAL_DATA`, `./data` or `../shared/data`), and the task "
                          "types for your own files.",
                    "zh": "全部已注册任务，以及构建文档站时在所找到的数据（`$CHIMED_EVAL_DATA`、`./data` 或 "
                          "`../shared/data`）上的条目数；另列出用于自有数据文件的任务类型。"},
    "task": {"en": "task", "zh": "任务"}, "items": {"en": "items", "zh": "条目数"},
    "data": {"en": "data", "zh": "数据"}, "present": {"en": "present", "zh": "已就绪"},
    "absent": {"en": "absent", "zh": "缺失"},
    "types": {"en": "Task types for your own data", "zh": "自有数据的任务类型"},
    "types_intro": {"en": "`--tasks TYPE --task-args k=v,...` or a `--task-config` file; "
                          "`chimed-eval tasks --describe TYPE` lists the keys.",
                    "zh": "用法：`--tasks TYPE --task-args k=v,...` 或 `--task-config` 文件；"
                          "`chimed-eval tasks --describe TYPE` 列出可用的键。"},
    "metrics": {"en": "Metrics", "zh": "评测指标"},
    "metrics_intro": {"en": "Every figure a metric module declares (`DIRECTIONS`), which way is better "
                            "(none: a count or a distribution), and the module's definition, from its "
                            "source. A name nothing declares is higher-is-better.",
                      "zh": "各指标模块声明（`DIRECTIONS`）的全部指标、越高越好还是越低越好（none：计数或分布，"
                            "无优劣方向），以及模块源码中的定义原文（英文）。未声明的指标按越高越好处理。"},
    "name": {"en": "name or pattern", "zh": "名称或模式"}, "direction": {"en": "better", "zh": "方向"},
    "source": {"en": "Source", "zh": "源码"}, "helpers": {"en": "Modules without figures of their own",
                                                         "zh": "不直接产出指标的模块"},
}


def _t(key: str, lang: str) -> str:
    return T[key][lang]


def _escape_html(text: str) -> str:
    """``<`` and ``>`` outside code spans as entities, so that ``samples/<task>.jsonl`` is not read as
    an HTML tag (inside backticks they stay as they are: a code span shows entities literally)."""
    parts = text.split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def _cell(text: object) -> str:
    """A value made safe for one Markdown table cell."""
    return _escape_html(str(text)).replace("|", "\\|").replace("\n", " ")


# --- CLI -----------------------------------------------------------------------------------------

def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name, ""), sub))
    return out


def _help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help string as ``--help`` prints it (``%(default)s`` and the like filled in)."""
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    try:
        return text % {**vars(action), "prog": parser.prog}
    except (KeyError, TypeError, ValueError):
        return text


def _flags_table(parser: argparse.ArgumentParser, lang: str) -> list[str]:
    rows = []
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        flags = ", ".join(f"`{o}`" for o in a.option_strings) or f"`{a.metavar or a.dest}`"
        if a.option_strings and a.nargs != 0:
            flags += f" `{a.metavar or a.dest.upper()}`" if not isinstance(a.metavar, tuple) else ""
        if a.choices and not isinstance(a.choices, dict):
            flags += " {" + ", ".join(str(c) for c in a.choices) + "}"
        default = "" if a.default in (None, argparse.SUPPRESS, False, "") or a.nargs == 0 else f"`{a.default}`"
        rows.append(f"| {_cell(flags)} | {_cell(default)} | {_cell(_help_text(parser, a))} |")
    if not rows:
        return []
    return [f"| {_t('flag', lang)} | {_t('default', lang)} | {_t('help', lang)} |", "|---|---|---|", *rows, ""]


def cli_page(lang: str) -> str:
    """Every command and flag, from the parser."""
    from chimed_eval.cli.app import build_parser

    parser = build_parser()
    lines = [f"# {_t('cli', lang)}", "", _t("cli_intro", lang), "", "```text", parser.format_usage().strip(), "```", ""]
    lines += _flags_table(parser, lang)

    def walk(p: argparse.ArgumentParser, name: str, help_: str, depth: int) -> None:
        lines.extend([f"{'#' * depth} {name}", ""])
        if help_:
            lines.extend([help_[0].upper() + help_[1:] + ("" if help_.endswith(".") else "."), ""])
        if p.description and p.description != help_:
            lines.extend([p.description, ""])
        lines.extend(["```text", p.format_usage().strip(), "```", ""])
        lines.extend(_flags_table(p, lang))
        for sub_name, sub_help, sub in _subcommands(p):
            walk(sub, f"{name} {sub_name}", sub_help, min(depth + 1, 4))

    for name, help_, sub in _subcommands(parser):
        walk(sub, name, help_, 2)
    return "\n".join(lines) + "\n"


# --- API -----------------------------------------------------------------------------------------

API_OBJECTS = ("chimed_eval.cli.api.evaluate", "chimed_eval.engine.api.read_run",
               "chimed_eval.engine.options.RunConfig", "chimed_eval.core.types.RunResult")


def api_page(lang: str) -> str:
    """The public API, one mkdocstrings directive per name of ``chimed_eval.__all__``."""
    import chimed_eval

    names = [n for n in chimed_eval.__all__ if not n.startswith("_") and n != "SCHEMA_VERSION"]
    lines = [f"# {_t('api', lang)}", "", _t("api_intro", lang), "",
             "```python", "import chimed_eval", f"chimed_eval.__all__ == {chimed_eval.__all__!r}", "```", ""]
    for name in names:
        obj = getattr(chimed_eval, name)
        if isinstance(obj, str):
            lines += [f"## {name}", "", f"`chimed_eval.{name} == {obj!r}`", ""]
            continue
        target = f"{obj.__module__}.{obj.__qualname__}"
        lines += [f"## {name}", "", f"::: {target}", "    options:", "      show_root_heading: false",
                  "      show_source: false", "      heading_level: 3", ""]
    return "\n".join(lines) + "\n"


# --- schema --------------------------------------------------------------------------------------

def _type_of(node: dict[str, Any]) -> str:
    if "$ref" in node:
        return f"[{node['$ref'].rsplit('/', 1)[-1]}](#{_slug(node['$ref'].rsplit('/', 1)[-1])})"
    if "const" in node:
        return f"const `{json.dumps(node['const'], ensure_ascii=False)}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(_type_of(n) for n in node[key])
    t = node.get("type", "any")
    t = " or ".join(t) if isinstance(t, list) else t
    if t == "array" and isinstance(node.get("items"), dict):
        t += f" of {_type_of(node['items'])}"
    if t == "object" and isinstance(node.get("additionalProperties"), dict) and not node.get("properties"):
        t += f" of {_type_of(node['additionalProperties'])}"
    if "pattern" in node:
        t += f" matching `{node['pattern']}`"
    return t


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")


def _schema_rows(node: dict[str, Any], prefix: str, rows: list[str]) -> None:
    required = set(node.get("required", ()))
    for key, sub in (node.get("properties") or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        req = " **required**" if key in required else ""
        rows.append(f"| `{_cell(path)}`{req} | {_cell(_type_of(sub))} | {_cell(sub.get('description', ''))} |")
        _schema_rows(sub, path, rows)
        if isinstance(sub.get("items"), dict):
            _schema_rows(sub["items"], path + "[]", rows)
        if isinstance(sub.get("additionalProperties"), dict):
            _schema_rows(sub["additionalProperties"], path + ".*", rows)


def schema_page(lang: str) -> str:
    """The results schema as tables: the document, then each definition."""
    schema = json.loads((ROOT / "chimed_eval/schema/results.schema.json").read_text(encoding="utf-8"))
    head = [f"| {_t('field', lang)} | {_t('type', lang)} | {_t('help', lang)} |", "|---|---|---|"]
    lines = [f"# {_t('schema', lang)}", "", _t("schema_intro", lang), "", schema.get("description", ""), "",
             "## results.json", ""]
    rows: list[str] = []
    _schema_rows(schema, "", rows)
    lines += head + rows + [""]
    for name, node in (schema.get("$defs") or {}).items():
        lines += [f"## {name}", "", f"{_type_of(node)}. {node.get('description', '')}".strip(), ""]
        rows = []
        _schema_rows(node, "", rows)
        if rows:
            lines += head + rows + [""]
    return "\n".join(lines) + "\n"


# --- tasks ---------------------------------------------------------------------------------------

def tasks_page(lang: str) -> str:
    """The task registry with item counts on the data found, and the task types."""
    from chimed_eval.core.errors import ChimedEvalError
    from chimed_eval.data.locations import default_data_dir
    from chimed_eval.tasks import TASKS, get_task
    from chimed_eval.tasks.factory import TASK_TYPES

    data_dir = Path(default_data_dir())
    lines = [f"# {_t('tasks', lang)}", "", _t("tasks_intro", lang), "",
             f"| {_t('task', lang)} | {_t('items', lang)} | {_t('data', lang)} | {_t('help', lang)} |",
             "|---|---|---|---|"]
    for name in TASKS:
        try:
            n: object = f"{len(get_task(name).load(data_dir).samples):,}"
            present = _t("present", lang)
        except (ChimedEvalError, OSError, ValueError) as exc:  # the first sentence, paths relative to the data
            why = str(exc).splitlines()[0].replace(f"{data_dir}/", "<data-dir>/").split(". ", 1)[0]
            n, present = "–", f"{_t('absent', lang)}: {why}"
        lines.append(f"| `{name}` | {n} | {_cell(present)} | {_cell(TASKS.help(name))} |")
    lines += ["", f"## {_t('types', lang)}", "", _t("types_intro", lang), "",
              f"| {_t('task', lang)} | {_t('help', lang)} |", "|---|---|"]
    for name in TASK_TYPES:
        lines.append(f"| `{name}` | {_cell(TASK_TYPES.help(name))} |")
    return "\n".join(lines) + "\n"


# --- metrics -------------------------------------------------------------------------------------

def _rst_to_md(text: str) -> str:
    """Sphinx roles and double backticks to Markdown code."""
    text = re.sub(r":(?:func|class|mod|data|meth|attr|obj):`~?\.?([^`]+)`", r"`\1`", text)
    return _escape_html(text.replace("``", "`"))


def metrics_page(lang: str) -> str:
    """Every declared metric name, its direction, and its module's definition and source."""
    lines = [f"# {_t('metrics', lang)}", "", _t("metrics_intro", lang), ""]
    helpers = []
    for path in sorted((ROOT / "chimed_eval/metrics").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        doc = _rst_to_md(ast.get_docstring(tree) or "")
        directions = None
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else (
                node.target if isinstance(node, ast.AnnAssign) else None)
            if isinstance(target, ast.Name) and target.id == "DIRECTIONS" and node.value is not None:
                directions = ast.literal_eval(node.value)
        rel = path.relative_to(ROOT).as_posix()
        if directions is None:
            helpers.append((path.stem, rel, doc))
            continue
        lines += [f"## {path.stem}", "", f"{_t('source', lang)}: `{rel}`", "",
                  f"| {_t('name', lang)} | {_t('direction', lang)} |", "|---|---|"]
        lines += [f"| `{_cell(k)}` | {v or 'none'} |" for k, v in directions.items()]
        lines += ["", doc, ""]
    lines += [f"## {_t('helpers', lang)}", ""]
    for stem, rel, doc in helpers:
        lines += [f"### {stem}", "", f"{_t('source', lang)}: `{rel}`", "", doc, ""]
    return "\n".join(lines) + "\n"


PAGES: dict[str, Callable[[str], str]] = {"cli.md": cli_page, "api.md": api_page, "schema.md": schema_page,
                                         "tasks.md": tasks_page, "metrics.md": metrics_page}


def pages(lang: str) -> dict[str, str]:
    """Every generated page: file name under reference/ -> Markdown."""
    return {name: make(lang) for name, make in PAGES.items()}
