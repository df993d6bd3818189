"""pgdeck's services: all I/O and domain logic, with no terminal in sight.

Nothing here imports Textual, ``tui`` or ``widgets`` (a test holds the rule), so the
command line, the TUI and a Kubernetes Job can all use the same code.
"""
