"""diffeditor: the shared, torch-free pieces (edit parameter models) and the console script."""

__version__ = "0.1.0"
