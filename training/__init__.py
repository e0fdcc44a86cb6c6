"""The ChiMed-GPT training regime at any scale: continued pre-training, SFT, a reward model,
rejection sampling, and all four in sequence (``chimed-train``; see docs/en/howto/training.md).

Each stage is one config dataclass plus one ``run_<stage>(config)`` function in its own module
(:mod:`chimed_eval.training.pretrain`, :mod:`chimed_eval.training.sft`, :mod:`chimed_eval.training.reward`,
:mod:`chimed_eval.training.rejection`), registered by name in :mod:`chimed_eval.training.registry`;
:mod:`chimed_eval.training.full` runs them in sequence. The
trainers are transformers' ``Trainer`` (pre-training) and TRL's ``SFTTrainer`` /
``RewardTrainer``, with their DeepSpeed integration; this package adds the data
handling (schemas, splits disjoint from the evaluation tasks, packing, answer-only masks,
mixtures, reward pairs; no test item of any evaluation task, :mod:`chimed_eval.training.overlap`) and the
measurements.
"""

if __name__ != "chimed_eval.training":  # one name only: a module loaded twice would split the registries
    raise ImportError(f"import chimed_eval.training, not {__name__} (this folder installs under chimed_eval)")
