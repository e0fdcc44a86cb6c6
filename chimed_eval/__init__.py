"""chimed-eval: an evaluation-first toolkit for Chinese medical language models.

Importing the package is cheap: torch, transformers and vllm are imported only by the backends
that need them.
"""

from chimed_eval.core.version import SCHEMA_VERSION, __version__

__all__ = ["SCHEMA_VERSION", "__version__"]
