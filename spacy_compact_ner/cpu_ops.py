"""Which library multiplies the student's matrices on CPU.

thinc's ``NumpyOps`` runs ``gemm`` through the ``blis`` package by default. On the 2-core AMD EPYC
machines of this project that was several times slower for the student's products than numpy's own
BLAS (OpenBLAS in the numpy wheels), and the products are the largest share of the student's time
(measured in docs/results.md, "Speed and size"). ``NumpyOps(use_blis=False)`` hands them to numpy
instead; every other operation, and every result, stays the same.
"""

from thinc.api import Model, NumpyOps, get_current_ops

CPU_GEMMS = ("numpy", "blis")


def use_cpu_gemm(model: Model, cpu_gemm: str) -> Model:
    """Give every node of ``model`` ops whose ``gemm`` runs on ``cpu_gemm`` ("numpy" or "blis").

    Only when the current ops are thinc's plain CPU ``NumpyOps``: GPU ops and other CPU backends
    (e.g. thinc-apple-ops) are left as they are. RETURNS (Model): The same model, changed in place.
    """
    if cpu_gemm not in CPU_GEMMS:
        raise ValueError(f"cpu_gemm must be one of {', '.join(map(repr, CPU_GEMMS))}, got {cpu_gemm!r}")
    current = get_current_ops()
    if type(current) is not NumpyOps:
        return model
    use_blis = cpu_gemm == "blis"
    ops = current if current.use_blis == use_blis else NumpyOps(use_blis=use_blis)
    for node in model.walk():
        node.ops = ops
    return model
