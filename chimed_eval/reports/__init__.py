"""HTML report and its sections, compare, check and baselines, figure notes."""
