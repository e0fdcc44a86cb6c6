"""chimed-eval: an evaluation-first toolkit for Chinese medical language models.

Importing the package is cheap: torch, transformers and vllm are imported only by the backends
that need them.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = "1.0"
