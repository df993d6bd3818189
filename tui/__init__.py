"""pgdeck's faces: the command line (and, later, the Textual app) joining services and widgets."""
