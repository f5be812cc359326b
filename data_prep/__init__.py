"""Turning folders of videos into the project's tfds video datasets (`python -m data_prep.build_tfrecords`)."""
