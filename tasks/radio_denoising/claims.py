"""The notes' radio-denoising claims (REFERENCE.md: a denoising AE on air-shower traces, true-reconstruction
accuracy 69 % / 95 % / 98 % for galactic / uniform / cosine noise): the denoiser helps on every noise kind, and
reaches those accuracies. Our traces are simulated, not the notes' data, so the values say whether our data and
denoiser reproduce theirs. Checked by `aebench claims radio-denoising`."""

from aebench.claims import Ordering, Value, published_table

SOURCE = "notes (Erdmann et al.), denoising AE"
NOISY = "no denoising (noisy trace)"
KINDS = ("accuracy_galactic", "accuracy_uniform", "accuracy_cosine")

CLAIMS = (
    Ordering(text="the denoiser (dae) beats no denoising on every noise kind", better=("dae",), worse=(NOISY,),
             metrics=KINDS, source=SOURCE),
    Value(text="the denoiser finds 69 % of the peaks under galactic noise", row="dae", metric="accuracy_galactic",
          value=69.0, precision=0.5, source=SOURCE),
    Value(text="the denoiser finds 95 % of the peaks under uniform noise", row="dae", metric="accuracy_uniform",
          value=95.0, precision=0.5, source=SOURCE),
    Value(text="the denoiser finds 98 % of the peaks under cosine noise", row="dae", metric="accuracy_cosine",
          value=98.0, precision=0.5, source=SOURCE),
)  # fmt: skip

# The notes' accuracies per noise kind (%), shown beside ours in `aebench report radio-denoising`.
PUBLISHED = published_table(SOURCE, KINDS, {"dae": (69.0, 95.0, 98.0)})
