"""Leaderboards: which tasks and metrics make each of the paper's tables, the published figures,
and a renderer that reads only results.json files (never the data, never a model)."""

if __name__ != "chimed_eval.leaderboards":  # one name only: a module loaded twice would split the registries
    raise ImportError(f"import chimed_eval.leaderboards, not {__name__} (this folder installs under chimed_eval)")
