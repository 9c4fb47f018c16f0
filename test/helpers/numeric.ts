// Shared test utilities: tolerant comparisons and a finite-difference gradient check.
import assert from "node:assert/strict";
import * as T from "../../src/torch/index.ts";

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol = 1e-5,
  what = "value",
): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const err = Math.abs(a - e) / Math.max(1, Math.abs(e));
    if (!(err <= tol)) assert.fail(`${what}[${i}]: ${a} vs ${e} (rel err ${err.toExponential(2)} > ${tol})`);
  }
}

export function maxAbsDiff(a: T.Tensor, b: T.Tensor): number {
  return T.scope(() => a.float().sub(b.float()).abs().max().item());
}

/**
 * Checks d f(inputs) against central finite differences along random directions: for each input
 * x and direction v, <grad_x sum(f * w), v> ≈ (g(x + εv) − g(x − εv)) / 2ε with g = sum(f * w).
 * Inputs should be f64 for tight tolerances.
 */
export function gradcheck(
  fn: (...xs: T.Tensor[]) => T.Tensor,
  inputs: T.Tensor[],
  { eps = 1e-6, tol = 1e-5, directions = 3 } = {},
): void {
  T.scope(() => {
    const leaves = inputs.map((x) => x.detach().requiresGrad_());
    const out = fn(...leaves);
    const w = T.randnLike(out);
    const analytic = T.grad([out.mul(w).sum()], leaves);
    const g = (xs: T.Tensor[]): number =>
      T.noGrad(() =>
        fn(...xs)
          .mul(w)
          .sum()
          .item(),
      );
    leaves.forEach((x, i) => {
      const ga = analytic[i];
      assert.ok(ga, `input ${i}: no gradient`);
      for (let d = 0; d < directions; d++) {
        const v = T.randnLike(x);
        const plus = leaves.map((y, j) => (j === i ? y.detach().add(v.mul(eps)) : y.detach()));
        const minus = leaves.map((y, j) => (j === i ? y.detach().sub(v.mul(eps)) : y.detach()));
        const numeric = (g(plus) - g(minus)) / (2 * eps);
        const exact = ga.mul(v).sum().item();
        const err = Math.abs(numeric - exact) / Math.max(1, Math.abs(exact));
        assert.ok(
          err <= tol,
          `input ${i}, direction ${d}: analytic ${exact} vs numeric ${numeric} (rel ${err})`,
        );
      }
    });
  });
}
