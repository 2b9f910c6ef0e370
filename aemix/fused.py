"""The fused backend: one compiled C loop over chains and steps.

When the one-chain RMH step and the per-draw record (the latents in their own space and the discrete
variables drawn from their conditionals) lower to scalar graphs (`aemix.scalarize`), aemix writes them
as two `aesara.scalar.Composite` blocks inside a `COp` whose C code runs every step of every chain:

- the chains are taken in tiles (`tile_count`: at most `TILE` chains each, and at least
  `MIN_TILES` tiles when there are chains enough, so that a few hundred chains still keep every
  core busy); a tile's state is held in structure-of-arrays form (unit stride over its chains), so
  it stays in cache for all the steps of the call, and the time per chain-step does not depend on
  the number of chains;
- at each step, the tile's random numbers are drawn in one go from a NumPy ``BitGenerator`` through
  NumPy's own C distributions (``numpy/random/distributions.h``: ziggurat normals and exponentials),
  then the step is applied to every chain of the tile in a loop that GCC vectorizes (the transcendental
  functions through glibc's vector math library, libmvec, where present);
- at each kept step, the record's uniforms come from a second generator, so the steps' random stream
  does not depend on which steps are kept.
- when every step is recorded (``thin=1``), the record's part that does not depend on its uniforms
  (a discrete variable's conditional probabilities, the latents in their own space) is carried in
  the state: the step computes it at the proposal, where it shares the log-density's terms, and
  keeps it or the current one with the state; otherwise the record computes it at each kept step.

The kernel is still the one of `aemix.kernels.rmh`, written as a graph for one chain: this module
only changes how that graph is executed (vectorized over chains by `aemix.vectorize` and looped by
``scan`` otherwise).

A call runs in one of three modes (`MODES`), chosen at run time:

``"draws"``
    write the record and the log-density of every ``thin``-th step into caller-provided arrays (the
    ``sink``), from kept index ``offset`` on;
``"moments"``
    keep only per-chain running means and sums of squared deviations (Welford) of the records, so
    memory does not grow with the number of steps;
``"warmup"``
    no records.

In every mode the final state, the per-chain sum of acceptance probabilities and the number of
accepted proposals are returned; in warm-up mode, also the moments of the unconstrained positions
(which the tuning uses).

The loop runs without the GIL; every `SIGNAL_CHECK_SECONDS` the calling thread takes it back to run
the signal handlers, and a handler that raises (``KeyboardInterrupt`` on Ctrl-C) stops every thread
and is raised by the call, so an interrupt lands within a fraction of a second, however many steps
the call was given.
"""

from __future__ import annotations

import ctypes.util
import hashlib
import os
from dataclasses import dataclass, field

import aesara
import aesara.scalar as aes
import aesara.tensor as at
import numpy as np
from aesara.graph.basic import Apply, io_toposort
from aesara.graph.fg import FunctionGraph
from aesara.graph.rewriting.basic import MergeOptimizer
from aesara.graph.utils import MethodNotDefined
from aesara.link.c.op import COp
from aesara.link.c.type import generic

from aemix.compilation import function as compile_function
from aemix.scalarize import LoopReduce, ScalarGraph

__all__ = [
    "FusedRMHLoop",
    "FusedProgram",
    "MODES",
    "TILE",
    "compile_loop",
    "composite",
    "tile_count",
]

MODES = {"warmup": 0, "draws": 1, "moments": 2}

# Most chains per tile: the state of a tile stays in the L1/L2 cache while it runs all its steps.
TILE = 256
# Fewer chains than `MIN_TILES * TILE` are split into (up to) this many tiles of at least
# `_MIN_WIDTH` chains, so that the threads have tiles to share.
MIN_TILES = 8
_MIN_WIDTH = 32
# Bump when the generated C code changes: Aesara keys its compile cache on this version.
_CODE_VERSION = 24
# Kept steps staged per tile before they are copied to the (chain-major) outputs.
_STAGE_ROWS = 256
# Seconds between two runs of the signal handlers (with the GIL taken back) inside the loop.
SIGNAL_CHECK_SECONDS = 0.1


# glibc's vector math library: declaring its functions `simd` lets GCC vectorize the loop over a
# tile's chains through them (glibc declares them so only under -ffast-math).  These five have had
# vector versions since glibc 2.22.
_HAS_LIBMVEC = ctypes.util.find_library("mvec") is not None
_SIMD_DECLARATIONS = "\n".join(
    f"""#pragma omp declare simd notinbranch
extern "C" double {fn}({args}) noexcept;"""
    for fn, args in [
        ("exp", "double"),
        ("log", "double"),
        ("pow", "double, double"),
        ("sin", "double"),
        ("cos", "double"),
    ]
)


def composite(inputs: list, outputs: list) -> aes.Composite:
    """``aesara.scalar.Composite(inputs, outputs)`` whose generated code assigns every output.

    A Composite's C code names each output variable once: an output listed twice (or two outputs
    that its merge of equal sub-expressions makes one, such as two copies of a data value) would
    leave all but one of its slots unassigned, and an output that is an input or a constant is not
    allowed.  So the graph is merged first (two graphs lowered separately, such as a log-density
    and a conditional built from the same terms, share their terms), and each repeat of an output,
    an input or a constant is taken through ``identity`` from the previous copy (a chain of copies,
    which the Composite's own merge cannot fold back into one).
    """
    fgraph = FunctionGraph(inputs, outputs, clone=True)
    MergeOptimizer().rewrite(fgraph)
    fgraph_inputs = set(fgraph.inputs)
    last_copy: dict = {}
    outs = []
    for o in fgraph.outputs:
        if o in last_copy:
            out = aes.identity(last_copy[o])
        elif o.owner is None or o in fgraph_inputs:
            out = aes.identity(o)
        else:
            out = o
        last_copy[o] = out
        outs.append(out)
    return aes.Composite(list(fgraph.inputs), outs)


