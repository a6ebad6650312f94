"""setuptools needs this file only to build the cffi extensions (corral.executor._syscalls,
corral.executor._seccomp)."""
from setuptools import setup

setup(
    cffi_modules=[
        "corral/executor/_build_syscalls.py:ffibuilder",
        "corral/executor/_build_seccomp.py:ffibuilder",
    ]
)
