"""The notes' galaxy-generation claims (REFERENCE.md: "GAN shows mode collapse"; acGAN is conditioned on the
class; the WGANs are the remedy; the VAE is blurry). Checked by `aebench claims galaxy-generation` on the
classifier-space class coverage (the smallest class's share of the samples, relative to the training data) and
the PIE sharpness."""

from aebench.claims import Ordering

SOURCE = "notes (Revisiting Autoencoders), GAN family"
REAL = "Real (training vs test galaxies)"

CLAIMS = (
    Ordering(text="WGAN-GP and WGAN-div cover the classes better than the GAN (the GAN collapses)",
             better=("wgan-gp", "wgan-div"), worse=("gan",), metrics=("class_coverage",), source=SOURCE),
    Ordering(text="acGAN covers the classes better than the GAN", better=("acgan",), worse=("gan",),
             metrics=("class_coverage",), source=SOURCE),
    Ordering(text="the VAE's samples are blurrier than real galaxies", better=(REAL,), worse=("vae",),
             metrics=("sharpness",), source=SOURCE),
)  # fmt: skip
