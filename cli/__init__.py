"""The `sentiment` command: thin shells over the library functions."""