@dataclass(frozen=True)
class FusedProgram:
    """The lowered step and record of a model, ready to be looped.

    Attributes
    ----------
    dim
        Length of the flat unconstrained position.
    step
        Composite with inputs ``position[dim], logdensity, normal[dim], exponential, step_size,
        scale[dim or dim * dim]`` and outputs ``position[dim], logdensity, acceptance_probability,
        is_accepted``.
    record
        Composite with inputs ``position[dim], uniform[n_uniforms]`` and outputs the float records
        then the integer records.
    n_uniforms, n_float, n_int
        Number of uniform draws per record, of float records and of integer records.
    n_normal
        Standard normal draws per step (0: ``dim``, the random walk's and MALA's; HMC draws one
        more, for the jitter of its step size).
    record_note
        Empty when the record is the model's (the latents in their own space and the discrete
        draws); otherwise the record is the unconstrained position, and this says why.
    n_carried, initial_carried, carried_step, carried_record
        The record in its carried form (``n_carried`` 0 when there is none): the record's part that
        does not depend on the uniforms (``initial_carried``: ``position[dim]`` to
        ``carried[n_carried]``) is held in the state and computed inside the step at the proposal
        (``carried_step``: the step's inputs and ``carried``, to the step's outputs and
        ``carried``), where it shares the log-density's terms; ``carried_record`` takes
        ``carried, uniform[n_uniforms]`` to the records.  The loop takes this form when it
        records every step.
    data
        The data the loops over data rows read (`aemix.scalarize.LoopReduce`), one 1-d array per
        column, in the order of the Composites' code (which names column ``j``
        ``aemix_data_<j>``): the loop takes them as an input, so programs of the same model
        structure with other data of the same shapes have the same code.
    """

    dim: int
    step: aes.Composite
    record: aes.Composite
    n_uniforms: int
    n_float: int
    n_int: int
    record_note: str = ""
    n_normal: int = 0
    n_carried: int = 0
    initial_carried: aes.Composite | None = None
    carried_step: aes.Composite | None = None
    carried_record: aes.Composite | None = None
    data: tuple[np.ndarray, ...] = field(default=(), compare=False)

    @classmethod
    def from_graphs(
        cls,
        step: ScalarGraph,
        record: ScalarGraph,
        dim: int,
        n_uniforms: int,
        record_note: str = "",
        n_normal: int = 0,
        carried: tuple[ScalarGraph, ScalarGraph, ScalarGraph] | None = None,
    ) -> FusedProgram:
        """The program of the lowered ``step`` and ``record`` (and optionally the ``carried``
        form of the record: ``(initial, step, record)`` graphs, see the class)."""

        def flat(arrays):
            return [e for array in arrays for e in array.flat]

        graphs = [step, record, *(carried or ())]
        graphs, data = _data_as_inputs(graphs)
        step, record, *rest = graphs
        carried = tuple(rest) if carried is not None else None

        def floats_then_ints(arrays):
            elements = flat(arrays)
            floats = [e for e in elements if e.type.dtype.startswith("float")]
            return floats, [e for e in elements if not e.type.dtype.startswith("float")]

        floats, ints = floats_then_ints(record.outputs)
        extra = {}
        if carried is not None:
            initial, carried_step, carried_record = carried
            extra = dict(
                n_carried=len(flat(initial.outputs)),
                initial_carried=composite(flat(initial.inputs), flat(initial.outputs)),
                carried_step=composite(flat(carried_step.inputs), flat(carried_step.outputs)),
                carried_record=composite(
                    flat(carried_record.inputs), sum(floats_then_ints(carried_record.outputs), [])
                ),
            )
        return cls(
            dim=dim,
            step=composite(flat(step.inputs), flat(step.outputs)),
            record=composite(flat(record.inputs), floats + ints),
            n_uniforms=n_uniforms,
            n_float=len(floats),
            n_int=len(ints),
            record_note=record_note,
            n_normal=0 if n_normal == dim else n_normal,
            data=data,
            **extra,
        )

    def composites(self) -> dict[str, aes.Composite]:
        """``role -> Composite`` of every Composite of the program (the role is its field)."""
        roles = ("step", "record", "initial_carried", "carried_step", "carried_record")
        return {role: getattr(self, role) for role in roles if getattr(self, role) is not None}


