"""Flush subnormals to zero inside the kernels (x86 MXCSR FTZ/DAZ bits).

A damped lattice decays towards rest through subnormal numbers (|x| < 1.2e-38 in float32), and
x86 cores take a micro-code assist on every subnormal operand or result: the kernels then run
2-3x slower for as long as the decaying tail lasts (measured in ``benchmarks/``). The kernels set
flush-to-zero and denormals-are-zero on entry and restore the caller's MXCSR on exit, in every
thread that runs them, so numpy code in the same process keeps IEEE subnormals.

The effect on results is below the smallest normal number (1.2e-38 in float32, 2.2e-308 in
float64). On other architectures both functions do nothing.
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
FTZ_DAZ = 0x8040  # MXCSR bit 15 (flush to zero) | bit 6 (denormals are zero)


def _mxcsr_call(builder, name, ptr):
    i8p = ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i8p])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(ptr, i8p)])


@intrinsic
def flush_subnormals(typingctx):
    """Set FTZ/DAZ in this thread's MXCSR; return the previous MXCSR (0 off x86)."""

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not IS_X86:
            return ir.Constant(i32, 0)
        ptr = cgutils.alloca_once(builder, i32)
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", ptr)
        old = builder.load(ptr)
        builder.store(builder.or_(old, ir.Constant(i32, FTZ_DAZ)), ptr)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
        return old

    return types.uint32(), codegen


@intrinsic
def restore_fpenv(typingctx, old):
    """Restore an MXCSR value returned by :func:`flush_subnormals`."""

    def codegen(context, builder, signature, args):
        if IS_X86:
            ptr = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], ptr)
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", ptr)
        return context.get_dummy_value()

    return types.void(types.uint32), codegen
