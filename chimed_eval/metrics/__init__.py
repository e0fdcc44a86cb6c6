"""Pure metric functions: no data loading, no model, no I/O."""
