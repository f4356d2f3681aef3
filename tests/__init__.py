"""The test suite: one module per unit of the package, what they share in helpers.py (docs/DESIGN.md, "The tests")."""
