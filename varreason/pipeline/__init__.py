"""EM steps as plain functions: configs and ``ArtifactRef``s in, one content-addressed ``ArtifactRef`` out.

These are the single implementation behind both the Prefect tasks (``tasks/``) and any other entry point.
Each writes ``stats.json`` beside its outputs with wall time and token counts (cost accounting).
"""
