"""The one ``--help`` layout of every subcommand: each option's default shown."""

import argparse


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """argparse's layout, each option's help ending in ``(default: X)`` when it has a default
    (not None, not a switch's False) that its text does not already give."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS)
            and "default" not in text
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text
