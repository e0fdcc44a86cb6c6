"""The folders of ``chimed_eval`` in layer order, lowest first, and the plug-ins only ``cli`` may use.

The one rule of the layout: a module imports only from its own folder and from folders *below* it
in :data:`LAYERS` (every import counts: at the top of a module, inside a function or under
``TYPE_CHECKING``), and no import cycle joins two modules. Only :data:`PLUGIN_IMPORTER` imports
the :data:`PLUGINS` (the repository's ``tasks/``, ``leaderboards/`` and ``training/``); a lower
layer that needs behaviour from a higher one is handed a callable. The modules directly in
``chimed_eval/`` (the package's door) stand above every folder and nothing in a folder imports
them. ``tests/test_layers.py`` enforces this and the docs' "Layout of the code" page (docs/en/explanation/layout.md) lists the same
folders in the same order.
"""

from __future__ import annotations

LAYERS: tuple[str, ...] = (
    "core", "files", "data", "metrics", "prompts", "extract", "models", "evidence", "backends", "task", "runs",
    "engine", "judge", "contamination", "reports", "cli",
)
PLUGINS: tuple[str, ...] = ("tasks", "leaderboards", "training")
PLUGIN_IMPORTER = "cli"
