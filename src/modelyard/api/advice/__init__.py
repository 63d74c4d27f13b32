"""Advice: which model to run for a memory size and priority, whether one fits, and which
model a role picks."""
