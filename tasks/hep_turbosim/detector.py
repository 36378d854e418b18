"""Detector level from parton level: the Delphes CMS card's resolutions, acceptance and the OTUS selection.

Two named detectors; both apply the same generator-level cuts to the partons and the same smearing to objects:
- "fast" (default): a parametric response. The six partons of the hard process are smeared directly: the electron
  into the electron, the four quarks into four jets, MET from the smeared visible objects. Vectorised over events.
- "fastjet": anti-kt R = 0.5 jets (fastjet) of the hadronised final state (Pythia 8 shower, MPI, hadronisation),
  then the same jet smearing; the electron is the final-state copy of the W's electron.

Every number below is from the Delphes 3.4 CMS card (`delphes_card_CMS.tcl`, the card in the OTUS repository's
`MGCardFiles/delphes_card.dat`), module by module; README.md lists them against the card. Every detector object is
rebuilt from (pT, η, φ) with mass 0, as the OTUS data are. MET is (px, py, 0, |pT|).
"""

from __future__ import annotations

import numpy as np

DETECTORS = ("fast", "fastjet")

# Generator-level cuts of the OTUS sample (MadGraph run card), applied to the partons: ptj, ptl, etaj, etal, drjj.
PARTON_JET_PT, PARTON_JET_ETA, PARTON_JET_DR = 20.0, 5.0, 0.4
PARTON_LEPTON_PT, PARTON_LEPTON_ETA = 10.0, 2.5

# Detector acceptance and selection. FastJetFinder: anti-kt, ParameterR 0.5, JetPTMin 20 (before the energy scale).
JET_PT_MIN, JET_ETA_MAX, JET_R = 20.0, 5.0, 0.5
ELECTRON_PT_MIN, ELECTRON_ETA_MAX = 10.0, 2.5
N_JETS = 4

# ECal (SimpleCalorimeter) resolution, used for the electron energy: σ_E = f(η) · √((0.008 E)² + 0.11² E + 0.40²)
# with f = 1 + 0.64 η² for |η| ≤ 1.5 and f = 2.16 + 5.6 (|η| − 2)² for 1.5 < |η| ≤ 2.5.
ECAL_CONSTANT, ECAL_STOCHASTIC, ECAL_NOISE, ECAL_BARREL_ETA = 0.008, 0.11, 0.40, 1.5
# ElectronEfficiency: 95% for |η| ≤ 1.5, 85% for 1.5 < |η| ≤ 2.5, pT > 10 GeV.
ELECTRON_EFFICIENCY_BARREL, ELECTRON_EFFICIENCY_ENDCAP, ELECTRON_BARREL_ETA = 0.95, 0.85, 1.5
# ElectronIsolation: Σ pT (objects with pT > 0.5 GeV within ΔR 0.5) / pT_e ≤ 0.12.
ISOLATION_DR, ISOLATION_PT_MIN, ISOLATION_RATIO_MAX = 0.5, 0.5, 0.12
# HCal resolution, used for the jet energy: σ_E = √((a E)² + b² E), (a, b) = (0.05, 1.50) for |η| ≤ 3 and
# (0.13, 2.70) for 3 < |η| ≤ 5.
JET_CENTRAL_ETA = 3.0
JET_CENTRAL = (0.050, 1.50)
JET_FORWARD = (0.130, 2.70)
# JetEnergyScale: the four-momentum × √((2.5 − 0.15 |η|)² / pT + 1).
JES_OFFSET, JES_SLOPE = 2.5, 0.15
# Ours (the card smears calorimeter towers, not jet directions): Gaussian η, φ smearing of 0.025 (~ a 0.087 cell/√12).
JET_ANGLE = 0.025


# --- four-vector helpers, on (..., 4) arrays (px, py, pz, E) -------------------------------------------------------
def pt(p: np.ndarray) -> np.ndarray:
    return np.hypot(p[..., 0], p[..., 1])


def eta(p: np.ndarray) -> np.ndarray:
    return np.arcsinh(p[..., 2] / np.maximum(pt(p), 1e-12))


def phi(p: np.ndarray) -> np.ndarray:
    return np.arctan2(p[..., 1], p[..., 0])


def delta_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dphi = (phi(a) - phi(b) + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta(a) - eta(b), dphi)


