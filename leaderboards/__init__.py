"""Leaderboards: which tasks and metrics make each of the paper's tables, the published figures,
and a renderer that reads only results.json files (never the data, never a model)."""
