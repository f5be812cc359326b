"""Flax models: the frozen CLIP core and the motion-prompt video model."""
