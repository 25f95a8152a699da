"""Extract Then Distill (extract.py) and structured pruning (structured.py), both driven by the
unit importance of importance.py; command.py holds the `extract` / `prune` verbs and subcommands."""
