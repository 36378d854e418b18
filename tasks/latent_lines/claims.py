"""The ACAI paper's claims on the lines benchmark (section 3.2, table 1): ACAI's interpolations are closer to
true lines and smoother than a plain auto-encoder's. Checked by `aebench claims latent-lines`."""

from aebench.claims import Ordering

SOURCE = "ACAI paper (Berthelot et al. 2019), table 1"

CLAIMS = (
    Ordering(text="ACAI interpolates closer to true lines than the baseline auto-encoder", better=("acai",),
             worse=("ae",), metrics=("mean_distance",), source=SOURCE),
    Ordering(text="ACAI interpolates more smoothly than the baseline auto-encoder", better=("acai",), worse=("ae",),
             metrics=("smoothness",), source=SOURCE),
)  # fmt: skip
