"""Reusable Textual widgets fed plain data; they never import ``services``."""
