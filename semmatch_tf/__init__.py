"""semmatch-tf: Keras/TensorFlow semantic matching for e-commerce search."""

__version__ = "0.1.0"
