"""Code that runs in the sandbox's child interpreters, not in the harness.

Each module here is self-contained (standard library only, no ``from __future__``, no import
of the others): :func:`pathbench.tasks.sandbox.process.child_script` concatenates the sources of the
modules a child needs into one ``python -I -c`` script, because an isolated interpreter
(``-I``) does not put any project folder on ``sys.path``. Importing them here is harmless
(nothing runs at import) and lets the tests and linters see them as ordinary modules.
"""
