"""Condition transfer at fine-tuning (graphdiff.condition_transfer): a condition value the base never trained on
starts from the trained value with the lowest loss on the data; nothing changes where the data's own value is
already lowest, where the data has several values, or where the network does not say where it reads conditions."""

import copy

import pytest
import torch

from graphdiff import GraphDiffusionPipeline
from graphdiff.condition_transfer import condition_losses, transfer_conditions
from graphdiff.data import load_dataset


@pytest.fixture(scope="module")
def base():
    return GraphDiffusionPipeline.from_pretrained("lggm-base")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    ds = load_dataset("lggm", root=tmp_path_factory.mktemp("trees"), domains=["tree"], per_domain=12,
                      download=False)
    return ds.split("train")


def test_an_untrained_column_starts_from_the_value_that_explains_the_data_best(base, trees):
    net = copy.deepcopy(base.denoiser)
    linear, first = net.condition_input()
    names = base.schema.extra["conditions"]["categorical"]["domain"]
    tree = names.index("tree")
    with torch.no_grad():  # the tree column as a held-out domain's: random, never trained
        linear.weight[:, first + tree] = torch.randn(linear.weight.shape[0], generator=torch.Generator().manual_seed(0))
    before = linear.weight.detach().clone()
    net.train()
    records = transfer_conditions(base.process, net, trees, base.schema, graphs=8, batch_size=4, repeats=1)
    assert len(records) == 1 and records[0]["group"] == "domain" and records[0]["value"] == "tree"
    losses = records[0]["losses"]
    source = min(losses, key=losses.get)
    assert source != "tree" and records[0]["from"] == source and losses["tree"] > losses[source]
    assert records[0]["z"] > 3.0 and records[0]["threshold"] == 3.0  # far beyond the noise of the paired comparison
    after = linear.weight.detach()
    # only the tree column changed, to the source's column
    assert torch.equal(after[:, first + tree], before[:, first + names.index(source)])
    others = [c for c in range(after.shape[1]) if c != first + tree]
    assert torch.equal(after[:, others], before[:, others])
    # now the tree condition is the source's: the same losses (paired noise); a second pass copies nothing, nor
    # does one on the bundled base itself, whose tree column was trained
    batches = [trees.batch(list(range(4)))]
    again = condition_losses(base.process, net, batches, 0, len(names), repeats=1)
    assert again[tree] == pytest.approx(again[names.index(source)], rel=1e-6)
    for model in (net, copy.deepcopy(base.denoiser)):
        assert transfer_conditions(base.process, model, trees, base.schema, graphs=8, batch_size=4,
                                   repeats=1)[0]["from"] is None
    assert base.process.cond_drop == 0.1 and net.training  # the process and the network's mode as they were


def test_data_with_several_values_or_a_network_without_a_condition_input_is_left_alone(base, tmp_path):
    two = load_dataset("lggm", root=tmp_path, domains=["tree", "lobster"], per_domain=4, download=False).split("train")
    net = copy.deepcopy(base.denoiser)
    before = [p.detach().clone() for p in net.parameters()]
    assert transfer_conditions(base.process, net, two, base.schema, graphs=8, batch_size=4, repeats=1) == []
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))

    class NoConditionInput(torch.nn.Module):
        pass

    assert transfer_conditions(base.process, NoConditionInput(), two, base.schema) == []


def test_finetune_records_the_transfer_in_the_lineage(base, tmp_path):
    data = load_dataset("lggm", root=tmp_path / "d", domains=["tree"], per_domain=12, download=False)
    ft = base.finetune(data, out=tmp_path / "ft", max_steps=1, progress=False,
                       overrides={"train": {"batch_size": 4},
                                  "finetune": {"condition_transfer": True, "warmup_steps": 0}})
    rec = ft.config.finetune.lineage[-1]["condition_transfer"]
    assert rec[0]["group"] == "domain" and rec[0]["value"] == "tree" and set(rec[0]["losses"]) == set(
        base.schema.extra["conditions"]["categorical"]["domain"])
    # the base trained on trees: its own column stays, and the fine-tune started from the base's weights
    assert rec[0]["from"] is None and rec[0]["z"] is not None and rec[0]["z"] < 3.0
    from graphdiff.finetune import _recorded_transfer

    assert _recorded_transfer(tmp_path / "ft") == rec  # what a resume of this fine-tune carries over
    assert _recorded_transfer(tmp_path / "nothing") == []
