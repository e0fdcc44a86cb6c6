"""Output directory, record writer, the one reader of runs, resume, integrity digests."""
