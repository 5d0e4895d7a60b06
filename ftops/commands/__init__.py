"""One module per CLI command. Each exposes ``run(options) -> result``: callable and tested
without click, its options one typed object (as twine's ``Settings``), its result plain data
that ``ftops.cli`` renders and maps to an exit code. Only this floor starts emulators."""
