"""What the data sets are and where they live: folders, the manifest of public files, manual sets.

:data:`DATA_LOCATIONS` is the one definition of each data set's folder under the data dir; the
manifest's destinations, the placement notes of the sets with no public copy and the task loaders
all take it from here (through :mod:`chimed_eval.data.sets`). The manifest itself -- official URLs,
pinned commits, the sha256 of every released file, licences and notes -- is data, shipped beside
this module as ``manifest.json`` and read on first use (stdlib ``json``: no numpy, no
network). Its destinations are relative to the data set's folder, so moving a folder here moves
its files without touching the hashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Literal, Mapping

from chimed_eval.core.errors import ConfigError, MissingDataError
from chimed_eval.data.mirrors import ModelScopeFile, parse_modelscope

MANIFEST_FILE = Path(__file__).with_name("manifest.json")
"""The shipped manifest (package data)."""

# --------------------------------------------------------------------------------------------
# Data locations: the one definition shared by `chimed-eval data` and the task loaders

#: Each data set's folder under the data dir, by data set name.
DATA_LOCATIONS: Mapping[str, str] = {
    "cmmlu": "cmmlu",
    "ceval": "ceval",
    "medqa_mcmle": "medqa_mcmle",
    "safetybench": "safetybench",
    "ccks2019": "ccks2019",
    "cmd": "cmd",
    "hetmc": "dialogue/hetmc",
    "covid_zh": "dialogue/covid_zh",
    "chimed_qa": "chimed",
    "chimst": "chimst",
    "cmexam": "cmexam",
    "cmb": "cmb",
    "cmb_clin": "cmb-clin",
}

#: Files the loaders read by name (relative to the data dir).
CMD_QA_FILE = f"{DATA_LOCATIONS['cmd']}/internal_medicine_5000-6000.csv"
CHIMED_QA_TEST = f"{DATA_LOCATIONS['chimed_qa']}/test.jsonl"
CHIMST_TEST = f"{DATA_LOCATIONS['chimst']}/test.jsonl"


def data_location(name: str) -> str:
    """The folder of data set ``name`` under the data dir (``dialogue/hetmc``, ``chimed``, ...)."""
    try:
        return DATA_LOCATIONS[name]
    except KeyError:
        raise unknown_name("dataset", name, DATA_LOCATIONS) from None


# --------------------------------------------------------------------------------------------
# Manifest records


@dataclass(frozen=True)
class Download:
    """One URL and the files it yields.

    ``files`` maps each destination path (POSIX, relative to the data dir) to its expected sha256.

    - ``kind="file"``: the response body is the single file in ``files``, saved byte for byte.
    - ``kind="zip"``: the response is a zip archive; each destination is extracted byte for byte
      from the member ``members[dest]`` (default: the destination's file name). A member is looked
      up by its exact name first, then by file name anywhere in the archive (``__MACOSX`` ignored),
      so an archive with an extra top-level folder still works; the checksum decides between
      look-alikes.

    ``optional`` files (licence texts whose upstream path could not be verified offline) only warn
    when they cannot be fetched or do not match; no bad copy is ever written.

    ``size``: the number of bytes of the response body as released (the file, or the archive). A
    download stops as soon as the server sends more than that plus a small slack, so a wrong or
    hostile server cannot fill the disk; None (a hand-made manifest) falls back to a fixed ceiling.
    """

    url: str
    files: Mapping[str, str]
    kind: Literal["file", "zip"] = "file"
    members: Mapping[str, str] = field(default_factory=dict)
    optional: bool = False
    size: int | None = None
    #: the same file on ModelScope (``chimed-eval data --mirror modelscope``), checked by the same sha256
    modelscope: ModelScopeFile | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("file", "zip"):
            raise ValueError(f"unknown download kind {self.kind!r} for {self.url}")
        if self.kind == "file" and len(self.files) != 1:
            raise ValueError(f"a plain-file download must have exactly one destination: {self.url}")
        for dest, sha in self.files.items():
            p = PurePosixPath(dest)
            if p.is_absolute() or ".." in p.parts or not p.parts:
                raise ValueError(f"destination {dest!r} must be a relative path inside the data dir")
            if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
                raise ValueError(f"bad sha256 {sha!r} for {dest}")
        if self.size is not None and (type(self.size) is not int or self.size <= 0):
            raise ValueError(f"size of {self.url} must be a positive number of bytes, not {self.size!r}")

    def member_for(self, dest: str) -> str:
        return self.members.get(dest, PurePosixPath(dest).name)


@dataclass(frozen=True)
class DatasetSpec:
    """A data set with public downloads."""

    name: str
    title: str
    licence: str
    source: str
    downloads: tuple[Download, ...]
    notes: str = ""

    def files(self, *, optional: bool = True) -> dict[str, str]:
        """All destination paths of this set with their sha256."""
        out: dict[str, str] = {}
        for d in self.downloads:
            if optional or not d.optional:
                out.update(d.files)
        return out

    def optional_files(self) -> set[str]:
        return {f for d in self.downloads if d.optional for f in d.files}


Manifest = Mapping[str, DatasetSpec]


@dataclass(frozen=True)
class ManualSet:
    """A data set that has no public copy: the user places it by hand under ``folder``."""

    name: str
    title: str
    folder: str
    availability: str
    layout: tuple[tuple[str, str], ...]  # (path under the data dir, what it holds)
    formats: tuple[str, ...]
    stand_in: str = ""


# --------------------------------------------------------------------------------------------
# Reading the manifest file


def _download(entry: Mapping[str, Any], folder: str) -> Download:
    files = {f"{folder}/{rel}": sha for rel, sha in entry["files"].items()}
    members = {f"{folder}/{rel}": rel for rel in entry["files"]} if entry.get("members") == "by-path" else {}
    return Download(entry["url"], files, kind=entry.get("kind", "file"), members=members,
                    optional=bool(entry.get("optional", False)), size=entry.get("size"),
                    modelscope=parse_modelscope(entry.get("modelscope"), entry["url"]))


def load_manifest(path: Path = MANIFEST_FILE) -> dict[str, DatasetSpec]:
    """The data sets of a manifest file, by name; destinations joined to :data:`DATA_LOCATIONS`.

    Format 1: ``{"datasets": [{"name", "title", "licence", "source", "notes"?, "downloads": [{"url",
    "size"?: bytes of the body as released, "files": {path under the set's folder: sha256},
    "kind"?: "zip", "members"?: "by-path", "optional"?: true, "modelscope"?: {"repo": owner/name,
    "revision", "path"}}]}]}``. A set with no folder in :data:`DATA_LOCATIONS` or a malformed entry
    is an error at import, not at download time.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != 1:
            raise ValueError(f"unsupported format {doc.get('format')!r} (expected 1)")
        specs = [
            DatasetSpec(d["name"], d["title"], d["licence"], d["source"],
                        tuple(_download(e, DATA_LOCATIONS[d["name"]]) for e in d["downloads"]), d.get("notes", ""))
            for d in doc["datasets"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a valid data manifest: {type(exc).__name__}: {exc}") from exc
    return {s.name: s for s in specs}


@lru_cache(maxsize=1)
def shipped_manifest() -> dict[str, DatasetSpec]:
    """The data sets with a public release, by name: the shipped manifest, read on first use (the
    task loaders import this module for :data:`DATA_LOCATIONS` alone)."""
    return load_manifest(MANIFEST_FILE)


def __getattr__(name: str) -> Any:
    """``MANIFEST`` (the shipped manifest) is read when first asked for, not at import."""
    if name == "MANIFEST":
        return shipped_manifest()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MANUAL_SETS: dict[str, ManualSet] = {
    "chimed_qa": ManualSet(
        "chimed_qa",
        "ChiMed QA (the paper's open medical QA set; task chimed-qa)",
        DATA_LOCATIONS["chimed_qa"],
        "No public copy: the ChiMed-GPT authors release it only under a signed data-use contract.",
        (
            (CHIMED_QA_TEST, "the evaluation items (or test.json / test.csv / test.tsv / test.xlsx)"),
        ),
        (
            'JSON lines, UTF-8: {"question": "...", "answer_1": "...", "answer_2": "..."} per line '
            '(answer_2 optional, one item per reference answer; an optional "id" field is kept as the '
            "item id, otherwise the line number is)",
            'or the authors\' processed form {"prompt": ["question"], "output": ["answer"]} per line',
            "or the same columns in test.json / test.csv / test.tsv / test.xlsx",
        ),
        f"{DATA_LOCATIONS['cmd']}/ (CMD internal medicine, task cmd-qa: "
        "`chimed-eval data --datasets cmd`) is the public stand-in for open QA.",
    ),
    "chimst": ManualSet(
        "chimst",
        "ChiMST (the paper's medical NER set; tasks chimst-ner, chimst-ner-paper)",
        DATA_LOCATIONS["chimst"],
        "No public copy: released only under a signed data-use contract.",
        (
            (CHIMST_TEST, "the evaluation records (or test.bio / test.conll / test.txt, CoNLL)"),
            (f"{DATA_LOCATIONS['chimst']}/train.jsonl", "optional: the pool for few-shot examples (or train.bio)"),
        ),
        (
            'JSON lines, UTF-8: {"text": "...", "entities": [{"start": 0, "end": 3, "type": "症状"}]} '
            "with character offsets, start inclusive, end exclusive",
            "or CoNLL BIO (.bio/.conll/.txt): one character and its tag per line separated by "
            "whitespace (B-type / I-type / O), a blank line between records",
            f"optional {DATA_LOCATIONS['chimst']}/types.txt: the type inventory, one type per line "
            "(default: the gold types in order of first appearance)",
        ),
        f"{DATA_LOCATIONS['ccks2019']}/ (`chimed-eval data --datasets ccks2019`) is the public clinical NER set.",
    ),
    "cmb": ManualSet(
        "cmb",
        "CMB-Exam (Comprehensive Medical Benchmark in Chinese, test split; task cmb-exam)",
        DATA_LOCATIONS["cmb"],
        "Public, but no pinned copy could be hashed here: unzip data/CMB.zip of "
        "github.com/FreedomIntelligence/CMB and copy the two files below.",
        (
            (f"{DATA_LOCATIONS['cmb']}/CMB-test-choice-question-merge.json", "the test questions"),
            (f"{DATA_LOCATIONS['cmb']}/CMB-test-choice-answer.json", "the answers, by question id"),
        ),
        ('a JSON list of {"id", "exam_type", "exam_class", "exam_subject", "question", "question_type" '
         '(单项选择题|多项选择题), "option": {"A": ...}}',
         'answers: a JSON list of {"id", "answer"} (letters, e.g. "ABD")'),
    ),
}
"""The data sets with no public copy, by name: where to put them and in what format."""


# --------------------------------------------------------------------------------------------
# Selection, did-you-mean, placement notes


def normalise(name: str) -> str:
    """A data set name as the user may type it (``CMMLU``, ``medqa-mcmle``) in manifest form."""
    return name.strip().lower().replace("-", "_")


def unknown_name(kind: str, name: str, known: Iterable[str]) -> ConfigError:
    """The error for an unknown name, with the registry's did-you-mean suggestion."""
    from chimed_eval.core.registry import Registry  # stdlib-only module

    reg: Registry[str] = Registry(kind)
    for k in known:
        reg.add(k, k)
    return ConfigError(reg.unknown_message(name))


def select(names: Iterable[str] | None, manifest: Manifest) -> list[DatasetSpec]:
    """The specs named (all for None or ``all``), in order, once each; a manual set's name raises
    :class:`MissingDataError` with its placement notes, an unknown one a did-you-mean error."""
    if names is None:
        return list(manifest.values())
    out: list[DatasetSpec] = []
    for raw in names:
        name = normalise(raw)
        if name == "all":
            return list(manifest.values())
        if name in manifest:
            if manifest[name] not in out:
                out.append(manifest[name])
        elif name in MANUAL_SETS:
            raise MissingDataError(
                f"{name!r} has no public download; place it by hand.\n" + describe_manual([name])
            )
        else:
            raise unknown_name("dataset", raw, [*manifest, *MANUAL_SETS])
    return out


def describe_manual(names: Iterable[str] | None = None, data_dir: Path | None = None) -> str:
    """The text that tells the user where to put the sets with no public copy, and in what format."""
    root = f"{data_dir}/" if data_dir is not None else "<data-dir>/"
    chosen = [MANUAL_SETS[normalise(n)] for n in names] if names is not None else list(MANUAL_SETS.values())
    blocks: list[str] = []
    for m in chosen:
        lines = [f"{m.title}  [{m.name}]", f"  {m.availability}", f"  Put it under {root}{m.folder}/:"]
        lines += [f"    {root}{path:<28} {what}" for path, what in m.layout]
        lines += ["  Formats the loaders accept:"] + [f"    - {f}" for f in m.formats]
        if m.stand_in:
            lines.append(f"  Until then: {m.stand_in}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
