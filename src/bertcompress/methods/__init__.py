"""One folder per compression method, each with `config.py` (its settings), `verb.py` (the function
the CLI calls) and its own parts. A method imports the shared layers below it, never the CLI
or `run`; see CONTRIBUTING.md to add one."""
