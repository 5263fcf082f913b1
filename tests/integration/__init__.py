"""Integration tests: real buildah, private stores."""
