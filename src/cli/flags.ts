// Numeric flag values, parsed where commander reads them: a value the command cannot use is a
// usage error naming the flag ("option '--workers <n>' argument '0' is invalid. --workers must be
// an integer >= 1") before anything runs. Commander does not parse defaults: give them as numbers.
import { InvalidArgumentError } from "commander";

/** An integer in min..max (no upper bound unless given). */
export function integer(flag: string, min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        `${flag} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`}`,
      );
    return n;
  };
}

/** A number greater than `above` (e.g. 0 for a channel multiplier). */
export function numberAbove(flag: string, above: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || !(n > above))
      throw new InvalidArgumentError(`${flag} must be a number > ${above}`);
    return n;
  };
}

/** A duration in seconds, >= 0. */
export function seconds(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0)
      throw new InvalidArgumentError(`${flag} must be a number of seconds >= 0`);
    return n;
  };
}
