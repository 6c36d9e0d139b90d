"""Small helpers with no concept of their own: lazy exports, atomic writes, old module names."""
