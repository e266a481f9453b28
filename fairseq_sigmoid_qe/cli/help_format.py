"""The one ``--help`` layout of every subcommand: each option's default shown."""

import argparse

MISSING = "???"  # omegaconf's mark of a required value, as fairseq's configs use it


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """argparse's layout, each option's help ending in ``(default: X)`` when it has a default
    (not None, not a switch's False) that its text does not already give; ``(required)``
    for a fairseq encoder option that has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if default == MISSING:  # a fairseq option that must be given (omegaconf's MISSING)
            return text + " (required)"
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and "default" not in text
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text
