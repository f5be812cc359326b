"""The trained model in PyTorch: the pure-PyTorch model (`model`, no JAX / Flax / TensorFlow),
exporting a trained JAX run to it (`export`), and predicting with an exported file (`predict`)."""