def _data_as_inputs(graphs: list[ScalarGraph]) -> tuple[list[ScalarGraph], tuple]:
    """``graphs`` with every data column of their loops named by its position among the loop's
    data inputs, and those columns.

    A column is numbered where it is first read, walking the graphs in order, each in topological
    order: the numbering depends on the graphs' structure only, never on the data's values (two
    columns with equal values are one).
    """
    numbers: dict[str, int] = {}
    data: list[np.ndarray] = []
    new: dict = {}
    rebuilt = []
    for graph in graphs:
        inputs = [e for array in graph.inputs for e in array.flat]
        outputs = [e for array in graph.outputs for e in array.flat]
        for node in io_toposort(inputs, outputs):
            op = node.op
            if isinstance(op, LoopReduce):
                for key, column in zip(op.columns, op.data):
                    if key not in numbers:
                        numbers[key] = len(data)
                        data.append(column)
                op = op.with_columns(tuple(numbers[key] for key in op.columns))
            node_inputs = [new.get(i, i) for i in node.inputs]
            if op is node.op and all(a is b for a, b in zip(node_inputs, node.inputs)):
                continue
            new.update(zip(node.outputs, op.make_node(*node_inputs).outputs))
        renamed = []
        for array in graph.outputs:
            out = np.empty(array.shape, dtype=object)
            for index in np.ndindex(*array.shape):
                out[index] = new.get(array[index], array[index])
            renamed.append(out)
        rebuilt.append(ScalarGraph(graph.inputs, renamed, graph.n_operations))
    return rebuilt, tuple(data)


def _npyrandom_dirs() -> tuple[str, str]:
    include = os.path.join(np.get_include(), "numpy", "random")
    lib = os.path.join(os.path.dirname(np.random.__file__), "lib")
    return include, lib


_PROGRAMS: dict[str, FusedProgram] = {}


