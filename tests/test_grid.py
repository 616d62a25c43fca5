"""The sweep grammar, job seeds and the chance verdict."""

import numpy as np
import pytest
from scipy import stats

from frnn_cli.config import Config
from frnn_cli.errors import BadInput
from frnn_cli.experiment.grid import expand, job_seed, parse_grid
from frnn_cli.experiment.verdict import chance_test, learned, max_T, min_correct_for_significance


def test_inclusive_range_and_lists():
    g = parse_grid(Config, ["T=1..20", "lr=1e-5,1e-4,0.3"])
    assert g["T"] == list(range(1, 21))
    assert g["lr"] == [1e-5, 1e-4, 0.3] and all(type(v) is float for v in g["lr"])
    assert parse_grid(Config, ["T=3..3"])["T"] == [3]
    assert parse_grid(Config, ["hidden=16"])["hidden"] == [16]


def test_yaml_grid_mapping():
    g = parse_grid(Config, {"T": "1..3", "lr": [0.1, 1], "optimizer": "adam"})
    assert g == {"T": [1, 2, 3], "lr": [0.1, 1.0], "optimizer": ["adam"]}


@pytest.mark.parametrize(
    "word, fragment",
    [
        ("T=5..1", "the range is empty"),
        ("T=0..3", "T: expected a value >= 1"),
        ("T=1.5..3", "needs two integers"),
        ("lr=", "has no value"),
        ("lr=0.1,,0.3", "empty item"),
        ("hiden=1..3", "did you mean 'hidden'"),
        ("T", "expected key=value"),
        ("lr=0.1,abc", "lr: expected a number"),
    ],
)
def test_bad_grids(word, fragment):
    with pytest.raises(BadInput, match=fragment):
        parse_grid(Config, [word])


def test_expand_is_the_cartesian_product_last_key_fastest():
    jobs = expand({"T": [1, 2], "lr": [0.1, 0.3, 1.0]})
    assert len(jobs) == 6
    assert jobs[:3] == [{"T": 1, "lr": 0.1}, {"T": 1, "lr": 0.3}, {"T": 1, "lr": 1.0}]
    assert expand({}) == [{}]


def test_job_seeds_are_stable_distinct_and_from_seedsequence():
    seeds = [job_seed(0, r) for r in range(5)]
    assert len(set(seeds)) == 5
    assert seeds == [job_seed(0, r) for r in range(5)]
    assert job_seed(1, 0) != job_seed(0, 0)
    expected = int(np.random.SeedSequence(entropy=0, spawn_key=(3,)).generate_state(1, dtype=np.uint32)[0])
    assert seeds[3] == expected


@pytest.mark.parametrize("n, alpha", [(2000, 0.01), (100, 0.05), (7, 0.01), (500, 0.001)])
def test_significance_threshold_is_the_smallest_k(n, alpha):
    k = min_correct_for_significance(n, alpha)
    # By definition: P(X >= k) < alpha <= P(X >= k - 1).
    assert stats.binom.sf(k - 1, n, 0.5) < alpha <= stats.binom.sf(k - 2, n, 0.5)


def test_chance_test_on_constructed_counts():
    # 1060 of 2000: z = (1060 - 1000) / sqrt(500) = 2.68, one-sided p ~ 0.0037 < 0.01.
    t = chance_test(1060, 2000, 0.01)
    assert t.better and t.p_value == pytest.approx(stats.norm.sf(59.5 / np.sqrt(500)), rel=0.05)
    # 1040 of 2000: z = 1.79, p ~ 0.037 > 0.01.
    assert not chance_test(1040, 2000, 0.01).better
    # Exactly at chance and below: never better.
    assert chance_test(1000, 2000, 0.01).p_value > 0.5
    assert chance_test(0, 10, 0.01).p_value == 1.0
    # All 10 of 10 correct: p = 2^-10.
    assert chance_test(10, 10, 0.01).p_value == pytest.approx(2.0**-10)
    with pytest.raises(ValueError):
        chance_test(11, 10, 0.01)


@pytest.mark.parametrize("n", [1, 2, 7, 256, 2000])
def test_chance_test_p_value_is_that_of_scipy_binomtest(n):
    for k in sorted({0, 1, n // 2, n // 2 + 1, (3 * n) // 4, n - 1, n} - {-1}):
        want = stats.binomtest(k, n, 0.5, alternative="greater").pvalue
        assert chance_test(k, n, 0.01).p_value == pytest.approx(want, rel=1e-9, abs=1e-300), (k, n)


def test_majority_and_max_T():
    assert learned([True, True, False]) and not learned([True, False, False])
    assert not learned([True, False])  # a tie is not a majority
    Ts = [1, 2, 3, 4, 5, 6]
    flags = [True, True, True, False, True, False]
    assert max_T(Ts, flags) == (5, 3)
    assert max_T(Ts, [False] * 6) == (None, None)
    assert max_T([3, 1, 2], [True, True, True]) == (3, 3)


def test_a_range_over_a_float_key_gives_floats():
    assert parse_grid(Config, ["lr=1..3"])["lr"] == [1.0, 2.0, 3.0]
    assert all(type(v) is float for v in parse_grid(Config, ["lr=1..3"])["lr"])
