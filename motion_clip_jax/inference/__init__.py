"""Using a trained run: reading its workdir (`run`, no JAX), restoring the model (`restore`),
reading video files as test views (`video`, NumPy + PyAV), the command-line half both predict
commands share (`cli`), and the JAX predict command (`predict`)."""
