"""Where each manifest file is fetched from: the official host, a Hugging Face endpoint
(``$HF_ENDPOINT``, hf-mirror.com), ModelScope, or a mirror tree (``base/host/path``, also a
local folder).

``chimed-eval data --mirror SPEC`` (or ``$CHIMED_EVAL_DATA_MIRROR``) takes one of

- ``https://hf-mirror.com`` (any URL whose host is ``hf-mirror.com``), ``hf:URL`` or
  ``hf-mirror``: the Hugging Face layout under another host. Only files hosted on
  ``huggingface.co`` move there (``https://huggingface.co/datasets/ceval/ceval-exam/resolve/main/x``
  becomes ``URL/datasets/ceval/ceval-exam/resolve/main/x``); the others stay official.
- ``modelscope`` (or ``modelscope:URL`` for another ModelScope host): the files the manifest
  declares a ModelScope copy of come from
  ``https://www.modelscope.cn/datasets/{owner}/{name}/resolve/{revision}/{path}``; the others
  as without a mirror.
- a URL or a local folder (``file:///path`` or a plain path): a mirror tree, ``base + "/" +
  host + path`` for every file, what ``wget --force-directories -i urls.txt`` creates.

Without a mirror, files hosted on ``huggingface.co`` come from ``$HF_ENDPOINT`` when it is set,
as ``huggingface_hub`` and ``transformers`` fetch models. Whatever the source, every file is
checked against the manifest's sha256 before it is written, so a mirror can make a download
fail, never make it wrong.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

from chimed_eval.core.errors import ConfigError

MIRROR_ENV = "CHIMED_EVAL_DATA_MIRROR"
"""Environment variable with a mirror (any ``--mirror`` form); used when none is given."""

HF_ENDPOINT_ENV = "HF_ENDPOINT"
"""The Hugging Face endpoint variable that ``huggingface_hub`` reads; honoured for data too."""

HF_HOST = "huggingface.co"
HF_MIRROR = "https://hf-mirror.com"
MODELSCOPE = "https://www.modelscope.cn"

MirrorKind = Literal["official", "tree", "hf-endpoint", "modelscope"]


@dataclass(frozen=True)
class ModelScopeFile:
    """A file of a ModelScope data set repository (``owner/name``, a revision, a path in it)."""

    repo: str
    revision: str
    path: str

    def url(self, base: str = MODELSCOPE) -> str:
        return f"{base.rstrip('/')}/datasets/{self.repo}/resolve/{self.revision}/{self.path}"


@dataclass(frozen=True)
class Mirror:
    """A parsed ``--mirror``: its ``kind`` and its base URL (None for ``official``)."""

    kind: MirrorKind = "official"
    base: str | None = None

    def describe(self) -> str:
        return {"official": "official hosts", "tree": f"mirror tree {self.base}",
                "hf-endpoint": f"Hugging Face endpoint {self.base}", "modelscope": f"ModelScope {self.base}"}[self.kind]


def parse_mirror(spec: str | None, env: Mapping[str, str] | None = None) -> Mirror:
    """``--mirror`` as a :class:`Mirror` (``spec`` None: ``$CHIMED_EVAL_DATA_MIRROR``; empty: none)."""
    env = os.environ if env is None else env
    if spec is None:
        spec = env.get(MIRROR_ENV, "")
    spec = spec.strip()
    if not spec:
        return Mirror()
    low = spec.lower()
    if low in ("modelscope", "ms"):
        return Mirror("modelscope", MODELSCOPE)
    if low.startswith("modelscope:") and "//" in spec:
        return Mirror("modelscope", _url(spec.split(":", 1)[1]))
    if low in ("hf-mirror", "hf-mirror.com"):
        return Mirror("hf-endpoint", HF_MIRROR)
    if low.startswith("hf:"):
        return Mirror("hf-endpoint", _url(spec[3:]))
    parts = urllib.parse.urlsplit(spec)
    if parts.scheme in ("http", "https"):
        if parts.hostname == "hf-mirror.com":
            return Mirror("hf-endpoint", _url(spec))
        return Mirror("tree", _url(spec))
    if parts.scheme == "file":
        return Mirror("tree", spec.rstrip("/"))
    if parts.scheme and len(parts.scheme) > 1:
        raise ConfigError(f"--mirror {spec!r}: expected an http(s) or file URL, a local folder, 'modelscope', "
                          "'hf-mirror' or hf:URL")
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"--mirror {spec!r}: no such folder (a local mirror is a folder in the base/host/path "
                          "layout; a URL needs http://, https:// or file://)")
    return Mirror("tree", folder.resolve().as_uri())


def _url(text: str) -> str:
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise ConfigError(f"--mirror: {text!r} is not an http(s) or file URL")
    return text.strip().rstrip("/")


def hf_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """``$HF_ENDPOINT`` without a trailing slash (None when unset or ``https://huggingface.co``)."""
    env = os.environ if env is None else env
    value = env.get(HF_ENDPOINT_ENV, "").strip().rstrip("/")
    if not value or urllib.parse.urlsplit(value).hostname == HF_HOST:
        return None
    return value


def quote_path(url: str) -> str:
    """``url`` with non-ASCII path characters percent-encoded (query kept)."""
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.quote(parts.path, safe="/%:@!$&'()*+,;=~-._")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def tree_url(url: str, base_url: str | None) -> str:
    """Map an official URL onto a mirror tree: ``base_url + "/" + host + path`` (query kept).

    ``https://raw.githubusercontent.com/haonan-li/CMMLU/<commit>/data/dev/anatomy.csv`` with
    ``base_url="http://mirror.lan/chimed"`` becomes
    ``http://mirror.lan/chimed/raw.githubusercontent.com/haonan-li/CMMLU/<commit>/data/dev/anatomy.csv``.
    The official URL's scheme is dropped; non-ASCII path characters are percent-encoded.
    """
    parts = urllib.parse.urlsplit(url)
    if base_url:
        url = f"{base_url.rstrip('/')}/{parts.netloc}{parts.path}"
        if parts.query:
            url += "?" + parts.query
    return quote_path(url)


def on_host(url: str, base: str) -> str:
    """``url`` with its scheme and host replaced by ``base`` (which may carry a path prefix)."""
    parts = urllib.parse.urlsplit(url)
    return quote_path(base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else ""))


