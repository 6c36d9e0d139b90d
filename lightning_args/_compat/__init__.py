"""Every use of a private or version-dependent internal, one module per library, each with the
versions it was checked on (tests/test_<library>_compat.py fails when one breaks)."""
