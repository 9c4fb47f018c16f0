// The ArcFace 5-point template (112x112 aligned crops): left eye, right eye, nose tip, left and
// right mouth corners. Because aligned faces put these points at fixed places, a mask can be drawn
// in template coordinates; for other faces, a similarity transform maps the template onto the
// face's own 5 landmarks.

export type Point = [number, number];
export type Landmarks5 = [Point, Point, Point, Point, Point];

export const ARCFACE_TEMPLATE: Landmarks5 = [
  [38.2946, 51.6963],
  [73.5318, 51.5014],
  [56.0252, 71.7366],
  [41.5493, 92.3655],
  [70.7299, 92.2041],
];

/** A 2-D affine map [a, b, c, d, e, f]: x' = a x + c y + e, y' = b x + d y + f (SVG matrix order). */
export type Affine = [number, number, number, number, number, number];

export const IDENTITY: Affine = [1, 0, 0, 1, 0, 0];

export function applyAffine(m: Affine, [x, y]: Point): Point {
  return [m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]];
}

/** Least-squares similarity (rotation, uniform scale, translation) taking `from` onto `to`. */
export function similarityTransform(from: readonly Point[], to: readonly Point[]): Affine {
  const n = from.length;
  if (n !== to.length || n < 2)
    throw new Error("similarityTransform: need two equally long lists of >= 2 points");
  let mx = 0,
    my = 0,
    ux = 0,
    uy = 0;
  for (let i = 0; i < n; i++) {
    mx += from[i]![0] / n;
    my += from[i]![1] / n;
    ux += to[i]![0] / n;
    uy += to[i]![1] / n;
  }
  // Closed form for 2-D: minimise sum |(a -b; b a) p + t - q|^2.
  let sxx = 0,
    sxy = 0,
    norm = 0;
  for (let i = 0; i < n; i++) {
    const px = from[i]![0] - mx;
    const py = from[i]![1] - my;
    const qx = to[i]![0] - ux;
    const qy = to[i]![1] - uy;
    sxx += px * qx + py * qy;
    sxy += px * qy - py * qx;
    norm += px * px + py * py;
  }
  if (norm === 0) throw new Error("similarityTransform: source points coincide");
  const a = sxx / norm;
  const b = sxy / norm;
  return [a, b, -b, a, ux - (a * mx - b * my), uy - (b * mx + a * my)];
}

/** Checks and converts 10 numbers (x1 y1 ... x5 y5) into landmarks. */
export function landmarksFromNumbers(xs: readonly number[], where: string): Landmarks5 {
  if (xs.length !== 10 || xs.some((x) => !Number.isFinite(x)))
    throw new Error(`${where}: expected 10 numbers (x y of eyes, nose, mouth corners), got ${xs.length}`);
  return [0, 1, 2, 3, 4].map((i) => [xs[2 * i] as number, xs[2 * i + 1] as number]) as Landmarks5;
}
