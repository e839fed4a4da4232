"""The data-generating process: patients, surgeries, treatment lines, assessments, deaths.

Everything is vectorised over patients; the only Python loops run over treatment lines (at
most `MAX_LINES`) and over successive assessments within a line (the arrays shrink as
patients progress). All times are integer days since 1970-01-01 ("day numbers"); durations
are in days. The model and its constants are documented in ``docs/sample_data.md``.

Progression model (line k, standard of care), proportional-hazards Weibull:
``S_k(t | x) = exp(-(t / scale_k) ** shape_k * exp(lp_k(x)))``, t in days from line start,
for the *latent* time to progression or death, whichever comes first. A share of these
events are deaths without progression (`p_death_first`); the others are progressions that
the registry or trial only sees at the next tumour assessment (or earlier, as a clinical
progression).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_LINES = 4
DAYS_PER_MONTH = 365.25 / 12.0
NEVER = np.iinfo(np.int64).max // 4  # "after any horizon" (day number)

HISTOLOGY = ("epithelioid", "biphasic", "sarcomatoid", "other")
HISTOLOGY_P = (0.70, 0.20, 0.07, 0.03)

# regimen code -> (drug classes, log-HR vs gemcitabine/vinorelbine at lines >= 2,
#                  planned duration in days or 0 = until progression)
REGIMENS: dict[str, tuple[str, float, int]] = {
    "platinum_pemetrexed": ("platinum;antifolate", -0.15, 126),
    "platinum_pemetrexed_bevacizumab": ("platinum;antifolate;antiangiogenic", -0.10, 126),
    "platinum_gemcitabine": ("platinum;antimetabolite", 0.10, 126),
    "nivolumab_ipilimumab": ("immune_checkpoint_inhibitor", -0.10, 730),
    "nivolumab": ("immune_checkpoint_inhibitor", -0.10, 365),
    "gemcitabine": ("antimetabolite", 0.0, 0),
    "vinorelbine": ("vinca_alkaloid", 0.0, 0),
    "pemetrexed": ("antifolate", 0.05, 0),
    "gemcitabine_ramucirumab": ("antimetabolite;antiangiogenic", -0.25, 0),
    "doxorubicin": ("anthracycline", 0.15, 0),
}
REGIMEN_CODES = tuple(REGIMENS)
_R = {code: i for i, code in enumerate(REGIMEN_CODES)}
IO_REGIMENS = np.array(["immune_checkpoint_inhibitor" in REGIMENS[c][0] for c in REGIMEN_CODES])
PLAT_PEM = _R["platinum_pemetrexed"]

# Weibull shape and scale (days) of the latent PFS. Line 1: latent median ~8 months on
# platinum-pemetrexed (half of the patients had CRS, most of them CC-0/1). Lines >= 2
# (calibrated on 200,000 simulated histories): the scale makes the latent median PFS of
# registry patients on a second line after platinum-pemetrexed 3.3 months (RAMES control arm;
# docs/sample_data.md), and the shape 1.7 (with the selection model of `_trial`) puts the
# trial population's control PFS at 24 weeks near 35% (the Simon H0). Lines 3-4 add +0.2 to
# the linear predictor.
SHAPE = (1.30, 1.70, 1.70, 1.70)
SCALE_DAYS = (330.0, 110.0, 110.0, 110.0)

# log-hazard-ratio coefficients of the linear predictor (lines >= 2 use all of them)
BETA = {
    "age_per_year": 0.012,
    "ecog_per_point": 0.30,
    "histology": (0.0, 0.35, 0.75, 0.25),
    "pci_per_point": 0.015,
    "ki67_per_percent": 0.010,
    "bap1_lost": -0.15,
    "female": -0.10,
    "prior_crs": -0.15,
    "cc0": -0.35,  # line 1 only: complete cytoreduction
    "pfi_per_month": -0.05,  # capped at 12 months
    "fitness": 0.15,  # latent fitness beyond ECOG (heterogeneity, not a confounder)
    "later_line": 0.20,  # lines 3-4
}


@dataclass
class Cohort:
    """Latent and recorded histories of ``n`` patients (arrays of length n or (n, MAX_LINES))."""

    n: int
    centre: np.ndarray
    female: np.ndarray
    diag_day: np.ndarray
    birth_day: np.ndarray
    age_dx: np.ndarray
    histology: np.ndarray  # index into HISTOLOGY
    pci: np.ndarray
    ki67: np.ndarray
    bap1_lost: np.ndarray
    fitness: np.ndarray
    surgery: np.ndarray  # any surgery row (CRS or exploratory)
    crs: np.ndarray
    hipec: np.ndarray
    cc: np.ndarray  # -1 when no CRS
    surgery_day: np.ndarray
    horizon: np.ndarray  # last day anything is observed (cut-off / loss to follow-up)
    # line arrays, shape (n, MAX_LINES); present == False beyond the last line
    present: np.ndarray = field(init=False)
    regimen: np.ndarray = field(init=False)
    start: np.ndarray = field(init=False)
    end: np.ndarray = field(init=False)
    end_reason: np.ndarray = field(init=False)  # index into END_REASONS
    ecog: np.ndarray = field(init=False)
    pfi_months: np.ndarray = field(init=False)
    lp: np.ndarray = field(init=False)
    death_day: np.ndarray = field(init=False)
    # assessments: parallel arrays
    a_patient: list = field(default_factory=list, init=False)
    a_day: list = field(default_factory=list, init=False)
    a_resp: list = field(default_factory=list, init=False)
    a_clin: list = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        shape = (self.n, MAX_LINES)
        self.present = np.zeros(shape, bool)
        self.regimen = np.full(shape, -1, np.int64)
        self.start = np.full(shape, NEVER, np.int64)
        self.end = np.full(shape, NEVER, np.int64)
        self.end_reason = np.full(shape, -1, np.int64)
        self.ecog = np.full(shape, -1, np.int64)
        self.pfi_months = np.full(shape, np.nan)
        self.lp = np.full(shape, np.nan)
        self.death_day = np.full(self.n, NEVER, np.int64)


END_REASONS = ("completed", "progression", "toxicity", "death", "patient_choice", "other")
RESPONSES = ("CR", "PR", "SD", "PD", "NE")


def baseline(rng: np.random.Generator, n: int, centre_p: np.ndarray, day0: int, day1: int):
    """Patients at diagnosis: demographics, tumour, surgery (a `Cohort` without lines)."""
    centre = rng.choice(len(centre_p), size=n, p=centre_p)
    female = rng.random(n) < 0.45
    diag_day = rng.integers(day0, day1, size=n)
    age_dx = np.clip(rng.normal(63.0, 10.5, n), 22.0, 90.0)
    birth_day = diag_day - np.round(age_dx * 365.25).astype(np.int64)
    histology = rng.choice(4, size=n, p=HISTOLOGY_P)
    pci = rng.binomial(39, rng.beta(3.0, 3.5, n))
    ki67 = np.clip(
        np.exp(rng.normal(np.log(12.0) + 0.3 * (histology == 1) + 0.6 * (histology == 2), 0.55)),
        1.0,
        95.0,
    ).round(1)
    bap1_lost = rng.random(n) < np.array([0.62, 0.40, 0.20, 0.45])[histology]
    fitness = rng.normal(0.0, 1.0, n)  # higher = frailer
    eta = (
        -0.1
        - 0.08 * (pci - 18)
        - 0.05 * (age_dx - 63)
        + 0.5 * (histology == 0)
        - 1.5 * (histology == 2)
        - 0.5 * fitness
    )
    crs = rng.random(n) < _expit(eta)
    hipec = crs & (rng.random(n) < 0.85)
    cc_score = np.digitize(0.09 * pci + rng.normal(0, 0.8, n), [1.9, 2.8, 3.5])
    cc = np.where(crs, cc_score, -1)
    exploratory = ~crs & (rng.random(n) < 0.15)  # laparoscopy without CRS
    surgery_day = diag_day + rng.integers(15, 90, size=n)
    return dict(
        n=n,
        centre=centre,
        female=female,
        diag_day=diag_day,
        birth_day=birth_day,
        age_dx=age_dx,
        histology=histology,
        pci=pci,
        ki67=ki67,
        bap1_lost=bap1_lost,
        fitness=fitness,
        surgery=crs | exploratory,
        crs=crs,
        hipec=hipec,
        cc=cc,
        surgery_day=surgery_day,
    )


def linear_predictor(c: Cohort, k: int, idx: np.ndarray, centre_lhr: np.ndarray) -> np.ndarray:
    """Standard-of-care log-hazard of line ``k`` (0-based) for patients ``idx``."""
    age = (c.start[idx, k] - c.birth_day[idx]) / 365.25
    lp = (
        BETA["age_per_year"] * (age - 63.0)
        + BETA["ecog_per_point"] * c.ecog[idx, k]
        + np.asarray(BETA["histology"])[c.histology[idx]]
        + BETA["pci_per_point"] * (c.pci[idx] - 18)
        + BETA["ki67_per_percent"] * (np.minimum(c.ki67[idx], 60.0) - 12.0)
        + BETA["bap1_lost"] * c.bap1_lost[idx]
        + BETA["female"] * c.female[idx]
        + BETA["fitness"] * c.fitness[idx]
        + centre_lhr[c.centre[idx]]
    )
    prior_crs = c.crs[idx] & (c.surgery_day[idx] < c.start[idx, k])
    lp = lp + BETA["prior_crs"] * prior_crs
    if k == 0:
        lp = lp + BETA["cc0"] * (prior_crs & (c.cc[idx] == 0))
        lp = lp + np.where(c.regimen[idx, 0] == PLAT_PEM, 0.0, 0.1)
    else:
        lp = lp + BETA["pfi_per_month"] * np.minimum(c.pfi_months[idx, k], 12.0)
        lp = lp + np.array([REGIMENS[r][1] for r in REGIMEN_CODES])[c.regimen[idx, k]]
        lp = lp + BETA["later_line"] * (k >= 2)
    return lp


def draw_ecog(rng, c: Cohort, k: int, idx: np.ndarray) -> np.ndarray:
    """True ECOG at the start of line ``k`` (0-4): fitness, line and age driven."""
    age = (c.start[idx, k] - c.birth_day[idx]) / 365.25
    noise = rng.normal(0, 0.45, len(idx))
    raw = 0.55 + 0.7 * c.fitness[idx] + 0.35 * k + 0.015 * (age - 63) + noise
    return np.clip(np.round(raw), 0, 4).astype(np.int64)


def choose_regimen(rng, c: Cohort, k: int, idx: np.ndarray) -> np.ndarray:
    """Regimen of line ``k`` given history (calendar era, prior IO, platinum-free interval)."""
    m = len(idx)
    year = 1970 + c.start[idx, k] / 365.25
    u = rng.random(m)
    if k == 0:
        io_era = year >= 2021.0
        reg = np.full(m, PLAT_PEM)
        reg[u < 0.04] = _R["platinum_gemcitabine"]
        reg[(u >= 0.04) & (u < 0.09)] = _R["platinum_pemetrexed_bevacizumab"]
        reg[io_era & (u >= 0.09) & (u < 0.34)] = _R["nivolumab_ipilimumab"]
        return reg
    prior = c.regimen[idx, :k]
    prior_io = IO_REGIMENS[np.where(prior >= 0, prior, 0)].any(axis=1) & (prior >= 0).any(axis=1)
    had_pp = (prior == PLAT_PEM).any(axis=1)
    pfi = c.pfi_months[idx, k]
    nivo_era = year >= 2016.0
    choices = np.array(
        [_R[r] for r in ("gemcitabine", "vinorelbine", "pemetrexed", "nivolumab",
                         "nivolumab_ipilimumab", "gemcitabine_ramucirumab", "doxorubicin")]
    )
    p = np.tile([0.34, 0.30, 0.14, 0.12, 0.04, 0.03, 0.03], (m, 1))
    p[~nivo_era, 3:5] = 0.0
    p[prior_io, 3:5] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    pick = choices[(u[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 6)]
    # platinum-sensitive relapse (PFI >= 6 months): rechallenge with platinum-pemetrexed
    rechallenge = had_pp & (pfi >= 6.0) & (rng.random(m) < 0.3)
    pick[rechallenge] = PLAT_PEM
    # no platinum-pemetrexed yet (first line IO or other): most get it now
    pick[~had_pp & (rng.random(m) < 0.75)] = PLAT_PEM
    return pick


def weibull_time(rng, lp: np.ndarray, k: int) -> np.ndarray:
    """Latent time (days, float) to progression or death under ``lp`` on line ``k``."""
    e = rng.exponential(1.0, len(lp))
    return SCALE_DAYS[k] * (e * np.exp(-lp)) ** (1.0 / SHAPE[k])


def weibull_survival(t_days, lp, k: int):
    """``S_k(t | lp)`` of the latent PFS, t in days."""
    return np.exp(-((np.asarray(t_days) / SCALE_DAYS[k]) ** SHAPE[k]) * np.exp(lp))


def p_death_first(c: Cohort, idx: np.ndarray, k: int) -> np.ndarray:
    """Probability that the latent PFS event is a death without progression."""
    return _expit(-2.5 + 0.5 * c.fitness[idx] + 0.2 * k)


def run_line(
    rng,
    c: Cohort,
    k: int,
    idx: np.ndarray,
    lp: np.ndarray,
    schedule,
    *,
    clinical_rate: float,
    p_next: np.ndarray | None,
) -> np.ndarray:
    """Simulate line ``k`` of patients ``idx`` (started, ECOG/regimen/lp set).

    Draws the latent PFS, generates the tumour assessments (``schedule(rng, c, pids)`` gives the
    nominal step to the next visit and the visit's jitter, in days), dates the detection of
    progression, ends the line, and either starts line k+1 (probability ``p_next``) or sets the
    death day. Returns the indices that start line k+1.
    """
    m = len(idx)
    start = c.start[idx, k]
    t_event = weibull_time(rng, lp, k)
    death_first = rng.random(m) < p_death_first(c, idx, k)
    event_day = start + np.ceil(t_event).astype(np.int64)
    horizon = c.horizon[idx]
    clinical = ~death_first & (rng.random(m) < clinical_rate)
    clin_day = event_day + rng.integers(0, 15, m)
    detect = np.full(m, NEVER, np.int64)  # day progression is recorded
    p_pr = 0.25 if k == 0 else 0.08
    nominal = np.zeros(m, np.int64)
    open_ = np.arange(m)
    while open_.size:
        step, jitter = schedule(rng, c, idx[open_])
        nominal[open_] += step
        nxt = start[open_] + nominal[open_] + jitter
        before_event = nxt < event_day[open_]
        # clinical progression noticed before the scheduled visit
        clin_now = clinical[open_] & ~before_event & (clin_day[open_] < nxt)
        rec_day = np.where(clin_now, clin_day[open_], nxt)
        rec_ok = (rec_day <= horizon[open_]) & (before_event | ~death_first[open_])
        resp = np.where(
            before_event,
            _draw_response(rng, open_.size, p_pr),
            np.where(clin_now, RESPONSES.index("NE"), RESPONSES.index("PD")),
        )
        sel = np.flatnonzero(rec_ok)
        c.a_patient.append(idx[open_[sel]])
        c.a_day.append(rec_day[sel])
        c.a_resp.append(resp[sel])
        c.a_clin.append(clin_now[sel])
        progressed = rec_ok & ~before_event
        detect[open_[progressed]] = rec_day[progressed]
        open_ = open_[before_event & (nxt <= horizon[open_])]
    death = np.where(death_first, event_day, NEVER)
    # end of the line
    planned = np.array([REGIMENS[r][2] for r in REGIMEN_CODES])[c.regimen[idx, k]]
    planned_end = np.where(planned > 0, start + planned, NEVER)
    stop = np.minimum(detect, death)
    tox = rng.random(m) < 0.12
    cap = np.minimum(np.minimum(planned_end, stop), start + 365)
    frac = rng.uniform(0.2, 0.9, m)
    tox_day = np.where(tox, start + 1 + (frac * (cap - start)).astype(np.int64), NEVER)
    end = np.minimum.reduce([planned_end, stop, tox_day])
    reason = np.select(
        [end == death, end == detect, end == tox_day, end == planned_end],
        [3, 1, 2, 0],
        default=-1,
    )
    c.end[idx, k] = end
    c.end_reason[idx, k] = reason
    # next line or death
    progressed = detect < NEVER
    go = progressed & (rng.random(m) < (p_next if p_next is not None else 0.0))
    if k + 1 >= MAX_LINES:
        go[:] = False
    nxt_idx = idx[go]
    if k + 1 < MAX_LINES:
        c.start[nxt_idx, k + 1] = detect[go] + rng.integers(10, 46, go.sum())
        c.pfi_months[nxt_idx, k + 1] = (c.start[nxt_idx, k + 1] - end[go]) / DAYS_PER_MONTH
        c.present[nxt_idx, k + 1] = True
    # post-progression survival without further therapy (median ~3.5 months)
    pps = np.ceil(rng.exponential(150.0, m) * np.exp(-0.4 * c.fitness[idx])).astype(np.int64) + 1
    stop_here = progressed & ~go
    death = np.where(stop_here, detect + pps, death)
    # unfinished (progression beyond the horizon): death unknown, after the horizon
    has_death = death < NEVER
    c.death_day[idx[has_death]] = death[has_death]
    return nxt_idx


def p_next_line(c: Cohort, idx: np.ndarray, k: int) -> np.ndarray:
    """Probability of starting line k+2 after progression on line k+1 (0-based k)."""
    age = (c.start[idx, k] - c.birth_day[idx]) / 365.25
    return _expit(1.2 - 0.8 * c.fitness[idx] - 0.04 * (age - 63) - 0.6 * k)


def _draw_response(rng, m: int, p_pr: float) -> np.ndarray:
    u = rng.random(m)
    return np.select(
        [u < 0.01, u < 0.01 + p_pr, u < 0.97],
        [RESPONSES.index("CR"), RESPONSES.index("PR"), RESPONSES.index("SD")],
        default=RESPONSES.index("NE"),
    )


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def simulate_cohort(
    rng: np.random.Generator,
    n: int,
    cfg,
    centre_p: np.ndarray,
    centre_lhr: np.ndarray,
    day_range: tuple[int, int],
    horizon,
    schedule,
    *,
    last_line: int = MAX_LINES,
) -> Cohort:
    """Histories of ``n`` patients diagnosed in ``day_range`` (day numbers, half-open).

    ``horizon`` is the last observed day (array, scalar, or a function of the diagnosis
    days). Lines 0..last_line-1 are run to their end; line ``last_line`` (if < MAX_LINES) is only
    *started*: regimen, ECOG and standard-of-care linear predictor set, outcome not drawn.
    """
    c = Cohort(**baseline(rng, n, centre_p, *day_range), horizon=np.zeros(n, np.int64))
    if callable(horizon):  # of the diagnosis day
        horizon = horizon(c.diag_day)
    c.horizon = np.broadcast_to(np.asarray(horizon, np.int64), (n,)).copy()
    age = c.age_dx
    untreated = rng.random(n) < _expit(-2.6 + 0.9 * c.fitness + 0.05 * (age - 63))
    first = np.where(
        c.crs, c.surgery_day + rng.integers(30, 76, n), c.diag_day + rng.integers(14, 61, n)
    )
    treated = np.flatnonzero(~untreated)
    c.present[treated, 0] = True
    c.start[treated, 0] = first[treated]
    bsc = np.flatnonzero(untreated)
    c.death_day[bsc] = c.diag_day[bsc] + 1 + np.ceil(
        rng.exponential(260.0, bsc.size) * np.exp(-0.4 * c.fitness[bsc])
    ).astype(np.int64)
    # no surgery for patients who die before its date (untreated, rapidly fatal disease)
    dead_first = c.death_day <= c.surgery_day
    for name in ("surgery", "crs", "hipec"):
        getattr(c, name)[dead_first] = False
    c.cc[dead_first] = -1
    for k in range(min(last_line + 1, MAX_LINES)):
        idx = np.flatnonzero(c.present[:, k] & (c.start[:, k] <= c.horizon))
        c.regimen[idx, k] = choose_regimen(rng, c, k, idx)
        c.ecog[idx, k] = draw_ecog(rng, c, k, idx)
        c.lp[idx, k] = linear_predictor(c, k, idx, centre_lhr)
        if k == last_line:
            break
        run_line(
            rng, c, k, idx, c.lp[idx, k], schedule,
            clinical_rate=cfg.clinical_progression_rate, p_next=p_next_line(c, idx, k),
        )
    return c


def assessments(c: Cohort) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(patient index, day, response index, clinical flag), sorted by patient and day."""
    if not c.a_patient:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, np.zeros(0, bool)
    pid = np.concatenate(c.a_patient)
    day = np.concatenate(c.a_day)
    resp = np.concatenate(c.a_resp)
    clin = np.concatenate(c.a_clin)
    order = np.lexsort((day, pid))
    return pid[order], day[order], resp[order], clin[order]
