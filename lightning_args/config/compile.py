"""The schema of ``torch.compile``'s settings (``compile``), and their check."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from lightning_args.errors import ConfigValueError

#: ``torch.compile``'s modes (``compile.mode``); ``None`` is torch's default.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class CompileConfig:
    """``torch.compile`` of the model for training (``compile.enabled=true``).

    The module's calls (``self(batch)``: its ``forward``) are compiled in place, its step
    methods stay eager (:mod:`lightning_args.modules.compiled` says why); checkpoints hold the
    module's own weights, so a compiled run loads (``load_run``), resumes and forks without
    compiling.

    Attributes:
        enabled: compile, or train eagerly (the default).
        mode: one of :data:`COMPILE_MODES`; ``null``: torch's default.
        dynamic: shapes traced as dynamic (``true``), static (``false``) or as torch decides
            (``null``: static first, dynamic once a shape changes).
        fullgraph: refuse graph breaks (an error instead of falling back to Python).

    Example:
        >>> CompileConfig(enabled=True, mode="max-autotune").fullgraph
        False
    """

    enabled: bool = False
    mode: str | None = None
    dynamic: bool | None = None
    fullgraph: bool = False


def compile_config(cfg: DictConfig) -> CompileConfig:
    """``cfg.compile`` as its typed settings, checked (eager where a stored config predates
    them): one message for a ``compile.mode`` torch does not have.

    Example:
        >>> compile_config(OmegaConf.create({"compile": {"enabled": True}})).enabled
        True
    """
    node = OmegaConf.select(cfg, "compile", default=None)
    settings = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    if not isinstance(settings, dict):
        raise ConfigValueError(
            f"compile={settings!r}: expected the compile settings. Fix: compile.enabled=true"
        )
    config = CompileConfig(**{str(k): v for k, v in settings.items()})
    if config.mode is not None and config.mode not in COMPILE_MODES:
        raise ConfigValueError(
            f"compile.mode={config.mode!r}: expected one of {', '.join(COMPILE_MODES)}, or "
            "null. Fix: compile.mode=default"
        )
    return config
