"""The dataset report (Markdown + PNG charts) of the CLI and the demo; the index and the export
formats the services use too are in ``shared.dataset``."""
