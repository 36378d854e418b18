"""The TURBO paper's Hubble-to-Webb claims, from its table (REFERENCE.md): MSE 0.0097 / 0.0021 / 0.0026,
SSIM 0.83 / 0.93 / 0.92, PSNR 20.11 / 26.78 / 25.88, LPIPS 0.48 / 0.44 / 0.41, FID 128.1 / 54.58 / 43.36 for
CycleGAN / pix2pix / TURBO. Checked by `aebench claims hubble2webb` (aebench/claims.py)."""

from aebench.claims import Ordering, published_table

SOURCE = "TURBO paper, Hubble-to-Webb table"

CLAIMS = (
    Ordering(text="pix2pix has lower MSE than TURBO", better=("pix2pix",), worse=("turbo",), metrics=("mse",),
             source=SOURCE),
    Ordering(text="TURBO has lower FID than pix2pix", better=("turbo",), worse=("pix2pix",), metrics=("fid",),
             source=SOURCE),
    Ordering(text="TURBO has lower LPIPS than pix2pix", better=("turbo",), worse=("pix2pix",), metrics=("lpips",),
             source=SOURCE),
    Ordering(text="pix2pix has higher SSIM and PSNR than TURBO", better=("pix2pix",), worse=("turbo",),
             metrics=("ssim", "psnr"), source=SOURCE),
    Ordering(text="pix2pix and TURBO beat CycleGAN on MSE, SSIM, PSNR and FID", better=("pix2pix", "turbo"),
             worse=("cyclegan",), metrics=("mse", "ssim", "psnr", "fid"), source=SOURCE),
)  # fmt: skip

# The paper's table as printed, shown beside ours in `aebench report hubble2webb`.
PUBLISHED = published_table(SOURCE, ("mse", "ssim", "psnr", "lpips", "fid"), {
    "cyclegan": (0.0097, 0.83, 20.11, 0.48, 128.1),
    "pix2pix": (0.0021, 0.93, 26.78, 0.44, 54.58),
    "turbo": (0.0026, 0.92, 25.88, 0.41, 43.36),
})  # fmt: skip
