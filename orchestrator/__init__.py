"""orch: an incremental, content-addressed build orchestrator for luet-format trees."""

__version__ = "0.1.0"
