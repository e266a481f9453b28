"""Kept for tools and readers that look for it: the package is described in pyproject.toml."""

from setuptools import setup

setup()
