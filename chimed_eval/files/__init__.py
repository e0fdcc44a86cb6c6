"""Users' item files: tabular readers, answers and options, spans and their checks (file:line errors)."""
