"""The ACAI paper's claims on MNIST representations (section 4, its tables of single-layer classifier and
clustering accuracy): ACAI's latent codes are better for both than a plain auto-encoder's and a VAE's. Checked by
`aebench claims latent-mnist`. The paper's numbers are not quoted here (no readable copy of the tables; README)."""

from aebench.claims import Ordering

SOURCE = "ACAI paper (Berthelot et al. 2019), section 4: single-layer classifier and clustering tables"

CLAIMS = (
    Ordering(text="ACAI's codes give a better single-layer classifier than the baseline auto-encoder's and the "
             "VAE's", better=("acai",), worse=("ae", "vae"), metrics=("linear_probe_accuracy",), source=SOURCE),
    Ordering(text="ACAI's codes cluster better (k-means) than the baseline auto-encoder's and the VAE's",
             better=("acai",), worse=("ae", "vae"), metrics=("clustering_accuracy",), source=SOURCE),
)  # fmt: skip
