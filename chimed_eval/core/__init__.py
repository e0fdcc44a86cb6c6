"""The typed records, errors, the one registry, key=value parsing, secret arguments."""
