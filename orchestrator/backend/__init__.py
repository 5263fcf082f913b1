"""Build backend: buildah driver (`buildah`), package builds (`builder`), artefacts (`artifact`, `unpack`).

Only `orchestrator.backend.buildah` starts processes; everything else here is plain Python.
"""
