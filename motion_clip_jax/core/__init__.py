"""The framework-free core: facts every side of the project imports (NumPy and stdlib only).

  model_spec   the video model's fields, variants, switches, validation, `motion_pairs`
  clip_spec    `CLIPConfig` and the released CLIP architectures by name
  video        CLIP mean/std, segment sampling, test views and crops, normalisation
  tokenizer    CLIP's BPE tokenizer (ftfy + regex)
  class_prompts  the token rows of the K class prompts
  classnames   the vendored class-name lists of HMDB-51, UCF-101 and Kinetics-400

The Flax model, the tf.data pipeline, the pure-PyTorch model and predict all read these; none of
them keeps a copy.
"""
