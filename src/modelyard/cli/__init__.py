"""The ``modelyard`` command line: one module per command group, errors mapped in app.py."""