def massless(pt_: np.ndarray, eta_: np.ndarray, phi_: np.ndarray) -> np.ndarray:
    """(..., 4) massless four-vectors from (pT, η, φ)."""
    return np.stack([pt_ * np.cos(phi_), pt_ * np.sin(phi_), pt_ * np.sinh(eta_), pt_ * np.cosh(eta_)], axis=-1)


def min_pair_dr(p: np.ndarray) -> np.ndarray:
    """(N,) smallest ΔR among the objects of each event, p (N, K, 4)."""
    k = p.shape[1]
    pairs = [delta_r(p[:, i], p[:, j]) for i in range(k) for j in range(i + 1, k)]
    return np.min(np.stack(pairs, axis=1), axis=1)


# --- cuts and smearing --------------------------------------------------------------------------------------------
def parton_cuts(z: np.ndarray) -> np.ndarray:
    """(N,) bool: the generator-level cuts on z (N, 24) = e⁻, ν̄ₑ, b, b̄, u, d̄."""
    p = z.reshape(-1, 6, 4)
    electron, quarks = p[:, 0], p[:, 2:]
    return (
        (pt(electron) > PARTON_LEPTON_PT)
        & (np.abs(eta(electron)) < PARTON_LEPTON_ETA)
        & np.all(pt(quarks) > PARTON_JET_PT, axis=1)
        & np.all(np.abs(eta(quarks)) < PARTON_JET_ETA, axis=1)
        & (min_pair_dr(quarks) > PARTON_JET_DR)
    )


def ecal_resolution(energy: np.ndarray, eta_: np.ndarray) -> np.ndarray:
    """σ_E (GeV) of the CMS card's ECal for electrons of `energy` at pseudorapidity `eta_` (|η| ≤ 2.5)."""
    a = np.abs(eta_)
    shape = np.where(a <= ECAL_BARREL_ETA, 1 + 0.64 * eta_**2, 2.16 + 5.6 * (a - 2) ** 2)
    return shape * np.sqrt((ECAL_CONSTANT * energy) ** 2 + ECAL_STOCHASTIC**2 * energy + ECAL_NOISE**2)


def jet_resolution(energy: np.ndarray, eta_: np.ndarray) -> np.ndarray:
    """σ_E (GeV) of the CMS card's HCal: 150%/√E ⊕ 5% for |η| ≤ 3, 270%/√E ⊕ 13% beyond."""
    central = np.abs(eta_) <= JET_CENTRAL_ETA
    constant = np.where(central, JET_CENTRAL[0], JET_FORWARD[0])
    stochastic = np.where(central, JET_CENTRAL[1], JET_FORWARD[1])
    return np.sqrt((constant * energy) ** 2 + stochastic**2 * energy)


def jet_energy_scale(p: np.ndarray) -> np.ndarray:
    """(...,) the card's factor √((2.5 − 0.15 |η|)² / pT + 1) for jets p (..., 4)."""
    return np.sqrt((JES_OFFSET - JES_SLOPE * np.abs(eta(p))) ** 2 / np.maximum(pt(p), 1e-12) + 1.0)


