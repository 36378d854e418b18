"""The PIE paper's sharpness claims, from its table (REFERENCE.md): True 0.18, VAE 0.08, WAE 0.07, PIE 0.49.
Checked by `aebench claims mnist-sharpness`; the value of real digits against an interval, not for equality."""

from aebench.claims import Ordering, Value, published_table

SOURCE = "PIE paper, sharpness table"
REAL = "True (real test digits)"

CLAIMS = (
    Ordering(text="PIE is sharper than VAE and WAE", better=("pie",), worse=("vae", "wae"),
             metrics=("sharpness",), source=SOURCE),
    Ordering(text="PIE is sharper than real digits (0.49 against 0.18)", better=("pie",), worse=(REAL,),
             metrics=("sharpness",), source=SOURCE),
    Ordering(text="VAE and WAE are blurrier than real digits", better=(REAL,), worse=("vae", "wae"),
             metrics=("sharpness",), source=SOURCE),
    Ordering(text="VAE is sharper than WAE (0.08 against 0.07)", better=("vae",), worse=("wae",),
             metrics=("sharpness",), source=SOURCE),
    Value(text="real digits score 0.18", row=REAL, metric="sharpness", value=0.18, precision=0.005, source=SOURCE),
)  # fmt: skip

# The paper's sharpness table as printed, shown beside ours in `aebench report mnist-sharpness`.
PUBLISHED = published_table(SOURCE, ("sharpness",), {REAL: (0.18,), "vae": (0.08,), "wae": (0.07,), "pie": (0.49,)})
