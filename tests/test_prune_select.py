"""Which filters the percentile pruner keeps, on hand-made kernels (expected sets worked by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from gaitrun.prune.select import filter_norms, kept_count, normalise_norms, select_filters


def kernel_with_l1(norms: list[float]) -> np.ndarray:
    """A (1, 2, n) kernel whose filter j has L1 norm norms[j] (half positive, half negative)."""
    half = np.asarray(norms, dtype=np.float64) / 2
    return np.stack([half, -half])[None]


# L1 norms: "a" = [1, 2, 3, 4], "b" = [10, 0.5, 20, 5]
KERNELS = {"a": kernel_with_l1([1, 2, 3, 4]), "b": kernel_with_l1([10, 0.5, 20, 5])}


def kept(selection, name: str) -> list[int]:
    return selection.keep[name].tolist()


def test_filter_norms_l1_and_l2_over_every_axis_but_the_last():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 4))
    assert np.allclose(filter_norms(kernel, "l1"), np.abs(kernel).sum(axis=(0, 1, 2)))
    assert np.allclose(filter_norms(kernel, "l2"), np.sqrt((kernel ** 2).sum(axis=(0, 1, 2))))
    assert np.allclose(filter_norms(KERNELS["b"], "l1"), [10, 0.5, 20, 5])


@pytest.mark.parametrize("scope", ["global", "per_layer"])
@pytest.mark.parametrize("normalise", ["none", "max", "l2"])
def test_percentile_zero_removes_nothing(scope, normalise):
    kernels = {**KERNELS, "ties": kernel_with_l1([2, 2, 2])}
    sel = select_filters(kernels, percentile=0, scope=scope, normalise=normalise)
    for name, kernel in kernels.items():
        assert kept(sel, name) == list(range(kernel.shape[-1]))


def test_global_threshold_is_the_percentile_of_all_filters():
    # all eight norms sorted: 0.5 1 2 3 | 4 5 10 20 -> median 3.5
    sel = select_filters(KERNELS, percentile=50, scope="global")
    assert sel.global_threshold == pytest.approx(3.5)
    assert sel.thresholds == {"a": pytest.approx(3.5), "b": pytest.approx(3.5)}
    assert kept(sel, "a") == [3]
    assert kept(sel, "b") == [0, 2, 3]


def test_per_layer_thresholds_are_each_layers_percentile():
    # a: median of 1 2 3 4 = 2.5; b: median of 0.5 5 10 20 = 7.5
    sel = select_filters(KERNELS, percentile=50, scope="per_layer")
    assert sel.global_threshold is None
    assert sel.thresholds == {"a": pytest.approx(2.5), "b": pytest.approx(7.5)}
    assert kept(sel, "a") == [2, 3]
    assert kept(sel, "b") == [0, 2]


def test_filters_equal_to_the_threshold_stay():
    sel = select_filters({"c": kernel_with_l1([1, 2, 3])}, percentile=50, scope="global")
    assert sel.global_threshold == pytest.approx(2.0)
    assert kept(sel, "c") == [1, 2]


def test_normalise_max_divides_by_each_layers_largest_norm():
    # a: .25 .5 .75 1; b: .5 .025 1 .25 -> all sorted .025 .25 .25 .5 | .5 .75 1 1 -> median .5
    assert np.allclose(normalise_norms(np.array([10, 0.5, 20, 5.0]), "max"), [0.5, 0.025, 1, 0.25])
    sel = select_filters(KERNELS, percentile=50, normalise="max")
    assert sel.global_threshold == pytest.approx(0.5)
    assert kept(sel, "a") == [1, 2, 3]
    assert kept(sel, "b") == [0, 2]


def test_normalise_l2_divides_by_each_layers_norm_of_norms():
    # a / sqrt(30): .183 .365 .548 .730; b / sqrt(525.25): .436 .022 .873 .218
    # sorted: .022 .183 .218 .365 | .436 .548 .730 .873 -> median (.365 + .436) / 2
    expected = (2 / np.sqrt(30) + 10 / np.sqrt(525.25)) / 2
    sel = select_filters(KERNELS, percentile=50, normalise="l2")
    assert sel.global_threshold == pytest.approx(expected)
    assert kept(sel, "a") == [2, 3]
    assert kept(sel, "b") == [0, 2]


def test_l1_and_l2_rank_filters_differently():
    kernel = np.array([[1.0, 3.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # L1 4, 3; L2 2, 3
    assert kept(select_filters({"e": kernel}, percentile=50, criterion="l1"), "e") == [0]
    assert kept(select_filters({"e": kernel}, percentile=50, criterion="l2"), "e") == [1]


def test_min_filters_keeps_the_strongest_filters():
    # p90 per layer: a keeps only 4 (threshold 3.7), b only 20 (threshold 17); at least 2 each
    sel = select_filters(KERNELS, percentile=90, scope="per_layer", min_filters=2)
    assert kept(sel, "a") == [2, 3]
    assert kept(sel, "b") == [0, 2]
    assert kept(select_filters(KERNELS, percentile=90, scope="per_layer", min_filters=9), "a") == [0, 1, 2, 3]


def test_granularity_rounds_kept_counts_up_but_not_above_the_layer():
    ten, six = kernel_with_l1(list(range(1, 11))), kernel_with_l1(list(range(1, 7)))
    # ten: threshold 5.5 keeps 6..10 (5 filters) -> 8: norms 3..10; six: 3.5 keeps 3 -> 4
    sel = select_filters({"ten": ten, "six": six}, percentile=50, scope="per_layer", granularity=4)
    assert kept(sel, "ten") == list(range(2, 10))
    assert kept(sel, "six") == [2, 3, 4, 5]
    sel = select_filters({"six": six}, percentile=50, scope="per_layer", granularity=8)
    assert kept(sel, "six") == list(range(6))


def test_kept_count_rules():
    assert kept_count(0, 10, min_filters=1, granularity=1) == 1
    assert kept_count(5, 10, min_filters=1, granularity=4) == 8
    assert kept_count(9, 10, min_filters=1, granularity=4) == 10
    assert kept_count(2, 3, min_filters=8, granularity=1) == 3


def test_excluded_layers_are_never_pruned_nor_counted():
    sel = select_filters(KERNELS, percentile=50, exclude=["b"])
    assert "b" not in sel.keep and "b" not in sel.thresholds
    assert sel.global_threshold == pytest.approx(2.5)  # median of a's norms only
    assert kept(sel, "a") == [2, 3]


def test_a_protected_embedding_layer_is_never_pruned_nor_counted():
    # the architecture declares its embedding; the prune core passes it on as excluded
    kernels = {**KERNELS, "embedding": kernel_with_l1([0.01] * 6)}
    sel = select_filters(kernels, percentile=50, exclude={"embedding"})
    assert "embedding" not in sel.keep
    assert sel.global_threshold == pytest.approx(3.5)


def test_a_group_keeps_a_channel_any_member_keeps():
    # global threshold 3.5: a keeps 3; b keeps 0, 2, 3 -> both keep 0, 2, 3
    sel = select_filters(KERNELS, percentile=50, groups=[("a", "b")])
    assert kept(sel, "a") == kept(sel, "b") == [0, 2, 3]
    assert "a" not in select_filters(KERNELS, percentile=50, groups=[("a", "b")], exclude=["b"]).keep


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="percentile"):
        select_filters(KERNELS, percentile=100)
    with pytest.raises(ValueError, match="different filter counts"):
        select_filters({**KERNELS, "c": kernel_with_l1([1, 2])}, percentile=10, groups=[("a", "c")])


# --- fine-tune settings ----------------------------------------------------------------

def _recipe(tmp_path, prune: str, train: str = "train: {epochs: 23, optimizer: {name: sgd, lr: 0.02}}"):
    from conftest import BASE_RECIPE

    from gaitrun.recipe import load_recipe

    text = BASE_RECIPE.replace("train:\n  optimizer: {name: adam, lr: 0.001}\n  batch_size: 32\n  epochs: 2\n", "")
    path = tmp_path / "r.yaml"
    path.write_text(text + train + "\n" + prune + "\n")
    return load_recipe(path).recipe


def test_finetune_defaults_rewind_the_training_lr_over_two_fifths_of_its_epochs(tmp_path):
    recipe = _recipe(tmp_path, "prune: {percentile: 40}")
    assert recipe.prune.finetune_plan(recipe.train) == {
        "epochs": 9, "lr": 0.02, "schedule": "cosine", "optimizer": "sgd", "fresh_head": False,
        "recalibrate_bn": 20}
    recipe = _recipe(tmp_path, "prune: {percentile: 40, finetune: {epochs: 0, lr: 0.001, schedule: constant, "
                               "optimizer: adam, recalibrate_bn: 0}}", train="train: {epochs: 2}")
    assert recipe.prune.finetune_plan(recipe.train) == {
        "epochs": 0, "lr": 0.001, "schedule": "constant", "optimizer": "adam", "fresh_head": False,
        "recalibrate_bn": 0}
    recipe = _recipe(tmp_path, "prune: {percentile: 40}", train="train: {epochs: 1}")
    assert recipe.prune.finetune_plan(recipe.train)["epochs"] == 1  # at least one


def test_finetune_cosine_schedule_starts_at_the_lr_and_decays_towards_zero():
    from gaitrun.train.setup import finetune_schedule

    (callback,) = finetune_schedule("cosine", 0.01, 4)
    rates = [callback.schedule(epoch, None) for epoch in range(4)]
    assert rates[0] == pytest.approx(0.01) and rates[2] == pytest.approx(0.005)
    assert all(a > b > 0 for a, b in zip(rates, rates[1:], strict=False))
    assert finetune_schedule("constant", 0.01, 4) == []


def test_nearest_rounding_keeps_whole_blocks_near_the_percentile():
    # 60 % of 32, 64 and 128 filters survive a 40th percentile: 19.2, 38.4 and 76.8 kept filters
    assert [kept_count(k, n, min_filters=1, granularity=16, rounding="nearest")
            for k, n in ((19, 32), (38, 64), (77, 128))] == [16, 32, 80]
    assert kept_count(3, 32, min_filters=1, granularity=16, rounding="nearest") == 16  # at least one block
    assert kept_count(30, 32, min_filters=1, granularity=16, rounding="nearest") == 32
    assert kept_count(19, 32, min_filters=1, granularity=16) == 32  # "up" would undo the pruning


def test_nearest_rounding_drops_the_lowest_scoring_kept_filters():
    scores = np.arange(1.0, 33.0)  # filter i has norm i + 1
    kernel = np.broadcast_to(scores, (3, 3, 4, 32)) / 36
    sel = select_filters({"conv": kernel}, percentile=40, scope="per_layer", granularity=16, rounding="nearest")
    np.testing.assert_array_equal(sel.keep["conv"], np.arange(16, 32))  # the 16 largest norms
