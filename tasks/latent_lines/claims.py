"""The ACAI paper's claims on the lines benchmark (section 3.2, table 1): ACAI's interpolations are the closest to
true lines and the smoothest of the auto-encoders it compares (a baseline AE, dropout and denoising AEs, VAE, AAE,
VQ-VAE); the VQ-VAE, whose codes are snapped to a codebook, interpolates poorly (checked here only as "worse than
ACAI": without the table's numbers, "poorly" has no other yardstick). Checked by `aebench claims latent-lines`
against the rows run here (ae, ae-dropout, ae-denoising, vae, aae, vq-vae: all seven of the table)."""

from aebench.claims import Ordering

SOURCE = "ACAI paper (Berthelot et al. 2019), table 1"
OTHERS = ("ae", "ae-dropout", "ae-denoising", "vae", "aae", "vq-vae")  # the other six of the paper's table 1

CLAIMS = (
    Ordering(text="ACAI interpolates closer to true lines than the other auto-encoders", better=("acai",),
             worse=OTHERS, metrics=("mean_distance",), source=SOURCE),
    Ordering(text="ACAI interpolates more smoothly than the other auto-encoders", better=("acai",), worse=OTHERS,
             metrics=("smoothness",), source=SOURCE),
)  # fmt: skip
