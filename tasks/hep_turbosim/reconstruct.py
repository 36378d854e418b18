"""The five reconstructed masses of a detector-level event: m_W and m_t on the leptonic and hadronic sides, m_tt.

As the Turbo-Sim authors' `utils/reconstruction.py`, from x (N, 24) = electron, MET, jet1..jet4, each (px, py, pz, E)
in GeV:
- the neutrino is (MET_x, MET_y, p_z, |p|) with p_z from m_W² = (p_e + p_ν)², solved with the electron's own E and
  mass: m_e² = |E² − |p|²| of the given four-vector, the square of their signed mass (`electron_mass2="authors"`,
  the default), or the exact E² − |p|² (`"exact"`, which keeps m(e + ν) = m_W for a space-like generated electron
  too; the two agree for the detector's massless electrons); of the two roots the smaller |p_z|; when the roots are
  complex, their common real part;
- the four jets are assigned to (b_lep, b_had, q, q') by minimising
  χ² = ((m_t^lep − m_t)/5)² + ((m_W^had − m_W)/10)² + ((m_t^had − m_t)/15)² over the 12 assignments;
- m of e + ν (m_W lep), e + ν + b_lep (m_t lep), q + q' (m_W had), q + q' + b_had (m_t had), e + ν + all four jets
  (m_tt, the same for every assignment), signed as theirs (`_mass_from_p4`): sign(m²)·√|m²|, so a space-like sum of
  generated vectors gives a negative mass rather than 0.
Generated events are taken as they come: their four components need not describe a massless particle.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

W_MASS, TOP_MASS = 80.379, 172.76  # GeV (REFERENCE.md)
SIGMA_T_LEP, SIGMA_W_HAD, SIGMA_T_HAD = 5.0, 10.0, 15.0
MASS_NAMES = ("m_W(lep)", "m_t(lep)", "m_W(had)", "m_t(had)", "m_tt")
MASS_RANGES = ((20.0, 200.0), (80.0, 400.0), (20.0, 200.0), (50.0, 900.0), (250.0, 2500.0))  # GeV, the histograms

# (b_lep, b_had, q, q') with q < q': the light pair is unordered.
ASSIGNMENTS = np.array([(bl, bh, *sorted({0, 1, 2, 3} - {bl, bh})) for bl, bh in permutations(range(4), 2)])


def mass(p: np.ndarray, signed: bool = False) -> np.ndarray:
    """(...,) invariant mass of (..., 4) four-vectors: √max(E² − |p|², 0), or with `signed` sign(m²)·√|m²|."""
    m2 = p[..., 3] ** 2 - (p[..., :3] ** 2).sum(axis=-1)
    if signed:
        return np.sign(m2) * np.sqrt(np.abs(m2))
    return np.sqrt(np.maximum(m2, 0.0))


ELECTRON_MASS2 = ("authors", "exact")


def neutrino(
    electron: np.ndarray, met: np.ndarray, w_mass: float = W_MASS, electron_mass2: str = "authors"
) -> np.ndarray:
    """(N, 4) massless neutrinos from the W-mass constraint with the electron's own E and mass; electron, met (N, 4).

    The authors' quadratic (`_reco_neutrino`): a p_z² + b p_z + c = 0 with k = (m_W² − m_e²)/2 + p_e,T · MET,
    a = E_e² − p_z,e², b = −2 k p_z,e, c = E_e² |MET|² − k²; m_e² = |E² − |p|²| ("authors") or E² − |p|² ("exact")."""
    if electron_mass2 not in ELECTRON_MASS2:
        raise ValueError(f"electron_mass2 must be one of {ELECTRON_MASS2}, got {electron_mass2!r}")
    px, py = met[:, 0], met[:, 1]
    pz_e, e_e = electron[:, 2], electron[:, 3]
    m_e2 = e_e**2 - (electron[:, :3] ** 2).sum(axis=1)
    m_e2 = np.abs(m_e2) if electron_mass2 == "authors" else m_e2
    k = 0.5 * (w_mass**2 - m_e2) + electron[:, 0] * px + electron[:, 1] * py
    a = e_e**2 - pz_e**2
    a = np.where(np.abs(a) < 1e-12, 1e-12, a)  # a degenerate electron (E = |p_z|): keep the roots finite
    centre = k * pz_e / a
    discriminant = centre**2 - (e_e**2 * (px**2 + py**2) - k**2) / a
    root = np.sqrt(np.maximum(discriminant, 0.0))  # 0 when complex: both roots have real part `centre`
    pz = np.where(np.abs(centre - root) <= np.abs(centre + root), centre - root, centre + root)
    return np.stack([px, py, pz, np.sqrt(px**2 + py**2 + pz**2)], axis=1)


def reconstruct_masses(x: np.ndarray, electron_mass2: str = "authors") -> np.ndarray:
    """(N, 5) masses in `MASS_NAMES` order from detector-level x (N, 24) in GeV."""
    x = np.asarray(x, dtype=np.float64)
    electron, met, jets = x[:, 0:4], x[:, 4:8], x[:, 8:24].reshape(-1, 4, 4)
    w_lep = electron + neutrino(electron, met, electron_mass2=electron_mass2)
    b_lep, b_had = jets[:, ASSIGNMENTS[:, 0]], jets[:, ASSIGNMENTS[:, 1]]  # (N, 12, 4)
    w_had = jets[:, ASSIGNMENTS[:, 2]] + jets[:, ASSIGNMENTS[:, 3]]
    m_t_lep = mass(w_lep[:, None] + b_lep, signed=True)  # (N, 12)
    m_w_had, m_t_had = mass(w_had, signed=True), mass(w_had + b_had, signed=True)
    chi2 = (
        ((m_t_lep - TOP_MASS) / SIGMA_T_LEP) ** 2
        + ((m_w_had - W_MASS) / SIGMA_W_HAD) ** 2
        + ((m_t_had - TOP_MASS) / SIGMA_T_HAD) ** 2
    )
    best = np.argmin(chi2, axis=1)[:, None]
    pick = lambda m: np.take_along_axis(m, best, axis=1)[:, 0]  # noqa: E731
    m_tt = mass(w_lep + jets.sum(axis=1), signed=True)
    return np.stack([mass(w_lep, signed=True), pick(m_t_lep), pick(m_w_had), pick(m_t_had), m_tt], axis=1)


PARTICLES = {"electron": 0, "jet1": 8, "jet2": 12, "jet3": 16, "jet4": 20}  # where each massless object starts in x


def mass2(p: np.ndarray) -> np.ndarray:
    """(...,) E² − |p|² of (..., 4) four-vectors, in GeV²: 0 for the detector's massless objects."""
    return p[..., 3] ** 2 - (p[..., :3] ** 2).sum(axis=-1)