def source_url(url: str, mirror: Mirror, modelscope: ModelScopeFile | None = None,
               env: Mapping[str, str] | None = None) -> str:
    """Where to fetch the file whose official URL is ``url`` under ``mirror`` (see the module)."""
    if mirror.kind == "tree":
        return tree_url(url, mirror.base)
    if mirror.kind == "modelscope" and modelscope is not None:
        return quote_path(modelscope.url(mirror.base or MODELSCOPE))
    is_hf = urllib.parse.urlsplit(url).hostname == HF_HOST
    if mirror.kind == "hf-endpoint" and is_hf:
        return on_host(url, mirror.base or HF_MIRROR)
    endpoint = hf_endpoint(env)
    if is_hf and endpoint:
        return on_host(url, endpoint)
    return quote_path(url)


def parse_modelscope(entry: object, where: str) -> ModelScopeFile | None:
    """A manifest download's ``"modelscope": {"repo", "revision", "path"}`` (None when absent)."""
    if entry is None:
        return None
    if not isinstance(entry, dict) or set(entry) != {"repo", "revision", "path"}:
        raise ValueError(f"{where}: 'modelscope' must be {{\"repo\", \"revision\", \"path\"}}, got {entry!r}")
    repo = str(entry["repo"])
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ValueError(f"{where}: modelscope repo {repo!r} must be owner/name")
    return ModelScopeFile(repo, str(entry["revision"]), str(entry["path"]))


__all__ = ["HF_ENDPOINT_ENV", "MIRROR_ENV", "MODELSCOPE", "Mirror", "ModelScopeFile", "hf_endpoint", "on_host",
           "parse_mirror", "parse_modelscope", "source_url", "tree_url"]
