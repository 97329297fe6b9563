"""The one error type pathbench raises for bad input.

The CLI turns a :class:`ConfigError` into one line on stderr and exit code 2, so its
message must name the bad value and the valid choices.
"""


class ConfigError(ValueError):
    """Bad user input: an unknown name, a value out of range, a mismatched file."""
