"""Makes lightning_args' config groups visible to every Hydra app, with no import in the app.

Hydra imports the modules of the ``hydra_plugins`` namespace at start-up; this one registers
lightning_args' groups (``trainer``, ``optimizer``, ``scheduler``, ``logger``, ``callbacks``) in
the ConfigStore. Registration is cheap: only dataclasses, no torch.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from lightning_args._compat.hydra import fast_help_for_process
from lightning_args.config.store import register


class LightningArgsSearchPathPlugin(SearchPathPlugin):
    """Registers lightning_args' structured configs when Hydra builds its search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # The groups live in the ConfigStore (typed dataclasses), not in files: nothing to add
        # to the path itself, only to make sure they are registered before composition.
        register()
        # They are every app's groups then, and Hydra's --help is slow in the number of groups.
        fast_help_for_process()
