"""The paths a profile names, checked before any work starts; a problem is one :class:`ConfigError` line.

``check_inputs(cfg)`` looks at what a run writes to and reads from outside its own artifacts:

* ``artifacts_dir`` and ``results_dir`` must be writable directories, or creatable ones (the nearest existing
  ancestor is a writable directory). Writability is probed by creating an unnamed temporary file there, since
  permission bits say nothing for root on a read-only or special file system;
* ``model.name_or_path``, when it is an existing local path, must be a checkpoint directory with a
  ``config.json`` (``save_pretrained``'s layout), not a file or an empty directory;
* ``train.launcher.config``, when set, must be a readable YAML mapping (an accelerate config file).

Missing models and datasets, GPUs and packages are ``varreason.preflight``'s; dataset rows are
``varreason.bespoke``'s. No prefect import here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from varreason.config import ConfigError, ExperimentConfig, read_yaml


def writable_dir(path: str | Path, what: str, fix: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` is (or can be created as) a directory this process can write.

    ``what`` names the setting (``artifacts_dir``), ``fix`` says what to do (``--set artifacts_dir=DIR``)."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a file, not a directory; {fix}")
    probe = p
    while not probe.exists():  # the nearest existing ancestor is where the directories would be created
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{what} {str(path)!r}: {str(probe)!r} is a file, so no directory can be made under it; "
                          f"{fix}")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        where = "" if probe == p else f" (its nearest existing parent {str(probe)!r})"
        raise ConfigError(f"{what} {str(path)!r}{where} is not writable ({exc.strerror}); {fix}") from None


def check_model_dir(ref: str) -> None:
    """An existing local ``model.name_or_path`` must be a ``save_pretrained`` directory."""
    p = Path(ref).expanduser()
    if not p.exists():
        return  # a hub id, or a missing path: varreason.preflight says which
    fix = "give the directory save_pretrained wrote (it holds config.json and the weights)"
    if not p.is_dir():
        raise ConfigError(f"model.name_or_path {ref!r} is a file, not a checkpoint directory; {fix}")
    if not (p / "config.json").is_file():
        raise ConfigError(f"model.name_or_path {ref!r} holds no config.json; {fix}")


def check_inputs(cfg: ExperimentConfig) -> None:
    """Raise :class:`ConfigError` (one line) for the first unusable path of ``cfg`` (see the module doc)."""
    writable_dir(cfg.artifacts_dir, "artifacts_dir", "set artifacts_dir to a writable directory "
                 "(--set artifacts_dir=DIR)")
    writable_dir(cfg.results_dir, "results_dir", "set results_dir to a writable directory (--set results_dir=DIR)")
    if cfg.promotion.enabled:
        writable_dir(cfg.promotion.dir, "promotion.dir", "set it to a writable directory (--set promotion.dir=DIR)")
    if cfg.model.kind == "pretrained" and cfg.model.name_or_path:
        check_model_dir(cfg.model.name_or_path)
    launcher = cfg.train.launcher
    if launcher is not None and launcher.config:
        doc = read_yaml(Path(launcher.config), "train.launcher.config",
                        missing="set train.launcher.config to an accelerate config file, e.g. "
                                "deploy/accelerate/fsdp.yaml", limit=1 << 20, label="train.launcher.config ")
        if not isinstance(doc, dict):
            raise ConfigError(f"train.launcher.config {launcher.config!r}: expected a YAML mapping (an accelerate "
                              f"config), got {type(doc).__name__}; see deploy/accelerate/")
