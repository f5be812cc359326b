"""Video data: records on disk (records, manifest), where a process reads (source), frame
sampling (sampling), clip transforms (transforms), the tf.data pipelines (pipeline),
few-shot draws (few_shot_draw), and decoding video files with PyAV (video_file). The synthetic motion
world is `motion_clip_jax.synthetic`; the sampling formulas themselves are `motion_clip_jax.core`.

Nothing is imported here: TensorFlow loads only with the modules that need it.
"""
