"""Instructor infrastructure for autograding Backprop Lab with nbgrader, loaded by
nbgrader_config.py: a sandboxed kernel manager (sandbox.py), the code each sandboxed kernel
runs first (kernel_startup.py), and the preprocessors that use them (preprocessors.py).
docs/instructors.md says what this protects and what it does not."""
