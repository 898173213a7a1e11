"""k-NN rank-1 and the gait protocols on embeddings placed so that every answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gaitrun.data.records import Sample
from gaitrun.errors import DataError
from gaitrun.evaluate.knn import distances, knn_rank1, normalise, pool_sequences, protocol_eval

# --- the protocol fixture -----------------------------------------------------------------
# Gallery: subjects A, B, C walking nm-01 in views 000 and 090; entry i is the unit vector e_i
# of a 6-d space, in the order below. A probe puts weight 3 on the entry it must match among
# the view-000 gallery and weight 2 on the one it must match among the view-090 gallery (0
# elsewhere): against one gallery view its nearest entry is the weighted one of that view;
# against the whole gallery it is the weight-3 (view 000) one.
GALLERY = [("A", "000"), ("B", "000"), ("C", "000"), ("A", "090"), ("B", "090"), ("C", "090")]
PROBES = [  # subject, walk, view, match among gallery 000, match among gallery 090
    ("A", "nm-05", "000", "A", "A"),
    ("B", "nm-05", "000", "B", "B"),
    ("C", "nm-05", "000", "C", "A"),  # nm 000 -> 000: 3/3, 000 -> 090: 2/3
    ("A", "nm-05", "090", "B", "A"),
    ("B", "nm-05", "090", "B", "B"),
    ("C", "nm-05", "090", "A", "C"),  # nm 090 -> 000: 1/3, 090 -> 090: 3/3
    ("A", "bg-01", "000", "A", "B"),
    ("B", "bg-01", "000", "C", "B"),
    ("C", "bg-01", "000", "A", "A"),  # bg 000 -> 000: 1/3, 000 -> 090: 1/3
    ("A", "bg-01", "090", "C", "A"),
    ("B", "bg-01", "090", "A", "B"),
    ("C", "bg-01", "090", "A", "A"),  # bg 090 -> 000: 0/3, 090 -> 090: 2/3
]


def _sample(subject: str, walk: str, view: str) -> Sample:
    return Sample(path=f"/data/{subject}/{walk}/{view}", label=subject, subject=subject,
                  condition=walk[:2], view=view, sequence=walk)


def protocol_fixture() -> tuple[np.ndarray, list[Sample], np.ndarray, np.ndarray]:
    emb = [np.eye(6)[i] for i in range(6)]
    samples = [_sample(s, "nm-01", v) for s, v in GALLERY]
    for subject, walk, view, match_000, match_090 in PROBES:
        w = np.zeros(6)
        w[GALLERY.index((match_000, "000"))] = 3
        w[GALLERY.index((match_090, "090"))] = 2
        emb.append(w)
        samples.append(_sample(subject, walk, view))
    return np.asarray(emb), samples, np.arange(6), np.arange(6, 18)


def test_casia_b_protocol_excludes_identical_views():
    emb, samples, gallery, probes = protocol_fixture()
    out = protocol_eval(emb, samples, gallery, probes, k=1, per="subsequence")
    # Identical views excluded: each probe view has one gallery view left.
    # nm: 000 -> 090 = 2/3, 090 -> 000 = 1/3; mean 1/2.  bg: 1/3 and 0; mean 1/6.
    assert out["rank1_per_view"]["nm"] == pytest.approx({"000": 2 / 3, "090": 1 / 3})
    assert out["rank1_per_view"]["bg"] == pytest.approx({"000": 1 / 3, "090": 0.0})
    assert out["rank1"] == pytest.approx({"nm": 1 / 2, "bg": 1 / 6})
    assert out["rank1_matrix"]["nm"] == [[None, pytest.approx(2 / 3)], [pytest.approx(1 / 3), None]]
    assert out["views"] == ["000", "090"] and out["conditions"] == ["nm", "bg"]
    assert out["probes"] == {"nm": 6, "bg": 6} and out["gallery"] == 6
    assert "rank1_sequence" not in out
    json.dumps(out, allow_nan=False)


def test_casia_b_protocol_with_identical_views_changes_the_answer():
    emb, samples, gallery, probes = protocol_fixture()
    out = protocol_eval(emb, samples, gallery, probes, k=1, exclude_identical_view=False, per="subsequence")
    # nm: 000 -> (3/3 + 2/3) / 2 = 5/6, 090 -> (1/3 + 3/3) / 2 = 2/3; mean 3/4.
    # bg: 000 -> (1/3 + 1/3) / 2 = 1/3, 090 -> (0 + 2/3) / 2 = 1/3; mean 1/3.
    assert out["rank1_per_view"]["nm"] == pytest.approx({"000": 5 / 6, "090": 2 / 3})
    assert out["rank1_per_view"]["bg"] == pytest.approx({"000": 1 / 3, "090": 1 / 3})
    assert out["rank1"] == pytest.approx({"nm": 3 / 4, "bg": 1 / 3})
    assert np.array(out["rank1_matrix"]["bg"]) == pytest.approx(np.array([[1 / 3, 1 / 3], [0.0, 2 / 3]]))


def test_tum_gaid_protocol_merges_views_and_none_merges_conditions():
    emb, samples, gallery, probes = protocol_fixture()
    # Against the whole gallery every probe matches its weight-3 (view 000) entry:
    # nm: A000 B000 C000 B090 right, A090 C090 wrong -> 4/6; bg: only A000 right -> 1/6.
    tum = protocol_eval(emb, samples, gallery, probes, protocol="tum_gaid", per="subsequence")
    assert tum["rank1"] == pytest.approx({"nm": 4 / 6, "bg": 1 / 6})
    assert "views" not in tum and "rank1_matrix" not in tum and tum["exclude_identical_view"] is False
    plain = protocol_eval(emb, samples, gallery, probes, protocol="none", per="subsequence")
    assert plain["rank1"] == pytest.approx({"all": 5 / 12})


def test_a_probe_view_without_gallery_views_left_is_null():
    emb, samples, gallery, probes = protocol_fixture()
    only_000 = [i for i in gallery if samples[i].view == "000"]
    out = protocol_eval(emb, samples, only_000, probes, per="subsequence")
    # Probes of view 000 have no other gallery view: null. View 090 vs 000: nm 1/3, bg 0.
    assert out["rank1_per_view"]["nm"] == {"000": None, "090": pytest.approx(1 / 3)}
    assert out["rank1"] == pytest.approx({"nm": 1 / 3, "bg": 0.0})


def test_casia_b_needs_views():
    emb, samples, gallery, probes = protocol_fixture()
    samples[7] = Sample(path="/data/no-view", label="B", condition="nm", sequence="nm-05")
    with pytest.raises(DataError, match="no view") as info:
        protocol_eval(emb, samples, gallery, probes)
    assert info.value.path == "/data/no-view"


def test_a_probe_in_the_gallery_is_refused():
    emb, samples, gallery, probes = protocol_fixture()
    with pytest.raises(ValueError, match="share rows"):
        protocol_eval(emb, samples, gallery, np.append(probes, 0))


# --- per sequence -------------------------------------------------------------------------
# Gallery A, B, C = e0, e1, e2 of a 4-d space; a probe window s * e_X + sqrt(1 - s^2) * e3
# predicts X, nearer the larger s.
def _window(target: int, s: float) -> np.ndarray:
    v = np.zeros(4)
    v[target], v[3] = s, np.sqrt(1 - s * s)
    return v


def test_majority_vote_per_sequence():
    a, b, c = 0, 1, 2
    gallery = [Sample(path=f"/g/{x}", label=x, condition="normal", sequence="1") for x in "ABC"]
    s1 = Sample(path="/p/1", label="A", condition="normal", sequence="2")
    s2 = Sample(path="/p/2", label="B", condition="normal", sequence="3")
    s3 = Sample(path="/p/3", label="A", condition="normal", sequence="4")
    windows = [(s1, _window(a, .9)), (s1, _window(a, .8)), (s1, _window(b, .7)),  # A A B: vote A, right
               (s2, _window(a, .9)), (s2, _window(a, .8)), (s2, _window(b, .7)),  # A A B: vote A, wrong
               (s3, _window(c, .5)), (s3, _window(a, .9))]  # C A: a tie, won by A (nearer): right
    emb = np.vstack([np.eye(4)[:3], [w for _, w in windows]])
    samples = gallery + [s for s, _ in windows]
    out = protocol_eval(emb, samples, [0, 1, 2], np.arange(3, 11), protocol="tum_gaid", per="both")
    assert out["rank1"] == pytest.approx({"normal": 4 / 8})  # windows right: 2 + 1 + 1
    assert out["rank1_sequence"] == pytest.approx({"normal": 2 / 3})
    assert out["probe_sequences"] == {"normal": 3}
    # Explicit ids say the same; per="sequence" reports only the voted figure.
    ids = ["g1", "g2", "g3"] + [7, 7, 7, 8, 8, 8, 9, 9]
    seq = protocol_eval(emb, samples, [0, 1, 2], np.arange(3, 11), protocol="tum_gaid", per="sequence",
                        sequence_ids=ids)
    assert seq["rank1_sequence"] == pytest.approx({"normal": 2 / 3}) and "rank1" not in seq


# --- k-NN voting --------------------------------------------------------------------------
def _on_circle(degrees: list[float]) -> np.ndarray:
    rad = np.radians(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


@pytest.mark.parametrize("k, expected", [
    (1, "B"),  # nearest: B
    (2, "B"),  # B, A: a tie, won by the nearest (B)
    (3, "B"),  # B, A, C: a three-way tie, B nearest
    (4, "A"),  # B, A, C, A: A has two votes
    (5, "A"),  # B, A, C, A, C: A and C tie with two, A's entry is nearer
    (50, "A"),  # k beyond the gallery: every entry votes
])
def test_knn_majority_vote_with_ties_to_the_nearest(k, expected):
    gallery = _on_circle([10, 20, 30, 40, 50])  # the probe sits at 0 degrees
    labels = ["B", "A", "C", "A", "C"]
    for metric in ("euclidean", "cosine"):
        accuracy, predicted = knn_rank1(gallery, labels, _on_circle([0]), [expected], k=k, metric=metric)
        assert predicted.tolist() == [expected] and accuracy == 1.0


def test_strips_are_normalised_one_by_one_before_flattening():
    # Two strips of 2-d features. Strip 1 of the probe is large and leans to A (cosine 0.8 vs
    # 0.6), strip 2 is tiny and points at B (cosine 1 vs 0). Per-strip normalisation sums the
    # cosines: A 0.8, B 1.6 -> B. Flattening the raw features would let strip 1 win: A.
    gallery = np.array([[[1, 0], [0, 1]],   # A
                        [[0, 1], [1, 0]]])  # B
    probe = np.array([[[8.0, 6.0], [0.01, 0.0]]])
    flat = normalise(probe)
    assert flat.shape == (1, 4)
    assert np.linalg.norm(flat.reshape(2, 2), axis=1) == pytest.approx([1, 1])
    for metric in ("euclidean", "cosine"):
        accuracy, predicted = knn_rank1(gallery, ["A", "B"], probe, ["B"], k=1, metric=metric)
        assert predicted.tolist() == ["B"] and accuracy == 1.0
    raw = probe.reshape(1, -1) @ gallery.reshape(2, -1).T  # the unnormalised comparison
    assert raw.argmax() == 0


def test_the_full_casia_b_grid():
    # 20 subjects x 11 views x 10 walks (gallery nm-01..04), 64-d: 3 conditions x 11 x 10 view pairs.
    rng = np.random.default_rng(0)
    views = [f"{18 * v:03d}" for v in range(11)]
    walks = ["nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02"]
    samples = [_sample(f"{s:03d}", w, v) for s in range(20) for w in walks for v in views]
    identity = rng.normal(size=(20, 64))[np.repeat(np.arange(20), len(walks) * len(views))]
    emb = identity + rng.normal(scale=0.5, size=identity.shape)
    gallery = [i for i, s in enumerate(samples) if s.sequence in walks[:4]]
    probes = [i for i, s in enumerate(samples) if s.sequence not in walks[:4]]
    out = protocol_eval(emb, samples, gallery, probes, k=1, per="both")
    assert out["views"] == views and out["conditions"] == ["nm", "bg", "cl"]
    assert out["probes"] == {"nm": 440, "bg": 440, "cl": 440}
    matrix = np.array(out["rank1_matrix"]["cl"], dtype=float)  # None -> nan
    assert matrix.shape == (11, 11) and np.isnan(np.diag(matrix)).all() and np.isfinite(matrix).sum() == 110
    assert all(v > 0.9 for v in out["rank1"].values())


@pytest.mark.parametrize("option, message", [({"per": "video"}, "per must be"),
                                             ({"protocol": "oulp"}, "protocol must be"),
                                             ({"metric": "manhattan"}, "metric must be"),
                                             ({"k": 0}, "k must be at least 1")])
def test_bad_options_are_refused(option, message):
    emb, samples, gallery, probes = protocol_fixture()
    with pytest.raises(ValueError, match=message):
        protocol_eval(emb, samples, gallery, probes, **option)


# --- exact distances ----------------------------------------------------------------------
def _float32_expansion(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """The old distance: sqrt(|p|^2 + |g|^2 - 2 p.g) in float32."""
    p, g = probe.astype(np.float32), gallery.astype(np.float32)
    d2 = np.einsum("ij,ij->i", p, p)[:, None] + np.einsum("ij,ij->i", g, g)[None, :] - 2 * (p @ g.T)
    return np.sqrt(np.maximum(d2, 0))


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_near_tie_is_ranked_by_the_exact_distance():
    # Two gallery entries about 1e-3 from the probe, 1.7e-6 apart: the float32 expansion loses
    # the digits that decide (it even puts the farther one first); float64 keeps them.
    rng = np.random.default_rng(3)
    probe = _unit(rng.normal(size=64))
    near = _unit(probe + 1e-3 * _unit(rng.normal(size=64)))
    far = _unit(probe + 1.0005e-3 * _unit(rng.normal(size=64)))
    gallery = np.stack([near, far])
    exact = np.sqrt(((probe.astype(np.float64) - gallery.astype(np.float64)) ** 2).sum(-1))
    assert exact[0] < exact[1] and exact[1] - exact[0] < 2e-6
    assert _float32_expansion(probe[None], gallery)[0].argmin() == 1  # the old way gets it wrong
    ours = distances(normalise(probe[None]), normalise(gallery), "euclidean")[0]
    assert ours == pytest.approx(exact, rel=1e-6)
    assert ours.argmin() == 0
    accuracy, predicted = knn_rank1(gallery, ["near", "far"], probe[None], ["near"])
    assert predicted.tolist() == ["near"] and accuracy == 1.0


def test_distances_are_float64_from_float16_input():
    a = np.array([[1.0, 0.0]], dtype=np.float16)
    b = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float16)
    for metric in ("euclidean", "cosine"):
        d = distances(a, b, metric)
        assert d.dtype == np.float64
    assert distances(a, b, "euclidean")[0] == pytest.approx([np.sqrt(2), 0.0])


# --- one embedding per sequence -----------------------------------------------------------
def test_pool_sequences_averages_normalised_windows_per_owner():
    # Owner 7: windows (3, 0) and (0, 1) -> normalised (1, 0), (0, 1) -> mean (.5, .5) -> unit.
    # Owner 2: one window (0, -5) -> (0, -1). Owners come back sorted.
    windows = np.array([[3.0, 0.0], [0.0, -5.0], [0.0, 1.0]])
    pooled, owners = pool_sequences(windows, np.array([7, 2, 7]))
    assert owners.tolist() == [2, 7]
    assert pooled == pytest.approx(np.array([[0.0, -1.0], [np.sqrt(.5), np.sqrt(.5)]]))


def test_pool_sequences_keeps_strips_separate():
    # (N, strips, D): each strip is normalised, averaged and normalised on its own.
    windows = np.array([[[2.0, 0.0], [0.0, 9.0]], [[0.0, 2.0], [0.0, 1.0]]])
    pooled, _ = pool_sequences(windows, np.array([0, 0]))
    assert pooled.shape == (1, 4)
    assert pooled[0] == pytest.approx([np.sqrt(.5), np.sqrt(.5), 0.0, 1.0])
