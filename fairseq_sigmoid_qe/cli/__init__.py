"""The commands (console scripts and ``python -m`` entry points); no other module imports them."""
