"""The gateway bench: ``python -m bench.gateway`` (see ``__main__``)."""
