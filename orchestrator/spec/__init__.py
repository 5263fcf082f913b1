"""Spec loading: discovery, YAML, values, templates, validation."""
