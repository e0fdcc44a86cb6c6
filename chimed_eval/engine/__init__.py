"""The runner, data parallelism, merging shards, re-scoring."""
