"""The .arch language."""
