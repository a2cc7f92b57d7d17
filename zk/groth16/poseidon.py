"""Poseidon over BN254's F_r (Grassi et al., USENIX Security 2021, eprint 2019/458), as circomlib computes it.

The circuit uses circomlib's `PoseidonEx` (vendored in groth16py's wheel, linked at compile
time, never copied here). Python needs the same function to compute commitments and public
inputs, so this module implements the plain (unoptimised) permutation — full rounds,
partial rounds, x⁵ S-box, MDS mix — and reads the published round constants and MDS
matrices from the vendored `poseidon_constants_old.circom` at run time. The optimised
circuit form and this plain form compute the same permutation; a known-answer test
(Poseidon(1, 2) from circomlib's test suite) and an in-circuit cross-check pin that down.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import groth16py

from zk.curve import CURVE_ORDER

#: Partial rounds per width t = 2..17, as in circomlib (the paper's table rounded up).
N_ROUNDS_P = (56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68)
N_ROUNDS_F = 8
MAX_INPUTS = 16

_CONSTANTS_FILE = "poseidon_constants_old.circom"


def constants_path() -> Path:
    """The vendored circomlib constants file (circom 2 generation)."""
    return Path(groth16py.circomlib_path(2)) / _CONSTANTS_FILE


def _branch(text: str, function: str, t: int) -> str:
    """The literal returned by `function(t)` for width t, located by its if-chain."""
    start = text.index(f"function {function}(t)")
    end = text.find("function ", start + 10)
    body = text[start : end if end >= 0 else len(text)]
    match = re.search(rf"t\s*==\s*{t}\s*\)\s*\{{\s*return\s*(\[.*?\]);", body, re.S)
    if match is None:
        raise ValueError(f"{function}({t}) not found in {constants_path()}")
    return match.group(1)


def _ints(literal: str) -> list[int]:
    return [int(x, 0) for x in re.findall(r"0x[0-9a-fA-F]+|\d+", literal)]


@cache
def parameters(t: int) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
    """(round constants, MDS matrix) for state width t (2 ≤ t ≤ 17)."""
    if not 2 <= t <= MAX_INPUTS + 1:
        raise ValueError(f"Poseidon width {t} outside 2..17")
    text = constants_path().read_text()
    c = tuple(_ints(_branch(text, "POSEIDON_C", t)))
    flat = _ints(_branch(text, "POSEIDON_M", t))
    if len(c) != t * (N_ROUNDS_F + N_ROUNDS_P[t - 2]) or len(flat) != t * t:
        raise ValueError(f"unexpected Poseidon constants for t={t}")
    m = tuple(tuple(flat[i * t : (i + 1) * t]) for i in range(t))
    return c, m


def permute(state: Sequence[int]) -> list[int]:
    """The Poseidon permutation on a state of width t = len(state)."""
    t = len(state)
    c, m = parameters(t)
    p = CURVE_ORDER
    s = [int(x) % p for x in state]
    rounds = N_ROUNDS_F + N_ROUNDS_P[t - 2]
    half = N_ROUNDS_F // 2
    for r in range(rounds):
        s = [(x + c[r * t + i]) % p for i, x in enumerate(s)]
        if r < half or r >= rounds - half:
            s = [pow(x, 5, p) for x in s]
        else:
            s[0] = pow(s[0], 5, p)
        # the old (unoptimised) constants are laid out row-major: out[i] = Σ_j M[i][j]·in[j]
        s = [sum(m[i][j] * s[j] for j in range(t)) % p for i in range(t)]
    return s


def poseidon(inputs: Sequence[int], initial_state: int = 0) -> int:
    """circomlib `Poseidon(n)` / `PoseidonEx(n, 1)`: out[0] of the permutation of (init, inputs)."""
    if not 1 <= len(inputs) <= MAX_INPUTS:
        raise ValueError(f"Poseidon takes 1..{MAX_INPUTS} inputs, got {len(inputs)}")
    return permute([initial_state, *inputs])[0]


#: Field elements absorbed per sponge step of `chain_hash` (the 16th input carries the chain).
CHAIN_RATE = MAX_INPUTS - 1


def chain_hash(head: int, elements: Sequence[int]) -> int:
    """h₀ = head; h_{k+1} = Poseidon(h_k, e_{15k}, …, e_{15k+14}) with zero padding; returns the last h.

    The length is fixed by the circuit (n, d), so zero padding is unambiguous.
    """
    h = int(head) % CURVE_ORDER
    values = [int(e) % CURVE_ORDER for e in elements]
    for start in range(0, max(len(values), 1), CHAIN_RATE):
        block = values[start : start + CHAIN_RATE]
        block += [0] * (CHAIN_RATE - len(block))
        h = poseidon([h, *block])
    return h
