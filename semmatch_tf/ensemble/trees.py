"""Fitted gradient-boosted trees evaluated inside the TF graph, so that a boosted stack exports.

scikit-learn's ``HistGradientBoostingRegressor`` fits the trees (it is fast, well tested and
chooses splits on binned features); TF Serving cannot call it, so :class:`GradientBoostedTrees`
copies every tree's nodes into arrays and walks all trees for all rows at once: at each depth,
each row's current node in each tree moves to its left or right child (``x[feature] <= threshold``,
as scikit-learn decides, in float64), leaves stay put; after the deepest level the leaf values are
summed with the baseline prediction. The result equals ``model.predict`` (a test checks it).
TensorFlow Decision Forests would do the same, but it has no build for TF 2.21.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="semmatch_tf")
class GradientBoostedTrees(keras.layers.Layer):
    """``[B, F]`` features -> ``[B, 1]`` the trees' prediction.

    Args:
        trees, nodes: the number of trees and the most nodes of one (arrays are padded to it).
        depth: the deepest leaf's depth (how many steps the walk takes).
        features: the width of the input.

    The node arrays are non-trainable weights set by :meth:`from_fitted`.

    Examples:
        >>> from sklearn.ensemble import HistGradientBoostingRegressor
        >>> rng = np.random.default_rng(0)
        >>> x = rng.uniform(size=(300, 3))
        >>> fitted = HistGradientBoostingRegressor(max_iter=20).fit(x, x[:, 0] * 2 + x[:, 1])
        >>> layer = GradientBoostedTrees.from_fitted(fitted)
        >>> bool(np.allclose(layer(x.astype("float32"))[:, 0], fitted.predict(x.astype("float32")), atol=1e-5))
        True
    """

    def __init__(self, trees: int, nodes: int, depth: int, features: int, **kwargs) -> None:
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.trees, self.nodes, self.depth, self.features = int(trees), int(nodes), int(depth), int(features)
        shape = (self.trees, self.nodes)
        self.feature = self.add_weight(shape=shape, dtype="int32", initializer="zeros", trainable=False,
                                       name="feature")
        self.threshold = self.add_weight(shape=shape, dtype="float64", initializer="zeros", trainable=False,
                                         name="threshold")
        self.left = self.add_weight(shape=shape, dtype="int32", initializer="zeros", trainable=False, name="left")
        self.right = self.add_weight(shape=shape, dtype="int32", initializer="zeros", trainable=False, name="right")
        self.value = self.add_weight(shape=shape, dtype="float64", initializer="zeros", trainable=False, name="value")
        self.baseline = self.add_weight(shape=(), dtype="float64", initializer="zeros", trainable=False,
                                        name="baseline")

    @classmethod
    def from_fitted(cls, model, **kwargs) -> "GradientBoostedTrees":
        """The layer of a fitted ``HistGradientBoostingRegressor`` (numeric features, no missing values)."""
        trees = [predictors[0].nodes for predictors in model._predictors]
        if any(t["is_categorical"].any() for t in trees):
            raise ValueError("categorical splits are not supported")
        width = max(len(t) for t in trees)
        arrays = {name: np.zeros((len(trees), width), dtype) for name, dtype in
                  (("feature", np.int32), ("threshold", np.float64), ("left", np.int32), ("right", np.int32),
                   ("value", np.float64))}
        for row, nodes in enumerate(trees):
            count, leaf = len(nodes), nodes["is_leaf"].astype(bool)
            itself = np.arange(count)
            arrays["feature"][row, :count] = nodes["feature_idx"]
            arrays["threshold"][row, :count] = nodes["num_threshold"]
            arrays["left"][row, :count] = np.where(leaf, itself, nodes["left"])  # a leaf points at itself
            arrays["right"][row, :count] = np.where(leaf, itself, nodes["right"])
            arrays["value"][row, :count] = np.where(leaf, nodes["value"], 0.0)
        layer = cls(len(trees), width, int(max(t["depth"].max() for t in trees)), model.n_features_in_, **kwargs)
        for name, values in arrays.items():
            getattr(layer, name).assign(values)
        layer.baseline.assign(float(np.ravel(model._baseline_prediction)[0]))
        return layer

    def build(self, input_shape=None) -> None:
        self.built = True

    def call(self, features) -> tf.Tensor:
        x = tf.cast(features, tf.float64)
        batch = tf.shape(x)[0]
        node = tf.zeros([self.trees, batch], tf.int32)  # [T, B]: each row's node in each tree
        for _ in range(self.depth):
            feature = tf.gather(self.feature, node, batch_dims=1)
            value = tf.gather(x, tf.transpose(feature), batch_dims=1)  # [B, T]
            go_left = tf.transpose(value) <= tf.gather(self.threshold, node, batch_dims=1)
            node = tf.where(go_left, tf.gather(self.left, node, batch_dims=1), tf.gather(self.right, node, batch_dims=1))
        leaves = tf.gather(self.value, node, batch_dims=1)
        return tf.cast(tf.reduce_sum(leaves, axis=0) + self.baseline, tf.float32)[:, None]

    def get_config(self) -> dict:
        return {**super().get_config(), "trees": self.trees, "nodes": self.nodes, "depth": self.depth,
                "features": self.features}