def smear_electrons(p: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smeared massless electrons (N, 4) and (N,) bool: reconstructed (efficiency) and inside the acceptance."""
    energy, eta_ = p[..., 3], eta(p)
    sigma = ecal_resolution(energy, eta_)
    energy = np.maximum(energy + sigma * rng.standard_normal(energy.shape), 0.0)
    out = massless(energy / np.cosh(eta_), eta_, phi(p))
    efficiency = np.where(np.abs(eta_) <= ELECTRON_BARREL_ETA, ELECTRON_EFFICIENCY_BARREL, ELECTRON_EFFICIENCY_ENDCAP)
    found = rng.random(energy.shape) < efficiency
    return out, found & (pt(out) > ELECTRON_PT_MIN) & (np.abs(eta_) < ELECTRON_ETA_MAX)


def isolated(electron: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N,) bool: Σ pT of `others` (N, M, 4) with pT > 0.5 GeV within ΔR 0.5 of `electron` (N, 4) ≤ 0.12 pT_e."""
    near = (delta_r(electron[:, None], others) < ISOLATION_DR) & (pt(others) > ISOLATION_PT_MIN)
    return (pt(others) * near).sum(axis=1) <= ISOLATION_RATIO_MAX * pt(electron)


def smear_jets(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Smeared massless jets before the energy scale, same shape (..., 4): energy, then η and φ; pT = E / cosh η."""
    energy = p[..., 3]
    sigma = jet_resolution(energy, eta(p))
    energy = np.maximum(energy + sigma * rng.standard_normal(energy.shape), 0.0)
    eta_ = eta(p) + JET_ANGLE * rng.standard_normal(energy.shape)
    phi_ = phi(p) + JET_ANGLE * rng.standard_normal(energy.shape)
    return massless(energy / np.cosh(eta_), eta_, phi_)


def jet_accepted(p: np.ndarray) -> np.ndarray:
    return (pt(p) > JET_PT_MIN) & (np.abs(eta(p)) < JET_ETA_MAX)


def missing_et(visible_pt_sum: np.ndarray) -> np.ndarray:
    """(N, 4) MET = −Σ visible pT, as (px, py, 0, |pT|); visible_pt_sum (N, 2)."""
    met = -visible_pt_sum
    return np.concatenate([met, np.zeros_like(met[:, :1]), np.hypot(met[:, :1], met[:, 1:])], axis=1)


def assemble(electron: np.ndarray, met: np.ndarray, jets: np.ndarray) -> np.ndarray:
    """x (N, 24): electron, MET, jets ordered by decreasing pT."""
    order = np.argsort(-pt(jets), axis=1, kind="stable")
    jets = np.take_along_axis(jets, order[..., None], axis=1)
    return np.concatenate([electron, met, jets.reshape(len(jets), -1)], axis=1)


# --- the two detectors --------------------------------------------------------------------------------------------
def fast_response(z: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x (N, 24) and (N,) bool selected, from parton-level z (N, 24) that passed `parton_cuts`.

    Selected: the electron is reconstructed in acceptance and isolated from the (smeared) jets, all four jets have
    pT > 20 GeV before the energy scale and |η| < 5, and no two jets are within ΔR < 0.5 (closer jets would be one
    anti-kt jet, leaving three). The jets in x carry the energy scale.
    """
    p = z.reshape(-1, 6, 4)
    electron, found = smear_electrons(p[:, 0], rng)
    raw = smear_jets(p[:, 2:], rng)  # (N, 4, 4)
    jets = raw * jet_energy_scale(raw)[..., None]
    selected = found & isolated(electron, raw) & np.all(jet_accepted(raw), axis=1) & (min_pair_dr(raw) > JET_R)
    met = missing_et(electron[:, :2] + raw[:, :, :2].sum(axis=1))  # the card's MissingET: from eflow, before the JES
    return assemble(electron, met, jets), selected


def fastjet_response(particles: np.ndarray, electron: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """x (24,) of one hadronised event, or None when it fails the selection.

    particles (M, 4): visible final-state particles with |η| < 5 other than the W's electron; electron (4,): the
    final-state copy of the W's electron, isolated against `particles`. Jets: anti-kt R = 0.5 on `particles`,
    smeared, then pT > 20 GeV and |η| < 5, exactly four, then the energy scale. MET = −(electron + selected jets +
    the particles outside them) in the transverse plane.
    """
    import fastjet

    smeared_electron, found = smear_electrons(electron[None], rng)
    if not found[0] or not isolated(smeared_electron, particles[None])[0]:
        return None
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    sequence = fastjet.ClusterSequence([fastjet.PseudoJet(*map(float, q)) for q in particles], definition)
    clustered = sequence.inclusive_jets(0.5 * JET_PT_MIN)  # smearing can lift a jet over 20 GeV; lower ones cannot
    if len(clustered) < N_JETS:
        return None
    raw = np.array([[j.px(), j.py(), j.pz(), j.E()] for j in clustered])
    jets = smear_jets(raw, rng)
    keep = jet_accepted(jets)
    if keep.sum() != N_JETS:
        return None
    # Particles in no selected jet form the unclustered (soft) term of MET, unsmeared.
    soft = particles[:, :2].sum(axis=0) - raw[keep, :2].sum(axis=0)
    visible = smeared_electron[0, :2] + jets[keep, :2].sum(axis=0) + soft  # MET from eflow, before the JES
    met = missing_et(visible[None])
    jets = jets[keep] * jet_energy_scale(jets[keep])[:, None]
    return assemble(smeared_electron, met, jets[None])[0]