def tile_count(n_chains: int) -> int:
    """The number of tiles ``n_chains`` chains are split into (a function of ``n_chains`` only).

    The loop gives each tile its own two generators, so the draws depend on this split, never on
    the number of threads.  The loop derives a tile's width from the count as
    ``ceil(n_chains / n_tiles)``; the count returned here is one for which that width splits the
    chains into exactly ``n_tiles`` non-empty tiles.

    >>> [tile_count(n) for n in (1, 32, 100, 129, 1000, 2048, 10_000)]
    [1, 1, 4, 5, 8, 8, 40]
    """
    if n_chains < 1:
        return 0
    width = min(TILE, max(_MIN_WIDTH, -(-n_chains // MIN_TILES)))
    return -(-n_chains // width)


def program_key(program: FusedProgram) -> str:
    """A digest of everything the generated C code depends on."""
    digest = hashlib.sha256()
    for part in (
        _CODE_VERSION,
        _HAS_LIBMVEC,
        _STAGE_ROWS,
        SIGNAL_CHECK_SECONDS,
        program.dim,
        program.n_uniforms,
        program.n_float,
        program.n_int,
        program.n_carried,
        program.n_normal,
        [(column.dtype.str, len(column)) for column in program.data],
        *[c.c_code_template for c in program.composites().values()],
        *[
            [str(t) for t in (*c.inputs_type, *c.outputs_type)]
            for c in program.composites().values()
        ],
    ):
        digest.update(repr(part).encode())
    return digest.hexdigest()


# The loop's inputs: name and (dtype, ndim), or `generic` for a Python object.
INPUTS = (
    ("bit_generators", generic),
    ("position", ("float64", 2)),
    ("logdensity", ("float64", 1)),
    ("step_size", ("float64", 0)),
    ("scale", ("float64", 1)),
    ("n_steps", ("int64", 0)),
    ("thin", ("int64", 0)),
    ("mode", ("int64", 0)),
    ("sink", generic),
    ("offset", ("int64", 0)),
    ("n_threads", ("int64", 0)),
    ("data", generic),
)


class FusedRMHLoop(COp):
    """Run ``n_steps`` RMH steps of every chain in one C loop (see the module docstring).

    Inputs: ``bit_generators`` (a tuple of two NumPy ``BitGenerator`` per tile, ``tile_count(n_chains)``
    tiles: the tile's steps' and records', advanced in place), ``position`` ``(n_chains, dim)``,
    ``logdensity`` ``(n_chains,)``,
    ``step_size`` (scalar), ``scale`` ``(dim,)``, ``n_steps``, ``thin`` and ``mode`` (integer
    scalars; see `MODES`), ``sink`` (in ``"draws"`` mode, a tuple of three C-ordered arrays:
    float records ``(n_chains, >= offset + n_kept, n_float)``, integer records
    ``(n_chains, >= offset + n_kept, n_int)`` (int8, int16, int32 or int64: each value is cast to
    the array's type, so it must hold every value) and log-densities ``(n_chains, >= offset + n_kept)``,
    written in place; else ignored), ``offset`` and ``n_threads`` (integer scalars: the tiles are
    shared among ``n_threads`` OpenMP threads; the draws do not depend on it) and ``data`` (the
    program's data, `FusedProgram.data`: a tuple of C-contiguous 1-d arrays of the dtypes and
    lengths the code was generated for, read only), where ``n_kept = n_steps // thin``.

    Outputs: ``position``, ``logdensity`` (final state), ``acceptance_sum``, ``n_accepted``,
    ``n_zero_acceptance`` (the steps whose acceptance probability was exactly 0: HMC's
    divergences, `aemix.kernels.hmc`) ``(n_chains,)``, ``position_mean``, ``position_m2``
    ``(n_chains, dim)`` (moments of the positions over the kept steps; zeros unless in
    ``"warmup"`` mode) and ``record_mean``,
    ``record_m2`` ``(n_chains, n_float + n_int)`` (zeros unless in ``"moments"`` mode).
    """

    # The Op is identified by a digest of its code, not by the program itself: Aesara pickles every
    # compiled Op into its cache index and unpickles the whole index at the first compilation of a
    # process, and rebuilding the programs' Composites there is slow.  The program lives in a
    # registry of this process, which is only read when the code is generated (a cache miss).
    __props__ = ("key",)

    def __init__(self, program: FusedProgram):
        self.key = program_key(program)
        _PROGRAMS[self.key] = program
        super().__init__()

    @property
    def program(self) -> FusedProgram:
        return _PROGRAMS[self.key]

    def make_node(self, *inputs):
        if len(inputs) != len(INPUTS):
            raise TypeError(f"expected the inputs {[name for name, _ in INPUTS]}")
        inputs = [
            x if kind is generic else at.as_tensor_variable(x, dtype=kind[0])
            for x, (_, kind) in zip(inputs, INPUTS)
        ]
        for x, (name, kind) in zip(inputs, INPUTS):
            if kind is not generic and x.ndim != kind[1]:
                raise TypeError(f"{name} must have {kind[1]} dimensions, got {x.ndim}")
        outputs = [at.matrix(), at.vector(), at.vector(), at.lvector(), at.lvector()]
        outputs += [at.matrix(), at.matrix(), at.matrix(), at.matrix()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        raise NotImplementedError("the fused loop has only a C implementation")

    def c_headers(self, **kwargs):
        return ["<math.h>", "<omp.h>", "<vector>", "<Python.h>", "numpy/random/distributions.h"]

    def c_header_dirs(self, **kwargs):
        return [np.get_include(), *self.program.step.c_header_dirs(**kwargs)]

    def c_lib_dirs(self, **kwargs):
        return [_npyrandom_dirs()[1]]

    def c_libraries(self, **kwargs):
        return ["npyrandom", "m", *(["mvec"] if _HAS_LIBMVEC else [])]

    def c_support_code(self, **kwargs):
        # Per inner operation, so that code two composites share (such as a data array a loop
        # reads) is defined once.
        parts = set()
        for c in self.program.composites().values():
            for node in c.fgraph.toposort():
                try:
                    parts.add(node.op.c_support_code(**kwargs).strip())
                except MethodNotDefined:
                    pass
        return "\n".join([_SIMD_DECLARATIONS if _HAS_LIBMVEC else "", *sorted(parts)])

    def _scalar_nodes(self) -> dict:
        """``role -> (composite, node)`` of every composite of the program."""
        return {
            role: (c, c.make_node(*[t() for t in c.inputs_type]))
            for role, c in self.program.composites().items()
        }

    def c_support_code_apply(self, node, name):
        return "\n".join(
            c.c_support_code_apply(n, f"{name}_{role}")
            for role, (c, n) in self._scalar_nodes().items()
        )

    def c_code_cache_version(self):
        program = _PROGRAMS.get(self.key)
        if program is not None and not all(
            c.c_code_cache_version() for c in program.composites().values()
        ):
            return ()
        return (_CODE_VERSION,)

    def c_compile_args(self, **kwargs):
        # The IEEE-relaxing parts of -ffast-math that keep NaN and infinity semantics (the kernel
        # rejects NaN proposals and the log-densities may be -inf); not -ffast-math itself, which
        # also links crtfastmath and flushes denormals to zero in the whole process.
        return [
            "-fno-math-errno",
            "-fno-trapping-math",
            "-fno-signed-zeros",
            "-fopenmp",
        ]

    def _data_pointers(self, data: str, fail: str) -> str:
        """C code that checks the ``data`` input and points ``aemix_data_<j>`` (which the loops
        over data rows read, `aemix.scalarize.LoopReduce`) at its arrays."""
        columns = self.program.data
        checks = []
        for j, column in enumerate(columns):
            ctype = aes.get_scalar_type(column.dtype.name).dtype_specs()[1]
            typenum = f"NPY_{column.dtype.name.upper()}"
            checks.append(
                f"""{{
            PyObject* a = PyTuple_GET_ITEM({data}, {j});
            if (!PyArray_Check(a) || PyArray_TYPE((PyArrayObject*)a) != {typenum}
                || PyArray_NDIM((PyArrayObject*)a) != 1
                || PyArray_DIMS((PyArrayObject*)a)[0] != {len(column)}
                || !PyArray_IS_C_CONTIGUOUS((PyArrayObject*)a)
                || !PyArray_ISALIGNED((PyArrayObject*)a)) {{
                PyErr_SetString(PyExc_ValueError,
                    "data array {j} must be a C-contiguous {column.dtype.name} array of length "
                    "{len(column)}");
                {fail}
            }}
        }}
        const {ctype}* const __restrict__ aemix_data_{j} =
            (const {ctype}*)PyArray_DATA((PyArrayObject*)PyTuple_GET_ITEM({data}, {j}));
        (void)aemix_data_{j};"""
            )
        return f"""
        if (!PyTuple_Check({data}) || PyTuple_GET_SIZE({data}) != {len(columns)}) {{
            PyErr_SetString(PyExc_TypeError, "data must be a tuple of {len(columns)} arrays");
            {fail}
        }}
        {"".join(checks)}"""

    def c_code(self, node, name, inames, onames, sub):
        p = self.program
        d, nu, nf, ni = p.dim, p.n_uniforms, p.n_float, p.n_int
        ne = p.n_normal or d
        nr = nf + ni
        bitgen, x0, lp0, step_size, scale, n_steps, thin, mode, sink, offset, threads, data = inames
        x_out, lp_out, acc_out, nacc_out, nzero_out, pmean_out, pm2_out, rmean_out, rm2_out = onames
        fail = sub["fail"]
        nodes = self._scalar_nodes()
        ncar = p.n_carried
        # Vectorize over the chains of a tile, unless the step or the record loops over data:
        # then the loops over the data rows are vectorized instead (simd regions do not nest).
        has_loops = any(
            isinstance(n.op, LoopReduce)
            for c in p.composites().values()
            for n in c.fgraph.apply_nodes
        )
        chain_simd = "" if has_loops else "#pragma omp simd"

        def ctype(var):
            return var.type.dtype_specs()[1]

        def lines(template, n):
            return "\n".join(template.format(k=k) for k in range(n))

        # Scalar names the composites read and write, in the composites' input/output order.
        x = [f"x_{k}" for k in range(d)]
        xn = [f"xn_{k}" for k in range(d)]
        eps = [f"eps_{k}" for k in range(ne)]
        # The proposal's scale: a vector (per coordinate) or a flattened (dim, dim) factor.
        ns = p.step.nin - (d + ne + 3)
        sc = [f"scale_{k}" for k in range(ns)]
        u = [f"u_{k}" for k in range(nu)]
        rec = [f"rec_{k}" for k in range(nr)]
        # The carried form of the record (see `FusedProgram`): RC[k * TILE + i] in the state.
        r = [f"r_{k}" for k in range(ncar)]
        rn = [f"rn_{k}" for k in range(ncar)]
        step_in = [*x, "lp", *eps, "expo", "h", *sc]
        step_out = [*xn, "lpn", "accept_prob", "accepted"]

        def scalar_code(role: str, inputs: list[str], outputs: list[str]) -> str:
            """Declarations of ``outputs`` and the C code of the composite ``role`` (if any)."""
            if role not in nodes:
                return ""
            c, n = nodes[role]
            declarations = "\n".join(f"{ctype(o)} {v};" for o, v in zip(n.outputs, outputs))
            code = c.c_code(
                n, f"{name}_{role}", inputs, outputs, dict(fail=fail, id=f"{name}_{role}")
            )
            return f"{declarations}\n{code}"

        def either(carried: str, plain: str) -> str:
            """``carried`` when the loop runs the carried form, else ``plain``."""
            return f"if (use_carry) {{ {carried} }} else {{ {plain} }}" if ncar else plain

        def over_chains(body: str) -> str:
            return f"""
                {chain_simd}
                for (npy_intp i = 0; i < nc; ++i) {{
                    {body}
                }}"""

        # Per tile, the state is held in structure-of-arrays form, X[k * TILE + i], so that the
        # loop over the chains of a tile is unit-stride and vectorizes.
        load_x = lines("const double x_{k} = X[{k} * TILE + i];", d)
        load_eps = lines("const double eps_{k} = EPS[{k} * TILE + i];", ne)
        load_u = lines("const double u_{k} = U[{k} * TILE + i];", nu)
        store_x = lines("X[{k} * TILE + i] = xn_{k};", d)
        load_r = lines("const double r_{k} = RC[{k} * TILE + i];", ncar)
        store_rn = lines("RC[{k} * TILE + i] = rn_{k};", ncar)

        def step_body(code: str, load: str = "", store: str = "") -> str:
            return f"""
                    {load_x}
                    {load_eps}
                    {load}
                    const double lp = LP[i];
                    const double expo = EXPO[i];
                    {code}
                    {store_x}
                    {store}
                    LP[i] = lpn;
                    ACC[i] += accept_prob;
                    NACC[i] += accepted ? 1 : 0;
                    ZEROACC[i] += accept_prob == 0.0 ? 1 : 0;"""

        steps = either(
            over_chains(
                step_body(
                    scalar_code("carried_step", [*step_in, *r], [*step_out, *rn]), load_r, store_rn
                )
            ),
            over_chains(step_body(scalar_code("step", step_in, step_out))),
        )
        initial_carried = over_chains(load_x + scalar_code("initial_carried", x, rn) + store_rn)

        def record_loop(then: str) -> str:
            """Over the tile's chains: the record into ``rec_*``, then ``then``."""
            return either(
                over_chains(load_r + load_u + scalar_code("carried_record", [*r, *u], rec) + then),
                over_chains(load_x + load_u + scalar_code("record", [*x, *u], rec) + then),
            )

        load_scale = lines(
            f"const double scale_{{k}} = *(double*)PyArray_GETPTR1({scale}, {{k}});", ns
        )
        welford_pos = lines(
            "{{ const double v = X[{k} * TILE + i], delta = v - PMEAN[{k} * TILE + i];"
            " PMEAN[{k} * TILE + i] += delta * inv_count;"
            " PM2[{k} * TILE + i] += delta * (v - PMEAN[{k} * TILE + i]); }}",
            d,
        )
        alloc = [
            (x_out, 2, "n_chains, D", "NPY_FLOAT64"),
            (lp_out, 1, "n_chains", "NPY_FLOAT64"),
            (acc_out, 1, "n_chains", "NPY_FLOAT64"),
            (nacc_out, 1, "n_chains", "NPY_INT64"),
            (nzero_out, 1, "n_chains", "NPY_INT64"),
            (pmean_out, 2, "n_chains, D", "NPY_FLOAT64"),
            (pm2_out, 2, "n_chains, D", "NPY_FLOAT64"),
        ]
        if True:  # draws (run mode 1)
            # The draws go straight to the caller's arrays (the sink), from kept index `offset` on.
            frec_out, irec_out, klp_out = "sink_float", "sink_int", "sink_lp"
            # Records go to a tile-local stage, STAGE_ROWS kept steps deep, unit-stride over the
            # chains; a full stage is copied out chain by chain, in contiguous runs.
            stage = lines("FSTAGE[({k} * STAGE_ROWS + s) * TILE + i] = rec_{k};", nf)
            stage += "\n" + "\n".join(
                f"ISTAGE[({k} * STAGE_ROWS + s) * TILE + i] = (npy_int64){rec[nf + k]};"
                for k in range(ni)
            )
            stage_records = record_loop(f"{stage}\nLSTAGE[s * TILE + i] = LP[i];")
            float_out = f"*(double*)PyArray_GETPTR3({frec_out}, c0 + i, off + first + r, k)"
            # The int records' array holds the narrowest integer type their values need (see
            # `aemix.memory.smallest_integer_dtype`): int8, int16, int32 or int64.
            int_at = f"PyArray_GETPTR3({irec_out}, c0 + i, off + first + r, k)"
            int_value = "ISTAGE[(k * STAGE_ROWS + r) * TILE + i]"
            int_out = (
                f"switch (int_size) {{ case 1: *(npy_int8*){int_at} = (npy_int8){int_value}; break;"
                f" case 2: *(npy_int16*){int_at} = (npy_int16){int_value}; break;"
                f" case 4: *(npy_int32*){int_at} = (npy_int32){int_value}; break;"
                f" default: *(npy_int64*){int_at} = {int_value}; }}"
            )
            on_draws = f"""
                {{
                const npy_intp s = kept % STAGE_ROWS;
                {stage_records}
                if (s == STAGE_ROWS - 1 || kept == n_kept - 1) {{
                    const npy_intp first = kept - s;
                    for (npy_intp i = 0; i < nc; ++i) {{
                        for (npy_intp r = 0; r <= s; ++r) {{
                            for (npy_intp k = 0; k < {nf}; ++k)
                                {float_out} = FSTAGE[(k * STAGE_ROWS + r) * TILE + i];
                            for (npy_intp k = 0; k < {ni}; ++k) {{
                                {int_out}
                            }}
                            *(double*)PyArray_GETPTR2({klp_out}, c0 + i, off + first + r) =
                                LSTAGE[r * TILE + i];
                        }}
                    }}
                }}
                }}"""
        if True:  # moments (run mode 2)
            alloc += [
                (rmean_out, 2, f"n_chains, {nr}", "NPY_FLOAT64"),
                (rm2_out, 2, f"n_chains, {nr}", "NPY_FLOAT64"),
            ]
            updates = lines(
                "{{ const double v = (double)rec_{k}, delta = v - RMEAN[{k} * TILE + i];"
                " RMEAN[{k} * TILE + i] += delta * inv_count;"
                " RM2[{k} * TILE + i] += delta * (v - RMEAN[{k} * TILE + i]); }}",
                nr,
            )
            on_moments = record_loop(updates)
            tile_out = lines(
                f"*(double*)PyArray_GETPTR2({rmean_out}, c0 + i, {{k}}) = RMEAN[{{k}} * TILE + i];"
                f" *(double*)PyArray_GETPTR2({rm2_out}, c0 + i, {{k}}) = RM2[{{k}} * TILE + i];",
                nr,
            )
        allocations = "\n".join(
            f"""{{
                npy_intp dims[{nd}] = {{{dims}}};
                Py_XDECREF({out});
                {out} = (PyArrayObject*)PyArray_ZEROS({nd}, dims, {typ}, 0);
                if (!{out}) {{ {fail} }}
            }}"""
            for out, nd, dims, typ in alloc
        )
        sink_code = f"""
        const npy_int64 run_mode = *(npy_int64*)PyArray_DATA({mode});
        if (run_mode < 0 || run_mode > 2) {{
            PyErr_SetString(PyExc_ValueError, "mode must be 0 (warm-up), 1 (draws) or 2 (moments)");
            {fail}
        }}
        const npy_intp off = *(npy_int64*)PyArray_DATA({offset});
        PyArrayObject *sink_float = NULL, *sink_int = NULL, *sink_lp = NULL;
        npy_intp int_size = 8;
        (void)int_size;
        if (run_mode == 1) {{
            const int ndims[3] = {{3, 3, 2}};
            const int types[3] = {{NPY_FLOAT64, NPY_INT64, NPY_FLOAT64}};
            const npy_intp widths[3] = {{{nf}, {ni}, -1}};
            PyArrayObject* arrays[3] = {{NULL, NULL, NULL}};
            if (!PyTuple_Check({sink}) || PyTuple_GET_SIZE({sink}) != 3) {{
                PyErr_SetString(PyExc_TypeError, "sink must be a tuple of three arrays");
                {fail}
            }}
            for (int j = 0; j < 3; ++j) {{
                PyObject* a = PyTuple_GET_ITEM({sink}, j);
                const int type = PyArray_Check(a) ? PyArray_TYPE((PyArrayObject*)a) : -1;
                // (the int records may be of any signed integer type; see `FusedRMHLoop`)
                const int integer = type == NPY_INT8 || type == NPY_INT16 || type == NPY_INT32
                    || type == NPY_INT64;
                if (!PyArray_Check(a) || PyArray_NDIM((PyArrayObject*)a) != ndims[j]
                    || (j == 1 ? !integer : type != types[j])
                    || !PyArray_ISWRITEABLE((PyArrayObject*)a)
                    || PyArray_DIMS((PyArrayObject*)a)[0] != n_chains
                    || PyArray_DIMS((PyArrayObject*)a)[1] < off + n_kept
                    || (widths[j] >= 0 && PyArray_DIMS((PyArrayObject*)a)[2] != widths[j])) {{
                    PyErr_Format(PyExc_ValueError, "sink array %d has the wrong type or shape", j);
                    {fail}
                }}
                arrays[j] = (PyArrayObject*)a;
            }}
            sink_float = arrays[0]; sink_int = arrays[1]; sink_lp = arrays[2];
            int_size = PyArray_ITEMSIZE(sink_int);
        }}
        if (off < 0) {{ PyErr_SetString(PyExc_ValueError, "offset must be >= 0"); {fail} }}
"""
        data_code = self._data_pointers(data, fail)
        nu_ = max(nu, 1)
        nr_ = max(nr, 1)
        ncar_ = max(ncar, 1)
        return f"""
        {{
        const npy_intp D = {d};
        const npy_intp NE = {ne};
        if (PyArray_NDIM({x0}) != 2 || PyArray_DIMS({x0})[1] != D) {{
            PyErr_Format(PyExc_ValueError, "position must have shape (n_chains, %d)", (int)D);
            {fail}
        }}
        const npy_intp n_chains = PyArray_DIMS({x0})[0];
        if (PyArray_DIMS({lp0})[0] != n_chains || PyArray_DIMS({scale})[0] != {ns}) {{
            PyErr_SetString(PyExc_ValueError, "logdensity or scale has the wrong length");
            {fail}
        }}
        const npy_int64 steps = *(npy_int64*)PyArray_DATA({n_steps});
        const npy_int64 thin_ = *(npy_int64*)PyArray_DATA({thin});
        if (steps < 0 || thin_ < 1) {{
            PyErr_SetString(PyExc_ValueError, "n_steps must be >= 0 and thin >= 1");
            {fail}
        }}
        const npy_intp n_kept = steps / thin_;
        const double h = *(double*)PyArray_DATA({step_size});
        // Two generators per tile of chains: the steps' noise, and the records' uniforms (so that
        // the steps' stream does not depend on which steps are kept).  Per tile, so that the draws
        // do not depend on how many threads run the tiles.
        if (!PyTuple_Check({bitgen}) || PyTuple_GET_SIZE({bitgen}) % 2 != 0) {{
            PyErr_SetString(PyExc_TypeError,
                "bit_generators must be a tuple of 2 BitGenerators per tile of chains");
            {fail}
        }}
        const npy_intp n_tiles = PyTuple_GET_SIZE({bitgen}) / 2;
        // The tile width (see `tile_count`).
        const npy_intp TILE = n_tiles > 0 ? (n_chains + n_tiles - 1) / n_tiles : 1;
        if (n_tiles > 0 ? (n_chains + TILE - 1) / TILE != n_tiles || TILE > {TILE} : n_chains > 0) {{
            PyErr_Format(PyExc_ValueError,
                "%d BitGenerators do not split %d chains into tiles (see aemix.fused.tile_count)",
                (int)(2 * n_tiles), (int)n_chains);
            {fail}
        }}
        std::vector<bitgen_t*> rngs(2 * n_tiles, (bitgen_t*)NULL);
        for (npy_intp j = 0; j < 2 * n_tiles; ++j) {{
            PyObject* capsule = PyObject_GetAttrString(PyTuple_GET_ITEM({bitgen}, j), "capsule");
            if (!capsule) {{ {fail} }}
            rngs[j] = (bitgen_t*)PyCapsule_GetPointer(capsule, "BitGenerator");
            Py_DECREF(capsule);
            if (!rngs[j]) {{ {fail} }}
        }}
        const int n_threads = (int)*(npy_int64*)PyArray_DATA({threads});
        if (n_threads < 1) {{
            PyErr_SetString(PyExc_ValueError, "n_threads must be >= 1");
            {fail}
        }}
        {sink_code}
        {data_code}
        {allocations}
        {load_scale}
        int out_of_memory = 0;
        // Set when a signal handler raised (Ctrl-C): every thread leaves its steps.
        int interrupted = 0;
        double last_signal_check = omp_get_wtime();
        Py_BEGIN_ALLOW_THREADS
        #pragma omp parallel num_threads(n_threads)
        {{
        double* buffer =
            (double*)malloc(sizeof(double) * TILE * (3 * D + NE + 3 + {nu_} + 2 * {nr_} + {ncar_}));
        // Only as deep as this call keeps draws: fresh memory is slow to touch the first time.
        const npy_intp STAGE_ROWS =
            run_mode != 1 || n_kept < 1 ? 1 : (n_kept < {_STAGE_ROWS} ? n_kept : {_STAGE_ROWS});
        double* FSTAGE = (double*)malloc(sizeof(double) * TILE * STAGE_ROWS * ({nf} + 1));
        npy_int64* ISTAGE = (npy_int64*)malloc(sizeof(npy_int64) * TILE * STAGE_ROWS * ({ni} + 1));
        npy_int64* NACC = (npy_int64*)malloc(sizeof(npy_int64) * 2 * TILE);
        if (!buffer || !FSTAGE || !ISTAGE || !NACC) {{
            #pragma omp atomic write
            out_of_memory = 1;
        }}
        npy_int64* ZEROACC = NACC + TILE;
        double* X = buffer;
        double* EPS = X + D * TILE;
        double* PMEAN = EPS + NE * TILE;
        double* PM2 = PMEAN + D * TILE;
        double* LP = PM2 + D * TILE;
        double* ACC = LP + TILE;
        double* EXPO = ACC + TILE;
        double* U = EXPO + TILE;
        double* RMEAN = U + {nu_} * TILE;
        double* RM2 = RMEAN + {nr_} * TILE;
        double* RC = RM2 + {nr_} * TILE;
        double* LSTAGE = FSTAGE + {nf} * STAGE_ROWS * TILE;
        (void)U; (void)RMEAN; (void)RM2; (void)LSTAGE; (void)RC;
        // The carried form of the record when every step is recorded (see `FusedProgram`).
        const int use_carry = {1 if ncar else 0} && run_mode != 0 && thin_ == 1;
        (void)use_carry;
        #pragma omp for schedule(static)
        for (npy_intp tile = 0; tile < n_tiles; ++tile) {{
            if (!buffer || !FSTAGE || !ISTAGE || !NACC) continue;
            const npy_intp c0 = tile * TILE;
            bitgen_t* rng = rngs[2 * tile];
            bitgen_t* record_rng = rngs[2 * tile + 1];
            const npy_intp nc = n_chains - c0 < TILE ? n_chains - c0 : TILE;
            for (npy_intp i = 0; i < nc; ++i) {{
                for (npy_intp k = 0; k < D; ++k) {{
                    X[k * TILE + i] = *(double*)PyArray_GETPTR2({x0}, c0 + i, k);
                    PMEAN[k * TILE + i] = 0.0;
                    PM2[k * TILE + i] = 0.0;
                }}
                for (npy_intp k = 0; k < {nr_}; ++k) {{
                    RMEAN[k * TILE + i] = 0.0;
                    RM2[k * TILE + i] = 0.0;
                }}
                LP[i] = *(double*)PyArray_GETPTR1({lp0}, c0 + i);
                ACC[i] = 0.0;
                NACC[i] = 0;
                ZEROACC[i] = 0;
            }}
            {either(initial_carried, "")}
            npy_intp kept = 0;
            for (npy_int64 t = 0; t < steps; ++t) {{
                int stop;
                #pragma omp atomic read
                stop = interrupted;
                if (stop) break;
                // The calling thread (the team's first) runs the signal handlers now and then,
                // with the GIL taken back for the moment, so that Ctrl-C lands within a fraction of
                // a second however long the call.
                if (omp_get_thread_num() == 0
                    && omp_get_wtime() - last_signal_check > {SIGNAL_CHECK_SECONDS}) {{
                    last_signal_check = omp_get_wtime();
                    PyGILState_STATE gil = PyGILState_Ensure();
                    const int raised = PyErr_CheckSignals() < 0;
                    PyGILState_Release(gil);
                    if (raised) {{
                        #pragma omp atomic write
                        interrupted = 1;
                        break;
                    }}
                }}
                for (npy_intp k = 0; k < NE; ++k) {{
                    random_standard_normal_fill(rng, nc, EPS + k * TILE);
                }}
                random_standard_exponential_fill(rng, nc, EXPO);
                {steps}
                if ((t + 1) % thin_ == 0) {{
                    const double inv_count = 1.0 / (double)(kept + 1);
                    if (run_mode == 0) {{
                        {chain_simd}
                        for (npy_intp i = 0; i < nc; ++i) {{
                            {welford_pos}
                        }}
                    }}
                    if (run_mode != 0) {{
                        for (npy_intp k = 0; k < {nu}; ++k) {{
                            random_standard_uniform_fill(record_rng, nc, U + k * TILE);
                        }}
                    }}
                    if (run_mode == 1) {{
                        {on_draws}
                    }} else if (run_mode == 2) {{
                        {on_moments}
                    }}
                    ++kept;
                }}
            }}
            for (npy_intp i = 0; i < nc; ++i) {{
                for (npy_intp k = 0; k < D; ++k) {{
                    *(double*)PyArray_GETPTR2({x_out}, c0 + i, k) = X[k * TILE + i];
                    *(double*)PyArray_GETPTR2({pmean_out}, c0 + i, k) = PMEAN[k * TILE + i];
                    *(double*)PyArray_GETPTR2({pm2_out}, c0 + i, k) = PM2[k * TILE + i];
                }}
                *(double*)PyArray_GETPTR1({lp_out}, c0 + i) = LP[i];
                *(double*)PyArray_GETPTR1({acc_out}, c0 + i) = ACC[i];
                *(npy_int64*)PyArray_GETPTR1({nacc_out}, c0 + i) = NACC[i];
                *(npy_int64*)PyArray_GETPTR1({nzero_out}, c0 + i) = ZEROACC[i];
                {tile_out}
            }}
        }}
        free(buffer);
        free(FSTAGE);
        free(ISTAGE);
        free(NACC);
        }}
        Py_END_ALLOW_THREADS
        if (out_of_memory) {{ PyErr_NoMemory(); {fail} }}
        // The handler's exception (KeyboardInterrupt) is set on this thread.
        if (interrupted) {{ {fail} }}
        }}
        """


def compile_loop(program: FusedProgram):
    """Compile the fused loop of ``program`` to a Python callable.

    The callable takes ``(bit_generators, position, logdensity, step_size, scale, n_steps, thin,
    mode, sink, offset, n_threads, data)`` and returns the outputs listed in `FusedRMHLoop`.
    """
    inputs = [
        generic(name=name)
        if kind is generic
        else at.tensor(kind[0], shape=(None,) * kind[1], name=name)
        for name, kind in INPUTS
    ]
    outputs = FusedRMHLoop(program)(*inputs)
    return compile_function(
        inputs, outputs, mode=aesara.compile.mode.Mode(linker="c", optimizer=None)
    )
