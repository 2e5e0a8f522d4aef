"""The ``medialens`` command line."""
