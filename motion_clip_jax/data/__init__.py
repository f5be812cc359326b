"""Video data: records on disk (records, manifest), where a process reads (source), frame
sampling (sampling), clip transforms (transforms, device), the tf.data pipelines (pipeline),
few-shot draws (fewshot), the synthetic motion world (synthetic) and class names (classnames).

Nothing is imported here: TensorFlow loads only with the modules that need it.
"""
