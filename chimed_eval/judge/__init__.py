"""Model-graded open QA ("LLM as a judge").

The pure core lives in four modules with no back end and no I/O: :mod:`.prompts` (versioned
judge prompts and the rubrics), :mod:`.parse` (verdicts from the judge's text, never guessed),
:mod:`.agreement` (Cohen's kappa, Krippendorff's alpha, panel votes) and :mod:`.bias` (position
flips, length bias and length-controlled win rate, self-preference). Nothing here is imported by
``import chimed_eval``; numpy is imported inside the functions that need it.
"""
