"""Acme's gaitrun plugins: one good architecture and some broken ones (for gaitrun's tests)."""
