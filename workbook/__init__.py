"""workbook: one training step of a tiny transformer, printed for pencil and calculator."""

__version__ = "0.1.0"
