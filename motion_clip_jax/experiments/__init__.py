"""Drivers that run several trainings and summarise them (few-shot draws, zero-shot splits)."""
