"""The benchmark suites of ``graphdiff bench``: what each trains, samples and scores, as data.

A suite is a list of entries; an entry is a preset (with the overrides that make it fit a CPU budget), the sampling
step counts it is scored at, how many samples, the evaluation protocol, and the published table it is printed
beside (a name in :mod:`graphdiff.bench.references`). ``speed`` entries time training and sampling instead of
scoring quality. Expected times are wall-clock minutes on 2 CPU cores at the default budget (measured here, see
``benchmarks/results/<suite>-cpu/``), including data preparation on a first run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..checks import check_choice
from ..config import merge

# small networks that train at all on two CPU cores, by model name (the presets' own sizes are for a GPU);
# the committed CPU rows were trained with these
CPU_MODELS = {"graph_transformer": {"n_layers": 4, "hidden_x": 64, "hidden_e": 32, "hidden_y": 32, "n_heads": 4,
                                    "ff_x": 128, "ff_e": 64, "ff_y": 64},
              "ppgn_transformer": {"n_layers": 3, "hidden": 64, "n_heads": 4}}
CPU_BATCH = {"qm9": 256, "zinc250k": 64, "moses": 64, "planar": 16, "sbm": 8, "tree": 16, "lggm": 16}

# tiny networks of the smoke suite: every process trains for seconds
TINY_MODELS = {
    "gdss": {"x_net": {"type": "gcn", "depth": 1, "nhid": 8},
             "adj_net": {"nhid": 8, "num_layers": 2, "adim": 8, "c_hid": 4, "c_final": 2}},
    "graph_transformer": {"n_layers": 1, "hidden_x": 16, "hidden_e": 8, "hidden_y": 8, "n_heads": 2, "ff_x": 16,
                          "ff_e": 8, "ff_y": 8},
    "ppgn_transformer": {"n_layers": 1, "hidden": 16, "n_heads": 2},
}


@dataclass(frozen=True)
class Entry:
    """One preset of a suite.

    Attributes:
        preset: the preset trained (or the preset of the ``--model`` checkpoint).
        steps: sampling step counts the samples are scored at (``None``: the preset's ``sample.steps``).
        samples: samples per step count (``None``: the test split's size for graphs, 1,000 molecules).
        protocol: graph MMD conventions (``gdss`` or ``spectre``); molecules use the molecule protocol.
        reference: the published table printed beside (``suite/dataset`` of the references).
        cpu: overrides applied on a CPU (the small network and batch the committed CPU rows used).
        overrides: overrides applied everywhere.
        dataset: train on this dataset instead of the preset's.
        minutes: default training budget of this entry.
        sample_batch: graphs per sampling batch (``None``: the pipeline's default; small batches of similar sizes
            pad less on mixed-size graphs).
        held_out: the domain left out of pre-training (``lggm`` suites, :mod:`graphdiff.bench.lggm`); also the
            entry's name there.
        imported: the authors' released weights, converted by ``graphdiff import-checkpoint``: scored only with
            ``--model`` (the converted folder), skipped otherwise; ``preset`` names the architecture only.
        label: the entry's name when not its preset's (``--only LABEL``, the run folder under ``--model``).
    """

    preset: str
    steps: tuple[int, ...] | None = None
    samples: int | None = None
    protocol: str = "gdss"
    reference: str | None = None
    cpu: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    dataset: str | None = None
    minutes: float = 12.0
    sample_batch: int | None = None
    held_out: str | None = None
    imported: bool = False
    label: str | None = None

    @property
    def name(self) -> str:
        if self.held_out is not None:
            return self.held_out
        if self.label is not None:
            return self.label
        return self.preset if self.dataset is None else f"{self.preset}@{self.dataset}"


@dataclass(frozen=True)
class Suite:
    """A named list of entries with what the suite measures and its expected CPU time."""

    name: str
    description: str
    entries: tuple[Entry, ...]
    expected_minutes: float
    kind: str = "quality"  # or a kind with its own loop (graphdiff.cli_bench.OWN_LOOPS), "speed", "threads"
    datasets: tuple[str, ...] = ()  # raw files to place with --raw-from


def _cpu(model: str, dataset: str) -> dict:
    return {"model": dict(CPU_MODELS[model]), "train": {"batch_size": CPU_BATCH.get(dataset, 64)}}


def _tiny(model_key: str, extra: dict | None = None) -> dict:
    out = {"model": dict(TINY_MODELS[model_key]), "train": {"batch_size": 16, "log_every": 5, "ckpt_every": 0,
                                                             "val_every": 0}}
    for k, v in (extra or {}).items():
        out[k] = {**out.get(k, {}), **v}
    return out


_GDSS_STEPS = {"grid": (100,), "enzymes": (500,)}  # the paper's 1000 would take hours at 125-361 nodes on a CPU

SUITES: dict[str, Suite] = {}


def _add(suite: Suite) -> None:
    SUITES[suite.name] = suite


_add(Suite(
    "graphs-gdss",
    "GDSS on the GDSS generic-graph sets (community-small, ego-small, ENZYMES, grid): train each preset, sample as "
    "many graphs as the test split, MMD^2 of degree / clustering / orbit (GDSS protocol) beside the GDSS paper",
    tuple(Entry(f"gdss-{d}", steps=_GDSS_STEPS.get(d), protocol="gdss", reference=f"gdss_graphs/{d}", minutes=10,
                sample_batch=16)
          for d in ("community_small", "ego_small", "enzymes", "grid")),
    expected_minutes=4 * 10 + 25, datasets=("community_small", "ego_small", "enzymes", "grid")))

_add(Suite(
    "graphs-spectre",
    "DeFoG on the SPECTRE sets (planar, SBM) and trees, and PARD on planar and SBM: train (small CPU networks), "
    "sample as many graphs as the test split (DeFoG 100 steps, PARD 10 per block), V.U.N. and MMD^2 of degree / "
    "clustering / orbit / spectral (SPECTRE protocol) beside DiGress and DeFoG",
    tuple(Entry(f"defog-{d}", steps=(100,), protocol="spectre", reference=ref, cpu=_cpu("graph_transformer", d),
                minutes=10, sample_batch=16)
          for d, ref in (("planar", "spectre_graphs/planar"), ("sbm", "spectre_graphs/sbm"), ("tree", None)))
    + (Entry("pard-planar", steps=(10,), protocol="spectre", reference="spectre_graphs/planar",
             cpu=_cpu("ppgn_transformer", "planar"), sample_batch=16),
       Entry("pard-sbm", steps=(10,), protocol="spectre", reference="spectre_graphs/sbm",
             cpu=merge(_cpu("ppgn_transformer", "sbm"), {"model": {"gradient_checkpointing": True}}),
             sample_batch=10)),
    expected_minutes=3 * 10 + 30 + 2 * 12 + 20, datasets=("planar", "sbm")))

_QM9 = (
    Entry("gdss-qm9", steps=(1000,), reference="molecules/qm9"),
    Entry("gdss-qm9", steps=(1000,), reference="molecules/qm9", imported=True, label="gdss-imported"),
    Entry("digress-qm9", steps=(50, 500), reference="molecules/qm9", cpu=_cpu("graph_transformer", "qm9")),
    Entry("defog-qm9", steps=(50, 500), reference="molecules/qm9", cpu=_cpu("graph_transformer", "qm9")),
    Entry("pard-qm9", steps=(25,), reference="molecules/qm9", cpu={**_cpu("ppgn_transformer", "qm9"),
                                                                   "train": {"batch_size": 64}}),
)
_add(Suite(
    "qm9",
    "The four process families on QM9 (implicit H, kekulized) at the same training budget: 1,000 molecules per "
    "step count, strict validity, uniqueness, novelty, FCD, NSPDK against the test split, beside the papers; with "
    "--model, the GDSS authors' checkpoint converted by `graphdiff import-checkpoint` (gdss-imported)",
    _QM9, expected_minutes=4 * 12 + 15, datasets=("qm9",)))

_add(Suite(
    "zinc250k",
    "GDSS, DeFoG and PARD on ZINC250k: 1,000 molecules (PARD 100), strict validity, uniqueness, novelty, FCD, "
    "NSPDK against the GDSS test split, beside the papers",
    (Entry("gdss-zinc250k", steps=(1000,), reference="molecules/zinc250k"),
     Entry("defog-zinc250k", steps=(50,), reference="molecules/zinc250k", cpu=_cpu("graph_transformer", "zinc250k")),
     Entry("pard-zinc250k", steps=(25,), samples=100, reference="molecules/zinc250k",
           cpu=_cpu("ppgn_transformer", "zinc250k"))),
    expected_minutes=3 * 12 + 40, datasets=("zinc250k",)))

_add(Suite(
    "moses",
    "DiGress, DeFoG and PARD on MOSES (from the molsets wheel or the download): 1,000 molecules, validity, "
    "uniqueness, novelty, filters, FCD, SNN, Frag, Scaf, IntDiv against the test split, beside the MOSES table",
    (Entry("digress-moses", steps=(50,), reference="molecules/moses", cpu=_cpu("graph_transformer", "moses")),
     Entry("defog-moses", steps=(50,), reference="molecules/moses", cpu=_cpu("graph_transformer", "moses")),
     Entry("pard-moses", steps=(25,), reference="molecules/moses", cpu=_cpu("ppgn_transformer", "moses"))),
    expected_minutes=3 * 12 + 25, datasets=("moses",)))

_add(Suite(
    "qm9_3d",
    "3D molecules on QM9 with explicit H and coordinates: EQGAT-diff with the EQGAT-class network and with the e3nn "
    "tensor-product network at the same training wall clock, and the few-step flow (SemlaFlow class); 1,000 "
    "molecules per step count, atom and molecule stability (legacy MiDi table and the GEOM-Drugs-Revisited rule, "
    "side by side), RDKit validity, connectivity, uniqueness, novelty, bond-length / angle / torsion W1 against the "
    "test split, beside MiDi, EQGAT-diff and SemlaFlow",
    (Entry("eqgat_diff-qm9_3d", steps=(50, 500), samples=1000, reference="molecules_3d/qm9_explicit_h", minutes=15,
           sample_batch=250),
     Entry("eqgat_diff-e3nn-qm9_3d", steps=(50, 500), samples=1000, reference="molecules_3d/qm9_explicit_h",
           minutes=15, sample_batch=250),
     Entry("semlaflow-qm9_3d", steps=(20, 50), samples=1000, reference="molecules_3d/qm9_explicit_h", minutes=15,
           sample_batch=250)),
    expected_minutes=3 * 15 + 30, datasets=("qm9_3d",)))

_add(Suite(
    "timeseries",
    "Probabilistic forecasting of nine series shipped in the pmdarima / statsmodels wheels (taylor half-hourly, "
    "wineind, airpassengers, sunspots, elec_equip, co2 monthly, ausbeer, woolyrnq quarterly, msft business-daily) "
    "on the cards' rolling test windows: "
    "seasonal naive, statsmodels ETS and ARIMA, and one unconditional edm-tsdiff model per series forecasting by "
    "TSDiff self-guidance (scale chosen on validation windows), beside its dilated 1-D CNN baseline of equal "
    "parameters and training minutes (edm-tsdiff_cnn; --set cnn=false leaves it out); CRPS (properscoring), mean wQL "
    "and MASE per series; --set pooled=true forecasts the monthly series with one model of their pool "
    "(edm-tsdiff-monthly); --set diffusion=false gives the baseline rows only (about 4 min)",
    tuple(Entry(f"edm-tsdiff-{d}", label=d, minutes=5) for d in (
        "taylor", "wineind", "airpassengers", "sunspots", "msft", "elec_equip", "co2", "ausbeer", "woolyrnq")),
    expected_minutes=9 * 2 * 5 + 30, kind="timeseries"))

_add(Suite(
    "speed",
    "Training graphs/s and sampling graphs/s of every process on QM9 (small CPU networks, batch 64, 8 timed "
    "training steps after 2 untimed, 64 samples at the preset's step count) in one run, with ratios to GDSS",
    (Entry("gdss-qm9", steps=(100,), samples=64, overrides={"train": {"batch_size": 64}}),
     Entry("digress-qm9", steps=(100,), samples=64, cpu=_cpu("graph_transformer", "qm9"),
           overrides={"train": {"batch_size": 64}}),
     Entry("defog-qm9", steps=(100,), samples=64, cpu=_cpu("graph_transformer", "qm9"),
           overrides={"train": {"batch_size": 64}}),
     Entry("pard-qm9", steps=(25,), samples=64, cpu=_cpu("ppgn_transformer", "qm9"),
           overrides={"train": {"batch_size": 64}})),
    expected_minutes=8, kind="speed", datasets=("qm9",)))

_add(Suite(
    "threads",
    "Training steps/s of gdss-demo and defog-qm9 (small CPU network) with 1 and 2 torch threads, on a quiet machine "
    "and beside one competing CPU-bound process; the measurements behind the train.threads default",
    (Entry("gdss-demo", overrides={"train": {"batch_size": 32}}),
     Entry("defog-qm9", cpu=_cpu("graph_transformer", "qm9"), overrides={"train": {"batch_size": 64}})),
    expected_minutes=6, kind="threads", datasets=("qm9",)))

_add(Suite(
    "lggm",
    "LGGM leave-one-domain-out on the multi-domain corpus (generated families + the standard files): for each "
    "held-out domain (planar, SBM, ENZYMES, ego-small) pre-train DiGress (small CPU network, conditioned on the "
    "domain) on the other 14 domains (8 min by default, --minutes), then fine-tune it on 10 and on 50 train graphs "
    "of the held-out domain (300 steps by default) against the same preset trained from scratch on the same graphs "
    "for as many steps, and the "
    "pre-trained model zero-shot; SPECTRE MMD^2 (degree, clustering, orbit, spectral) with bootstrap intervals and "
    "V.U.N. where defined, 50 sampling steps, the test graphs' node counts",
    tuple(Entry("digress-lggm", steps=(50,), protocol="spectre", cpu=_cpu("graph_transformer", "lggm"), minutes=8,
                sample_batch=16, held_out=d) for d in ("planar", "sbm", "enzymes", "ego_small")),
    # per held-out domain: 8 min pre-training, then 4 x 300 steps and 5 samplings (SBM about 90 min of it, ego-small
    # a few): extrapolated from timed steps and samples on a loaded machine, see graphdiff.bench.lggm
    expected_minutes=180, kind="lggm",
    datasets=("community_small", "ego_small", "grid", "planar", "sbm", "enzymes", "qm9", "zinc250k")))

_add(Suite(
    "guidance",
    "QED maximisation with the bundled molecule models at matched budgets: pretrained, best-of-10, SVDD-PM (M = 10), "
    "noise search (K = 2, M = 5) and regressor guidance (a QED regressor trained on the model's noisy states for "
    "--minutes); 512 molecules per method at the model's 50 steps; validity, uniqueness, novelty, median and "
    "top-10% QED, one-fragment share, internal diversity, network / reward / regressor calls per molecule",
    (Entry("defog-qm9", steps=(50,), samples=512),),
    # 512 molecules x (1 + 10 + ~11 + ~11 + 1) x 50 network calls at ~90 mol/s, and the regressor's 10 minutes
    expected_minutes=30, kind="guidance", datasets=("qm9",)))

_add(Suite(
    "minority",
    "Minority guidance with the bundled QM9 model: a regressor of the model's own minority score trained on its "
    "noisy states for --minutes, then 512 molecules from the pretrained sampler and at guidance scales 1 / 3 / 10 "
    "(50 steps) beside 512 test molecules; validity, uniqueness, novelty, the share in the training set's "
    "lowest-density decile (k-NN Tanimoto distance of Morgan fingerprints), the model's own minority score, "
    "network and regressor calls per molecule",
    (Entry("defog-qm9", steps=(50,), samples=512),),
    # 10 minutes of regressor training, the density reference (~1 min) and 4 x 512 molecules at 50 steps with
    # minority scores of each (the guided rows ~2 min each on 2 cores)
    expected_minutes=22, kind="minority", datasets=("qm9",)))

_add(Suite(
    "targeting",
    "Property targeting on QM9-3D's DFT properties (mu, HOMO) with the bundled QM9 model: a regressor of each "
    "property trained on the model's noisy states for --minutes, then 512 molecules unconditionally and guided "
    "toward the 10th and 90th percentiles (scale 5, 50 steps); validity, uniqueness and the mean absolute error "
    "to the target of an independent oracle (gradient boosting on Morgan counts and RDKit descriptors, its "
    "held-out error reported), network and regressor calls per molecule",
    (Entry("defog-qm9", steps=(50,), samples=512),),
    # the property CSV and the oracles (~3 min), 2 x 5 min of regressors, 1 + 4 samplings of 512 molecules
    # (guided: ~2-3 min each on 2 cores)
    expected_minutes=30, kind="targeting", datasets=("qm9_3d",)))

_add(Suite(
    "fairness",
    "FAROS attribute switching on attributed SBM graphs (synth_sbm_attr: 20-40 nodes, a group attribute that the "
    "edges depend on): DiGress and DeFoG trained for --minutes, 64 graphs per method at 25 steps, unguided against "
    "faros at switch times 0.5 / 0.9 / 1.0; dyadic parity gap, edge rates, group balance, degree and "
    "clustering MMD against the test graphs, network calls per graph",
    tuple(Entry(f"{p}-community_small", label=p, steps=(25,), samples=64, dataset="synth_sbm_attr", minutes=5,
                cpu={"model": {**CPU_MODELS["graph_transformer"], "n_layers": 2}, "train": {"batch_size": 32}})
          for p in ("digress", "defog")),
    # 2 x 5 min of training and 2 x 4 x 64 graphs at 25 steps (DiGress: 30-70 s per method at load average 6)
    expected_minutes=17, kind="fairness"))

_add(Suite(
    "smoke",
    "The four 2D graph processes (GDSS, DiGress, DeFoG, PARD) end to end on tiny data in about two minutes (no "
    "download): train a tiny network for 20 s on generated community graphs, sample 16 graphs, score them (GDSS "
    "protocol); what CI runs",
    (Entry("gdss-demo", steps=(20,), samples=16, overrides=_tiny("gdss"), minutes=1 / 3),
     Entry("digress-community_small", steps=(20,), samples=16, dataset="synth_community_small",
           overrides=_tiny("graph_transformer", {"model": {"extra_features": []}}), minutes=1 / 3),
     Entry("defog-community_small", steps=(20,), samples=16, dataset="synth_community_small",
           overrides=_tiny("graph_transformer", {"model": {"extra_features": []}}), minutes=1 / 3),
     Entry("pard-community_small", steps=(5,), samples=16, dataset="synth_community_small",
           overrides=_tiny("ppgn_transformer"), minutes=1 / 3)),
    expected_minutes=2.5))

_add(Suite(
    "kernels",
    "The fused kernels (graph transformer edge-conditioned attention; gather-weight-scatter of the 3D networks) "
    "against the torch reference, torch.compile of it, SDPA / FlexAttention (attention) and PyG scatter (scatter): "
    "forward and forward+backward time, memory, output difference, bandwidth on a GPU; per size N; Triton on CUDA "
    "only (settings with --set 'sizes=[...]' --set batch=... --set 'dtypes=[...]'); end_to_end: DeFoG / DiGress "
    "training graphs/s on SBM with and without the kernels (GPU; CPU reference when named with --only)",
    # kernels suites: an entry names a kernel, not a preset; end_to_end trains whole denoisers (GPU; CPU when named)
    (Entry("edge_attention"), Entry("message_scatter"), Entry("end_to_end")),
    expected_minutes=3, kind="kernels"))


_add(Suite(
    "images",
    "8x8 digits (scikit-learn) on the grid graph: the grid message-passing denoiser against a CNN of equal parameters "
    "and equal training time (EDM, Heun 18 steps), PFGM++ D = 128 and 2048 against EDM at equal steps, TSDiff "
    "self-guided inpainting of the bottom half against mean imputation, class accuracy of a class-conditional model; "
    "Frechet distance in the feature space of a classifier trained on the train split",
    tuple(Entry(preset, label=label, minutes=1.0) for label, preset in (
        ("grid-edm", "edm-digits"), ("cnn-edm", "edm-digits_cnn"), ("grid-pfgm-D128", "pfgm-digits"),
        ("grid-pfgm-D2048", "pfgm-digits"), ("grid-edm-cond", "edm-digits_cond"))),
    # 5 x 1 min of training, sampling 179 digits per model and the inpainting runs: 16.2 min at load average 8-9
    expected_minutes=16, kind="images"))


def get_suite(name: str) -> Suite:
    return SUITES[check_choice(name, SUITES, "bench suite")]


__all__ = ["Entry", "Suite", "SUITES", "get_suite", "CPU_MODELS", "CPU_BATCH", "TINY_MODELS"]
