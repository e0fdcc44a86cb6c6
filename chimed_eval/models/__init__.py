"""Model presets, model resolution, chat set-up."""
