"""One file per command, wired by one list; the only importer of the plug-ins."""
