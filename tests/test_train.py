"""The training helpers that make fits cheaper without changing them (afetler_tf.training)."""

import gc

import numpy as np
import tensorflow as tf

from afetler_tf import training


def _rows_pipeline(features, labels, batch_size, seed):
    """The pipeline make_dataset replaced: slice, shuffle and batch the rows themselves."""
    ds = tf.data.Dataset.from_tensor_slices((dict(features), labels))
    return ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True).batch(batch_size)


def test_make_dataset_gives_the_batches_of_shuffling_the_rows():
    features = {"user_id": np.array([f"ü{i}" for i in range(11)], object),
                "history": np.array([[f"h{i}", ""] for i in range(11)], object),
                "age": np.arange(11, dtype=np.float32)}
    labels = np.arange(11, dtype=np.float32) * 2
    ours = training.make_dataset(features, labels, 4, shuffle=True, seed=7)
    theirs = _rows_pipeline(features, labels, 4, seed=7)
    for _ in range(2):  # two epochs: reshuffled alike
        got, expected = list(ours), list(theirs)
        assert [len(b[1]) for b in got] == [4, 4, 3]
        for (f, y), (f2, y2) in zip(got, expected):
            np.testing.assert_array_equal(y.numpy(), y2.numpy())
            for key in features:
                np.testing.assert_array_equal(f[key].numpy(), f2[key].numpy())
    plain = list(training.make_dataset(features, None, 5))
    np.testing.assert_array_equal(plain[0]["age"].numpy(), [0, 1, 2, 3, 4])
    assert plain[2]["user_id"].numpy()[0].decode() == "ü10"


def test_make_dataset_is_not_autotuned():
    """An autotuned pipeline's iterator, when dropped, waits for the tuning
    thread's current sleep (seconds late in a fit, after every epoch's
    iterator); the in-memory pipeline has nothing to tune."""
    ds = training.make_dataset({"x": np.arange(10, dtype=np.float32)}, None, 4, shuffle=True)
    assert ds.options().autotune.enabled is False
    assert [len(b["x"]) for b in ds] == [4, 4, 2]


def test_compiled_traces_once_for_any_batch_size_and_length():
    traces = []

    def fn(features):
        traces.append(1)
        total = tf.reduce_sum(tf.cast(tf.strings.length(features["ids"]), tf.float32), -1)
        return total + features["x"] if "x" in features else total
    compiled = training.Compiled(fn)
    first = compiled({"ids": np.array([["ab", "c"], ["", "d"], ["e", "f"]], object),
                      "x": np.zeros(3, np.float32)})
    second = compiled({"ids": np.array([["abc"]] * 5, object), "x": np.ones(5, np.float32)})
    np.testing.assert_array_equal(first.numpy(), [3, 1, 2])
    np.testing.assert_array_equal(second.numpy(), [4] * 5)
    assert len(traces) == 1
    compiled({"ids": np.array([["a"]], object)})  # other keys: a trace of their own
    assert len(traces) == 2


def test_with_autograph_converts_a_layer_called_from_plain_tracing():
    def needs_autograph(x):
        if len(tf.shape(x)) == 2:  # a tensor in a Python condition: AutoGraph's job
            return x * 2.0
        return x

    @tf.function
    @tf.autograph.experimental.do_not_convert
    def plain(x):
        return training.with_autograph(needs_autograph)(x)
    np.testing.assert_allclose(plain(tf.ones((2, 3))).numpy(), np.full((2, 3), 2.0))


def test_the_collector_skips_what_exists_only_inside_the_block():
    before = gc.get_freeze_count()
    with training.collector_skips_what_exists():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == 0


def test_each_training_stage_traces_its_step_once(tiny_data, tiny_split):
    """The network is built before the first step and each stage's optimizer
    slots are created before its first step: a first call that creates
    variables would be traced twice."""
    from afetler_tf.config import Config
    from afetler_tf.models import build_model
    model = build_model(Config().replace(train={"epochs": 2, "batch_size": 64}, gan={"epochs": 1}))
    model.fit(tiny_data, tiny_split, verbose=0, skip_stages=("ranking", "gan", "taste", "rating_blend"))
    assert model.network.train_function.experimental_get_tracing_count() == 1  # joint
    model = build_model(Config().replace(train={"epochs": 2, "batch_size": 64}, gan={"epochs": 1}))
    model.fit(tiny_data, tiny_split, verbose=0)
    assert model.network.train_function.experimental_get_tracing_count() == 1  # ranking
    assert model.gan.train_function.experimental_get_tracing_count() == 1


def test_optimizer_slots_made_before_the_first_step_change_nothing():
    """The same two steps with the slots created before the first and inside it."""
    def fitted(early: bool):
        tf.keras.utils.set_random_seed(0)
        model = tf.keras.Sequential([tf.keras.layers.Embedding(10, 3), tf.keras.layers.Dense(1)])
        model.compile(optimizer=tf.keras.optimizers.Adam(0.1), loss="mse")
        model.build((None,))
        if early:
            before = len(model.optimizer.variables)
            training.create_optimizer_slots(model)
            assert len(model.optimizer.variables) == before + 2 * len(model.trainable_variables)  # m, v
        model.fit(np.array([1, 2, 3, 4]), np.array([1.0, 0.0, 1.0, 0.5]), batch_size=2, epochs=1,
                  shuffle=False, verbose=0)
        return [w.numpy() for w in model.weights]
    for early, late in zip(fitted(True), fitted(False)):
        np.testing.assert_array_equal(early, late)
