"""Reading answers: letters, the choice cascade, reasoning traces, NER lines, judge verdicts."""
