"""varreason: variational reasoning (Zhou et al. 2025, https://arxiv.org/abs/2509.22637) as a library.

Pure code only: no Prefect or DVC imports here (``tests/test_layers.py`` enforces it). The orchestration lives
in ``tasks/`` (Prefect tasks) and ``flows/`` (the ``vr-em`` flow).
"""
