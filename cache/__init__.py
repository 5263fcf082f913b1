"""The content-addressed store (blobs + action cache). Imports nothing from `orchestrator`."""
