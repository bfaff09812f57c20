"""Mutation testing of the pure modules: would their tests notice a wrong line?

- ``operators``: a module's source to its mutants (pure);
- ``targets``: which modules, which of their tests, and the score they are held to;
- ``runner``: runs the tests against each mutant in copies of the tree;
- ``equivalent.toml``: mutants reviewed as equivalent, each with its reason.

``./dev mutate [MODULE ...] [--changed REV]``; see docs/testing.md.
"""
