"""Test double of cuda-python (package ``cuda``): see ``cuda.bindings.runtime``.

Only for tests, which put ``tests/fakes`` first on ``sys.path``. It has no GPU behind it.
"""
