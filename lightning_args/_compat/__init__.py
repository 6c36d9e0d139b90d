"""Every use of a private or version-dependent internal, one module per library, each with the
versions it was checked on (a test of tests/test_compat*.py fails when one breaks)."""