def on_shell(x: np.ndarray, particles: tuple[str, ...] = ("electron",)) -> np.ndarray:
    """A copy of detector-level x (N, 24) with E := |p| for the named objects (`PARTICLES`): back on the mass shell
    of the detector's massless electron and jets, the direction and momentum kept."""
    x = np.array(x, dtype=np.float64)
    for name in particles:
        start = PARTICLES[name]
        x[:, start + 3] = np.sqrt((x[:, start : start + 3] ** 2).sum(axis=1))
    return x


def parton_masses(z: np.ndarray) -> np.ndarray:
    """(N, 5) the same masses from parton-level z (N, 24) = e⁻, ν̄ₑ, b, b̄, u, d̄ with the true assignment."""
    e, nu, b, bbar, u, dbar = np.asarray(z, dtype=np.float64).reshape(-1, 6, 4).transpose(1, 0, 2)
    w_lep, w_had = e + nu, u + dbar
    return np.stack([mass(w_lep), mass(w_lep + bbar), mass(w_had), mass(w_had + b), mass(w_lep + w_had + b + bbar)], 1)


def partons_as_detector(z: np.ndarray) -> np.ndarray:
    """(N, 24) x-layout of parton-level z: the electron, the ν̄'s transverse momentum as MET, the quarks as jets."""
    p = np.asarray(z, dtype=np.float64).reshape(-1, 6, 4)
    met = np.zeros_like(p[:, 1])
    met[:, :2] = p[:, 1, :2]
    met[:, 3] = np.hypot(met[:, 0], met[:, 1])
    return np.concatenate([p[:, 0], met, p[:, 2:].reshape(len(p), -1)], axis=1)
