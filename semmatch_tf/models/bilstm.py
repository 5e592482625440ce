"""The seeds' matcher: shared embedding -> BiLSTM encoder -> [q, p, |q-p|, q*p] -> Dense -> head."""

from __future__ import annotations

import keras

from semmatch_tf.models.encoders import BiLSTMEncoder, ExactMatchFlags, InteractionFeatures
from semmatch_tf.models.heads import output_head


@keras.saving.register_keras_serializable(package="semmatch_tf")
class BiLSTMMatcher(keras.Model):
    """A (query, product) relevance model over token ids, built as a Keras functional model.

    Inputs: ``{"query": int32 [batch, Lq], "product": int32 [batch, Lp]}`` (id 0 = padding), and
    with ``match_features=F`` also ``"match_features": float32 [batch, F]`` (how the raw title covers
    the raw query: ``semmatch_tf.models.tfidf.MatchFeatures``), batch-normalised and read by the
    hidden layer beside the encoders' interaction features (a wide-and-deep head).
    Output: class probabilities ``[batch, num_classes]`` (``head="classification"``) or a grade in
    [0, 1] ``[batch, 1]`` (``head="regression"``). The encoder is shared by both sides (a siamese
    encoder), so a query word and the same word in a title have one embedding.
    """

    def __init__(self, vocabulary_size: int, *, num_classes: int = 3, head: str = "classification",
                 embedding_dim: int = 128, lstm_units: int = 128, hidden_units: int = 128,
                 pooling: str = "last", dropout: float = 0.2, embedding_dropout: float = 0.0,
                 exact_match: bool = True, query_length: int | None = None, product_length: int | None = None,
                 match_features: int = 0, **kwargs) -> None:
        query = keras.Input(shape=(query_length,), dtype="int32", name="query")
        product = keras.Input(shape=(product_length,), dtype="int32", name="product")
        encoder = BiLSTMEncoder(vocabulary_size, embedding_dim=embedding_dim, units=lstm_units,
                                pooling=pooling, embedding_dropout=embedding_dropout,
                                extra_features=1 if exact_match else 0, name="encoder")
        if exact_match:
            query_flags, product_flags = ExactMatchFlags(name="exact_match")(query, product)
            query_vector, product_vector = encoder(query, query_flags), encoder(product, product_flags)
        else:
            query_vector, product_vector = encoder(query), encoder(product)
        features = InteractionFeatures(name="interaction")(query_vector, product_vector)
        inputs = {"query": query, "product": product}
        if match_features:
            inputs["match_features"] = keras.Input(shape=(match_features,), dtype="float32", name="match_features")
            wide = keras.layers.BatchNormalization(name="match_features_norm")(inputs["match_features"])
            features = keras.layers.Concatenate(name="wide_and_deep")([features, wide])
        hidden = keras.layers.Dropout(dropout, name="features_dropout")(features)
        hidden = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(hidden)
        hidden = keras.layers.Dropout(dropout, name="hidden_dropout")(hidden)
        outputs = output_head(head, num_classes)(hidden)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self._config = dict(vocabulary_size=vocabulary_size, num_classes=num_classes, head=head,
                            embedding_dim=embedding_dim, lstm_units=lstm_units, hidden_units=hidden_units,
                            pooling=pooling, dropout=dropout, embedding_dropout=embedding_dropout,
                            exact_match=exact_match, query_length=query_length, product_length=product_length,
                            match_features=match_features)

    @property
    def head(self) -> str:
        return self._config["head"]

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, **self._config}

    @classmethod
    def from_config(cls, config: dict) -> "BiLSTMMatcher":
        return cls(**config)
