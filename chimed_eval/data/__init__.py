"""Dataset specs and the manifest, fetching (mirrors, caps), where data lives."""
