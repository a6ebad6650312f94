"""setuptools needs this file only to build the cffi extension (corral.executor._syscalls)."""
from setuptools import setup

setup(cffi_modules=["corral/executor/_build_syscalls.py:ffibuilder"])
