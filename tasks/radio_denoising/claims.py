"""The notes' radio-denoising claim (REFERENCE.md: a denoising AE on air-shower traces, true-reconstruction
accuracy 69 % / 95 % / 98 % for galactic / uniform / cosine noise): the denoiser helps on every noise kind.
The absolute values are not claimed here: our simulated traces are not the notes' data. Checked by
`aebench claims radio-denoising`."""

from aebench.claims import Ordering

SOURCE = "notes (Erdmann et al.), denoising AE"
NOISY = "no denoising (noisy trace)"
KINDS = ("accuracy_galactic", "accuracy_uniform", "accuracy_cosine")

CLAIMS = (
    Ordering(text="the denoiser (dae) beats no denoising on every noise kind", better=("dae",), worse=(NOISY,),
             metrics=KINDS, source=SOURCE),
)  # fmt: skip
