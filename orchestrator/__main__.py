"""`python -m orchestrator` is the `orch` command."""
from orchestrator.cli import run

run()
