"""Every use of OmegaConf's private internals, in one module.

Checked on omegaconf 2.3.1 (:data:`CHECKED_ON`), by reading its source:

- ``omegaconf/base.py``: a node's ``_metadata`` holds its declared ``ref_type`` (and, for a
  ``ListConfig``, the ``element_type`` of its items); the public API gives only the value's
  type, not what the schema declared, which is what a "wrong value" message must name.
- ``omegaconf/_utils.py``: ``type_str`` writes a type as a schema reads (``int``,
  ``Optional[float]``, ``List[str]``).
- ``Node._get_node_flag``: a node's own flag, ``None`` when inherited. ``OmegaConf.is_readonly``
  gives the effective one, which cannot be restored exactly after a temporary change.

``tests/test_hydra_compat.py`` fails when any of these stops holding (on an upgrade: run it
first, then update :data:`CHECKED_ON`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import Node
    from omegaconf.errors import ValidationError

CHECKED_ON = "2.3.1"


def declared_type(error: ValidationError) -> Any:
    """The type the schema declares where ``error`` happened, or ``None`` when it is not known.

    >>> from dataclasses import dataclass
    >>> from omegaconf import OmegaConf, ValidationError
    >>> @dataclass
    ... class Trainer:
    ...     max_epochs: int = 1
    >>> cfg = OmegaConf.structured(Trainer)
    >>> try:
    ...     cfg.max_epochs = "ten"
    ... except ValidationError as error:
    ...     print(declared_type(error))
    <class 'int'>
    """
    from omegaconf import ListConfig

    if error.child_node is not None:
        return error.child_node._metadata.ref_type
    if isinstance(error.parent_node, ListConfig):
        return error.parent_node._metadata.element_type
    return None


def type_words(ref: Any) -> str:
    """A declared type as a schema writes it.

    >>> from typing import Optional
    >>> type_words(Optional[float])
    'Optional[float]'
    """
    from omegaconf._utils import type_str

    return str(type_str(ref))


def own_readonly_flag(node: Node) -> bool | None:
    """The node's own read-only flag: ``None`` when it inherits its parent's."""
    flag: bool | None = node._get_node_flag("readonly")
    return flag
