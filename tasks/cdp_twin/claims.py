"""The TURBO paper's CDP digital-twin claims, from its table (REFERENCE.md): FID₁ (x̃) 3.87 / 3.37 / 3.16,
FID₂ (t̃) 4.45 / 8.57 / 6.60, Hamming 0.15 / 0.11 / 0.09, MSE 0.05 / 0.05 / 0.04, SSIM 0.73 / 0.76 / 0.78 for
CycleGAN / pix2pix / TURBO; without processing 304, 304, 0.24, 0.18, 0.48. Checked by `aebench claims cdp-twin`."""

from aebench.claims import Ordering, published_table

SOURCE = "TURBO paper, CDP table"
MODELS = ("cyclegan", "pix2pix", "turbo")
RAW = "without processing (x vs t)"

CLAIMS = (
    Ordering(text="every model beats 'without processing' on FID₁, Hamming, MSE and SSIM", better=MODELS,
             worse=(RAW,), metrics=("fid_twin", "hamming", "mse", "ssim"), source=SOURCE),
    Ordering(text="TURBO has lower FID₁ than pix2pix", better=("turbo",), worse=("pix2pix",),
             metrics=("fid_twin",), source=SOURCE),
    Ordering(text="pix2pix has lower FID₁ than CycleGAN", better=("pix2pix",), worse=("cyclegan",),
             metrics=("fid_twin",), source=SOURCE),
    Ordering(text="CycleGAN has lower FID₂ than TURBO", better=("cyclegan",), worse=("turbo",),
             metrics=("fid_template",), source=SOURCE),
    Ordering(text="TURBO has lower FID₂ than pix2pix", better=("turbo",), worse=("pix2pix",),
             metrics=("fid_template",), source=SOURCE),
    Ordering(text="TURBO has lower Hamming than pix2pix", better=("turbo",), worse=("pix2pix",),
             metrics=("hamming",), source=SOURCE),
    Ordering(text="pix2pix has lower Hamming than CycleGAN", better=("pix2pix",), worse=("cyclegan",),
             metrics=("hamming",), source=SOURCE),
    Ordering(text="TURBO has lower MSE and higher SSIM than pix2pix and CycleGAN", better=("turbo",),
             worse=("pix2pix", "cyclegan"), metrics=("mse", "ssim"), source=SOURCE),
    Ordering(text="pix2pix has higher SSIM than CycleGAN", better=("pix2pix",), worse=("cyclegan",),
             metrics=("ssim",), source=SOURCE),
)  # fmt: skip

# The paper's table as printed (FID₁, FID₂, Hamming, MSE, SSIM), shown beside ours in `aebench report cdp-twin`.
PUBLISHED = published_table(SOURCE, ("fid_twin", "fid_template", "hamming", "mse", "ssim"), {
    RAW: (304, 304, 0.24, 0.18, 0.48),
    "cyclegan": (3.87, 4.45, 0.15, 0.05, 0.73),
    "pix2pix": (3.37, 8.57, 0.11, 0.05, 0.76),
    "turbo": (3.16, 6.60, 0.09, 0.04, 0.78),
})  # fmt: skip
