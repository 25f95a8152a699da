"""Extract Then Distill (extract.py) and structured pruning (structured.py), both driven by the
unit importance of importance.py; verbs.py holds the `extract` / `prune` verbs."""
