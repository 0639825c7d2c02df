"""LoRA adapters' terms for decode steps, as fp32 low-rank products that keep every row batch-independent.

:func:`decode_step.llama_step` adds these terms to the packed base products: per layer through
:meth:`LowRank.project`, or, on the lean way, one product per adapter for the layers that read the same input
(:meth:`LowRank.group`, :func:`with_terms`).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch


class LowRank:
    """LoRA terms for decode steps: each adapter's two factors as fp32 copies (scaling folded in).

    PEFT computes an adapter's term with two bf16 matrix products per layer; on CPU a product that
    small costs about 75 us in bf16 and about 20 us in fp32, and with an adapter on every layer those
    products were most of a decode step. How the products are taken is chosen once per shape, by
    checking which way gives a row the same result in every batch:

    - ``"pairs"``: one matrix product for all rows. Where fp32 products of one row round differently
      from those of two or more rows (AVX-512 CPUs), a lone row's term is computed as a pair (the
      product only, not the model).
    - ``"rows"``: a batched product with each row its own batch entry (``bmm``). Where the one-product
      way rounds rows differently for different batch sizes (an AVX2-only CPU did), this one still
      gave every row the same result alone and in batches of 2 to 8, at about 1.5x the cost.

    A shape that neither way keeps batch-independent keeps PEFT's own forward.
    ``clear()`` whenever an adapter is loaded or removed."""

    def __init__(self) -> None:
        self._factors: dict[tuple[int, str], Any] = {}
        self._shapes: dict[tuple[int, int, int], str | None] = {}
        self._groups: dict[tuple[int, ...], Any] = {}
        #: Each decoder layer's lean way (``decode_step._lean``), worked out once per set of loaded adapters.
        self.lean: dict[tuple[int, int, int], Any] = {}

    def clear(self) -> None:
        self._factors.clear()
        self._groups.clear()
        self.lean.clear()

    def group(self, modules: Sequence[Any]) -> Any:
        """The adapters' terms of layers that read the same input (q/k/v, gate/up, or one layer) as one
        product per adapter: ``[(key, way, a, b, layer)]`` (``layer``: one that carries the adapter, whose
        state and row mask stand for all of them), ``a`` every layer's A stacked, ``b`` their B factors
        as one block-diagonal matrix (zero where a layer has no such adapter), so that one call gives
        the terms of all of them side by side, as the packed base product gives their outputs. Built
        from every adapter loaded on these layers, whichever are active, so a row's numbers do not depend
        on which other adapters share its batch. None where these layers carry no adapter; False where
        one cannot be taken this way (that layer then goes through its modules)."""
        ids = tuple(id(m) for m in modules)
        found = self._groups.get(ids)
        if found is None and ids not in self._groups:
            found = self._groups[ids] = self._build_group(modules)
        return found

    def _build_group(self, modules: Sequence[Any]) -> Any:
        wrapped = [m for m in modules if is_lora(m)]
        if not wrapped:
            return None
        keys = sorted({k for m in wrapped for k in m.lora_A})
        sizes = [(m.base_layer if is_lora(m) else m).out_features for m in modules]
        out = []
        for key in keys:
            parts = [(i, self._factors_of(m, key)) for i, m in enumerate(modules) if is_lora(m) and key in m.lora_A]
            if any(f is None for _, f in parts):
                return False
            a = torch.cat([(f[1].t() if f[0] == "rows" else f[1]) for _, f in parts])  # (ranks, in)
            b = torch.zeros(sum(sizes), a.shape[0], dtype=a.dtype, device=a.device)
            col = 0
            starts = [sum(sizes[:i]) for i in range(len(sizes))]
            for i, f in parts:
                fb = f[2].t() if f[0] == "rows" else f[2]  # (out, rank)
                b[starts[i]:starts[i] + fb.shape[0], col:col + fb.shape[1]] = fb
                col += fb.shape[1]
            shape = (a.shape[1], a.shape[0], b.shape[0], tuple(sizes))
            if shape not in self._shapes:
                self._shapes[shape] = _batch_independent_way(a, b)
            way = self._shapes[shape]
            if way is None:
                return False
            if way == "rows":
                a, b = a.t().contiguous(), b.t().contiguous()
            out.append((key, way, a, b, wrapped[[key in m.lora_A for m in wrapped].index(True)]))
        return out

    def project(self, module: Any, x: Any, base: Any = None) -> Any:
        """``module(x)`` for a LoRA-wrapped layer (``base``: its base layer's output, when already known)."""
        if module.disable_adapters or module.merged:
            return module.base_layer(x) if base is None else base
        terms = []
        for key in module.active_adapters:
            if key not in module.lora_A:
                continue
            factors = self._factors_of(module, key)
            if factors is None:
                return module(x)  # PEFT's own forward: the whole layer, base included
            way, a, b = factors
            masked = module.lora_dropout[key](x)  # the per-row mask during a mixed batch, else identity
            flat = masked.reshape(-1, x.shape[-1]).float()
            term = low_rank_product(way, flat, a, b)
            terms.append(term.reshape(*x.shape[:-1], term.shape[-1]))
        out = module.base_layer(x) if base is None else base
        for term in terms:
            out = out + term.to(out.dtype)
        return out

    def serves(self, module: Any, key: str) -> bool:
        """Whether decode steps take adapter ``key``'s terms of this LoRA layer here (else PEFT's forward)."""
        return self._factors_of(module, key) is not None

    def _factors_of(self, module: Any, key: str) -> Any:
        """``(way, a, b)`` for adapter ``key`` of a LoRA layer, or None where PEFT's forward must serve it."""
        found = self._factors.get((id(module), key), False)
        if found is not False:
            return found
        lora_a, lora_b = module.lora_A[key], module.lora_B[key]
        usable = (type(lora_a) is torch.nn.Linear and type(lora_b) is torch.nn.Linear and lora_b.bias is None
                  and lora_a.bias is None and not (getattr(module, "use_dora", {}) or {}).get(key, False))
        factors = None
        if usable:
            a = lora_a.weight.detach().float()
            b = lora_b.weight.detach().float() * float(module.scaling[key])
            shape = (a.shape[1], a.shape[0], b.shape[0])
            if shape not in self._shapes:
                self._shapes[shape] = _batch_independent_way(a, b)
            way = self._shapes[shape]
            if way == "rows":  # bmm reads each factor as (in, out): transposed once here, not per step
                a, b = a.t().contiguous(), b.t().contiguous()
            factors = (way, a, b) if way else None
        self._factors[(id(module), key)] = factors
        return factors


def low_rank_product(way: str, flat: Any, a: Any, b: Any) -> Any:
    """``flat @ a.T @ b.T`` for ``(rows, in)`` fp32 rows, taken the ``way`` chosen for this shape."""
    rows = flat.shape[0]
    if way == "rows":
        return torch.bmm(torch.bmm(flat[:, None], a.expand(rows, -1, -1)), b.expand(rows, -1, -1))[:, 0]
    if rows == 1:
        flat = torch.cat([flat, flat])
    return torch.nn.functional.linear(torch.nn.functional.linear(flat, a), b)[:rows]


def _batch_independent_way(a: Any, b: Any) -> str | None:
    """The first way (``"pairs"``, then ``"rows"``) whose products with these shapes give a row the same
    result alone and in every batch of 2 to 8 rows; None when neither does."""
    x = torch.randn(8, a.shape[1], generator=torch.Generator().manual_seed(3)).to(a.device)  # CUDA too
    for way, factors in (("pairs", (a, b)), ("rows", (a.t().contiguous(), b.t().contiguous()))):
        full = low_rank_product(way, x, *factors)
        if all(torch.equal(low_rank_product(way, x[i:i + m], *factors), full[i:i + m])
               for m in range(1, 8) for i in range(0, 8 - m + 1)):
            return way
    return None


def is_lora(module: Any) -> bool:
    return hasattr(module, "lora_A") and hasattr(module, "base_layer")


def with_terms(base: Any, x: Any, group: Any) -> Any:
    """``base`` (the packed products of layers reading ``x``, side by side) plus each active adapter's
    terms for them, one product per adapter (:meth:`LowRank.group`); each term is added as the way
    through the modules adds it, so an adapter that is off or masked for a row adds exact zeros."""
    if not group:
        return base
    rows = x.shape[0]
    for key, way, a, b, ref in group:
        if ref.disable_adapters or ref.merged:
            return base
        if key not in ref.active_adapters:
            continue
        masked = ref.lora_dropout[key](x[:, None])  # the per-row mask of a mixed batch, else identity
        term = low_rank_product(way, masked.reshape(rows, -1).float(), a, b)
        base = base + term.to(base.dtype)
    return base
