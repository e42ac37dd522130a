"""Side-by-side benchmarks: neural-arch vs PyTorch (and NumPy-based peers where installed).

    python -m benchmarks                 # every suite
    python -m benchmarks overhead ops    # chosen suites
"""
