"""Makes the demos' schemas (``schema/model/classifier``, ``schema/data/digits``...) visible
to every Hydra app, as ``lightning_args_plugin`` does for the library's groups. The demos
register their own schemas: the library itself knows nothing of them."""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from lightning_args.demos.config import register


class LightningArgsDemosSearchPathPlugin(SearchPathPlugin):
    """Registers the demos' structured configs when Hydra builds its search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        register()  # in the ConfigStore (dataclasses), nothing to add to the path itself
