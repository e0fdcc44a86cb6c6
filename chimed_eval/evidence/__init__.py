"""What each kind of task records per item and how it aggregates (expansion under shuffles and repeats)."""
