"""The embedded demonstrations: the synthetic ambiguous language, the l10n corpus preparation,
the quickstart pipeline and the token-group tables."""
