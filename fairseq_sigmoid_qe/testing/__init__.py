"""Support for tests and smoke runs: tiny models and release files made locally."""
