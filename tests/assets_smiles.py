"""Test molecules the project ships: hand-picked tricky cases plus a deterministic combinatorial set."""

from __future__ import annotations

import itertools

TRICKY = [
    "C", "CC", "C=C", "C#C", "CC#N", "O=C=O", "N#N", "[H][H]", "O", "N", "CO", "CCO", "CC(=O)O", "CC(=O)[O-]",
    "[NH4+]", "[NH3+]CC([O-])=O", "C[N+](C)(C)C", "C[N+](=O)[O-]", "[O-][n+]1ccccc1", "c1ccccc1", "c1ccncc1",
    "c1cc[nH]c1", "c1ccoc1", "c1ccsc1", "c1ncc[nH]1", "c1cnc2[nH]cnc2c1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "O=c1cc[nH]c(=O)[nH]1", "Nc1ncnc2[nH]cnc12", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "CC(=O)Oc1ccccc1C(=O)O",
    "CN1CCC[C@H]1c1cccnc1", "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O", "FC(F)(F)c1ccccc1", "ClC(Cl)Cl",
    "BrCCBr", "IC", "CS(C)=O", "CS(=O)(=O)N", "OP(=O)(O)O", "COP(=O)(OC)OC", "C1CC1", "C1CCC1", "C1CCCCC1",
    "C1=CCC=C1", "c1ccc2ccccc2c1", "c1ccc2c(c1)ccc1ccccc12", "C1CC2CCC1C2", "O=C1NC(=O)C(=O)N1", "[O-]C(=O)C=C",
    "C=CC=O", "N=C=O", "C[S-]", "[Cl-]", "[Na+].[Cl-]", "CC[O-].[Na+]", "B(O)(O)O", "C[Si](C)(C)C", "[Se]=C=[Se]",
    "CC(=O)NC1=CC=C(O)C=C1", "CN1C=NC2=C1C(=O)N(C)C(=O)N2C", "O=S(=O)([O-])[O-]", "[OH-]", "[C-]#[O+]",
]

_RINGS = ["c1ccccc1", "c1ccncc1", "C1CCCCC1", "C1CCNCC1", "c1ccoc1", "c1ccsc1", "C1CC1", "c1cn[nH]c1"]
_SUBST = ["", "C", "O", "N", "F", "Cl", "OC(=O)", "N#C", "[O-][N+](=O)", "NC(=O)", "CO", "C=C", "NS(=O)(=O)",
          "FC(F)(F)", "[NH3+]", "[O-]C(=O)", "Br", "CC#C"]


def combinatorial(limit: int = 400) -> list[str]:
    """Deterministic list of substituted ring SMILES (ring x substituent x linker) that RDKit parses."""
    from rdkit import Chem

    out = []
    for ring, sub, link in itertools.product(_RINGS, _SUBST, ["", "C", "CC", "O", "N", "C(=O)"]):
        smi = f"{sub}{link}{ring}"
        if Chem.MolFromSmiles(smi) is not None:
            out.append(smi)
        if len(out) >= limit:
            break
    return list(dict.fromkeys(out))


def shipped_smiles() -> list[str]:
    return TRICKY + combinatorial()
