"""The TURBO paper's Turbo-Sim claims, from its KL table (REFERENCE.md): Turbo-Sim 3.96 / 4.43 / 2.97 and OTUS
2.76 / 5.75 / 15.8 in Z / X / Rec space. Checked by `aebench claims hep-turbosim` on each table of budgets (the
two models' own recipes, `paper-cpu` and `paper-otus-cpu`, are ranked together)."""

from aebench.claims import Ordering, published_table

SOURCE = "TURBO paper, Turbo-Sim KL table"

CLAIMS = (
    Ordering(text="Turbo-Sim has lower KL than OTUS in X and Rec space", better=("turbo-sim",), worse=("otus",),
             metrics=("kl_x", "kl_rec"), source=SOURCE),
    Ordering(text="OTUS has lower KL than Turbo-Sim in Z space", better=("otus",), worse=("turbo-sim",),
             metrics=("kl_z",), source=SOURCE),
)  # fmt: skip

# The paper's KL table as printed (Z, X, Rec space), shown beside ours in `aebench report hep-turbosim`.
PUBLISHED = published_table(SOURCE, ("kl_z", "kl_x", "kl_rec"), {
    "turbo-sim": (3.96, 4.43, 2.97),
    "otus": (2.76, 5.75, 15.8),
})  # fmt: skip
