"""The backend protocol: one method per request kind, batches in, responses out (same order).

A backend class declares what it can do (``capabilities``, :class:`~chimed_eval.core.capabilities.Capabilities`),
the ``--model-args`` names it reads (``accepted_args``) and how a run builds it (:meth:`Backend.create`),
so that nothing outside its own file asks for its name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

from chimed_eval.core.capabilities import Capabilities
from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import ModelInfo, Request, Response

__all__ = ["Backend", "Capabilities"]


class Backend(ABC):
    """A model behind one method per request kind. It never knows which task a request serves."""

    name: str = "backend"
    #: requests per call that the runner should hand over (None: the run's --batch-size)
    run_batch_size: int | None = None
    #: what it can do beyond ``generate``; read from the class, before any model loads
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: the ``--model-args`` (``--judge-args``) names it reads; any other is refused before a run
    accepted_args: ClassVar[frozenset[str]] = frozenset()
    #: the libraries it imports beyond the base install (top-level module names), checked before a
    #: run writes anything (:func:`chimed_eval.backends.check_backend_installed`)
    requires: ClassVar[tuple[str, ...]] = ()
    #: how to install them (the one line a missing library is answered with)
    install_hint: ClassVar[str] = ""

    @classmethod
    def create(cls, model: str, *, seed: int = 0, batch_size: int = 8, device: str | None = None,
               dtype: str | None = None, model_args: Mapping[str, str] | None = None,
               script: Any = None) -> "Backend":
        """The backend ``chimed-eval run --backend NAME --model MODEL`` builds
        (:func:`chimed_eval.backends.open_backend`): by default the model as given and every run
        setting by keyword. Backends that resolve local weights or take an answer script
        (``script``, only for ``capabilities.answer_script``) override this."""
        return cls(model, seed=seed, batch_size=batch_size, device=device, dtype=dtype,  # type: ignore[call-arg]
                   model_args=dict(model_args or {}))

    @abstractmethod
    def model_info(self) -> ModelInfo: ...

    @abstractmethod
    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]: ...

    @abstractmethod
    def next_token(self, requests: Sequence[Request]) -> list[Response]: ...

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]: ...

    def token_logprobs(self, requests: Sequence[Request]) -> list[Response]:
        """Per-token log-probabilities of each request's text (``Response.token_logprobs``, and
        ``token_moments`` where the whole next-token distribution is at hand). Backends that can
        read them override this; the others refuse."""
        raise ConfigError(f"backend {self.name} cannot return per-token log-probabilities; use --backend hf "
                          "(or vllm for Min-K% without Min-K%++)")

    def request_length(self, request: Request) -> int:
        """A length to sort by (longest first); backends with a tokenizer return tokens."""
        return len(request.context) + max((len(c) for c in request.continuations), default=0)

    def sort_key(self, request: Request) -> tuple:
        """Batching order: requests sharing a few-shot prefix together (so its KV cache is
        reused), longest first within them (memory errors surface at once)."""
        return (request.prefix, -self.request_length(request))

    def run(self, kind: str, requests: Sequence[Request]) -> list[Response]:
        fn = {"loglikelihood": self.loglikelihood, "next_token": self.next_token, "generate": self.generate,
              "token_logprobs": self.token_logprobs}[kind]
        out = fn(requests)
        if len(out) != len(requests) or any(r.key != q.key for r, q in zip(out, requests)):
            raise RuntimeError(f"backend {self.name} returned responses out of order for {kind}")
        return out

    def close(self) -> None:
        """Release the model (engines with worker processes override this)."""
