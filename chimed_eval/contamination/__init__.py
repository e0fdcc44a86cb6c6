"""Contamination checks: does a training corpus contain the evaluation test items?

* :mod:`.ngrams` -- the n-gram rule (lm-evaluation-harness's decontamination rule, 13-grams,
  with characters as tokens for Chinese): tokenisation, the test-side index, the corpus scan and
  the per-item overlap (question vs option-only matches);
* :mod:`.scan` -- the corpus side: documents hashed in bounded chunks and looked up;
* :mod:`.corpus` -- reading corpus files (JSONL/JSON, text, CSV/TSV) as a stream of documents;
* :mod:`.cli` -- ``chimed-eval contamination`` and its report file;
* :mod:`.clean` -- ``chimed-eval score OUT --exclude-contaminated REPORT`` (figures on the items
  the report does not flag, in ``OUT/results.clean.json``);
* :mod:`.report` -- the "Contamination" section of the HTML report.

Nothing here is imported by ``import chimed_eval``; numpy loads only when a check runs.
"""
