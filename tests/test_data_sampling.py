"""Segment sampling and stable orderings against independent references (exact arithmetic)."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
import tensorflow as tf

from motion_clip_jax.core import video_spec
from motion_clip_jax.data import sampling, shuffle


def _reference_random(num_frames: int, num_segments: int, offsets) -> list[int]:
    """The training rule in exact rationals: segment t owns the frames whose centre i + 1/2 lies in
    [t N / T, (t + 1) N / T); take frame first + floor(u * count); N < T: floor((t + u) N / T)."""
    n, big_t = num_frames, num_segments
    if n < big_t:
        return [min(int((t + u) * n // big_t), n - 1) for t, u in enumerate(offsets)]
    indices = []
    for t, u in enumerate(offsets):
        owned = [
            i
            for i in range(n)
            if fractions.Fraction(t * n, big_t)
            <= i + fractions.Fraction(1, 2)
            < fractions.Fraction((t + 1) * n, big_t)
        ]
        indices.append(owned[int(u * len(owned))])
    return indices


@pytest.mark.parametrize("num_segments", [1, 4, 8, 16])
def test_random_indices_match_exact_rule(num_segments):
    rng = np.random.default_rng(0)
    for num_frames in range(1, 60):
        # Offsets k/64 are exact in float64, so float and rational results must agree exactly.
        numerators = rng.integers(0, 64, size=num_segments)
        exact = [fractions.Fraction(int(k), 64) for k in numerators]
        expected = _reference_random(num_frames, num_segments, exact)
        np.testing.assert_array_equal(
            video_spec.random_indices(num_frames, numerators / 64), expected
        )


def test_segments_partition_the_frames():
    for num_frames in range(8, 120):
        starts = video_spec.segment_starts(num_frames, 8)
        assert starts[0] == 0 and starts[-1] == num_frames and np.all(np.diff(starts) >= 1)


def test_random_indices_distinct_and_every_frame_reachable():
    rng = np.random.default_rng(1)
    for num_frames in [8, 9, 15, 23, 100]:
        seen = set()
        for _ in range(400):
            indices = video_spec.random_indices(num_frames, rng.uniform(0, 1, 8))
            assert np.all(np.diff(indices) > 0)  # N >= T: distinct, in order
            seen.update(indices.tolist())
        assert seen == set(range(num_frames))


def test_centre_indices_are_tsn_test_indices():
    for num_frames in range(1, 80):
        tick = fractions.Fraction(num_frames, 8)
        tsn = [int(tick / 2 + tick * t) for t in range(8)]  # TSN / mmaction test-time formula
        np.testing.assert_array_equal(video_spec.centre_indices(num_frames, 8), tsn)


def test_short_clip_repeats_frames():
    np.testing.assert_array_equal(video_spec.centre_indices(3, 8), [0, 0, 0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(video_spec.random_indices(1, np.full(8, 0.999)), [0] * 8)
    np.testing.assert_array_equal(
        video_spec.random_indices(3, np.zeros(8)), [0, 0, 0, 1, 1, 1, 2, 2]
    )


def test_offsets_close_to_one_stay_in_range():
    for num_frames in [5, 7, 8, 9, 1000]:
        indices = video_spec.random_indices(num_frames, np.full(8, np.nextafter(1.0, 0.0)))
        assert indices.max() == num_frames - 1


@pytest.mark.parametrize("bad", [np.array([0.5, 1.0]), np.array([-0.1]), np.zeros((2, 2))])
def test_bad_offsets_raise(bad):
    with pytest.raises(ValueError, match="offsets"):
        video_spec.random_indices(10, bad)


def test_zero_frames_raise():
    with pytest.raises(ValueError, match="num_frames"):
        video_spec.random_indices(0, np.zeros(8))


def test_tf_indices_equal_numpy_reference():
    rng = np.random.default_rng(2)
    for num_frames in [1, 2, 3, 7, 8, 9, 31, 250, 1001]:
        for num_segments in [1, 8, 16]:
            offsets = rng.uniform(0, 1, num_segments)
            got = sampling.random_indices_tf(tf.constant(num_frames), tf.constant(offsets))
            np.testing.assert_array_equal(
                got.numpy(), video_spec.random_indices(num_frames, offsets)
            )
            got = sampling.centre_indices_tf(tf.constant(num_frames), num_segments)
            np.testing.assert_array_equal(
                got.numpy(), video_spec.centre_indices(num_frames, num_segments)
            )


def test_random_offsets_are_stateless_and_in_range():
    seed = tf.constant([3, 4], tf.int64)
    a = sampling.random_offsets_tf(8, seed).numpy()
    b = sampling.random_offsets_tf(8, seed).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float64 and np.all((a >= 0) & (a < 1))
    c = sampling.random_offsets_tf(8, tf.constant([3, 5], tf.int64)).numpy()
    assert not np.array_equal(a, c)


def _splitmix64_python(x: int) -> int:
    """SplitMix64 on Python ints, the reference for the vectorised NumPy version."""
    mask = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_splitmix64_matches_python_reference():
    values = [0, 1, 2, 12345, (1 << 63) + 17, (1 << 64) - 1]
    got = shuffle.splitmix64(np.array(values, dtype=np.uint64))
    assert [int(v) for v in got] == [_splitmix64_python(v) for v in values]
    # The published first outputs of SplitMix64 seeded with 0 (state advances by the golden gamma).
    gamma = 0x9E3779B97F4A7C15
    assert _splitmix64_python(0) == 0xE220A8397B1DCDAF
    assert _splitmix64_python(gamma) == 0x6E789E6AA1B965F4


def test_hash_keys_matches_python_reference():
    keys, values = (7, 3, 11), [0, 5, 99]
    state = 0
    for key in keys:
        state = _splitmix64_python(state ^ key)
    expected = [_splitmix64_python(v ^ state) for v in values]
    assert [int(v) for v in shuffle.hash_keys(keys, np.array(values))] == expected


def test_stable_permutation():
    perm = shuffle.stable_permutation(1000, (0, 1, 2))
    assert sorted(perm.tolist()) == list(range(1000))
    np.testing.assert_array_equal(perm, shuffle.stable_permutation(1000, (0, 1, 2)))
    assert not np.array_equal(perm, shuffle.stable_permutation(1000, (0, 1, 3)))
    assert not np.array_equal(perm, np.arange(1000))
    with pytest.raises(ValueError, match="keys"):
        shuffle.stable_permutation(10, (-1,))
