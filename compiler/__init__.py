"""Reserved: filled in by later issues."""
