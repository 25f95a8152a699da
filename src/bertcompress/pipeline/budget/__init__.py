"""`run --budget`: measure a grid of candidate students on this machine before training, pick the
one expected to be most accurate among those that meet every budget, build it with `run`'s stages,
and check the result against the budgets, re-measured beside the teacher (docs/methods.md,
"Budgets").

    grid.py     the candidates: shapes from the teacher (or a named pre-trained student), formats
    measure.py  their latency and bytes on disk, in interleaved rounds with the teacher
    pick.py     the pick among those that fit, or the refusal naming the closest
    plan.py     the decision in `run` (table, pick, reuse on resume) and the pick applied to its config
    check.py    the final model re-measured beside the teacher, per budget met or missed
"""
