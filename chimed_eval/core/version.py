"""The package version and the results.json schema version.

In the lowest layer so that the runner, merge, re-scoring and the contamination filter can stamp
what they write without importing the package's door (``chimed_eval/__init__.py``, which
re-exports both).
"""

__version__ = "0.1.0"
SCHEMA_VERSION = "1.0"
