// Parametric face masks (surgical, cloth, N95-like) as SVG in ArcFace template coordinates
// (112x112, nose tip at (56, 71.7), mouth corners at y 92). The top edge sits on the nose bridge,
// below the eyes (eye centres at y 51.6); the bottom runs past the chin, out of the crop.
import type { Rng } from "../rng.ts";
import { type Affine, IDENTITY } from "./template.ts";

export type MaskKind = "surgical" | "cloth" | "n95";
export const MASK_KINDS: readonly MaskKind[] = ["surgical", "cloth", "n95"];
export type Pattern = "plain" | "stripes" | "dots" | "checks";
export type RGB = [number, number, number];

export interface MaskParams {
  kind: MaskKind;
  colour: RGB;
  pattern: Pattern;
  patternColour: RGB;
  straps: boolean;
  /** N95 exhalation valve. */
  valve: boolean;
  /** Rotation in degrees about the mouth centre. */
  rotation: number;
  /** y of the top edge over the nose bridge (template pixels). */
  top: number;
  /** Half width at mouth level. */
  halfWidth: number;
  /** Lowest point of the mask, under the chin. */
  bottom: number;
}

const PALETTES: Record<MaskKind, RGB[]> = {
  surgical: [
    [160, 196, 226],
    [118, 176, 204],
    [236, 238, 240],
    [176, 214, 196],
    [226, 186, 200],
    [46, 48, 54],
  ],
  cloth: [
    [32, 42, 74],
    [24, 24, 28],
    [128, 130, 136],
    [168, 40, 46],
    [206, 186, 150],
    [70, 110, 70],
    [120, 70, 130],
    [220, 220, 214],
  ],
  n95: [
    [240, 240, 234],
    [196, 198, 200],
    [40, 56, 96],
    [30, 30, 34],
  ],
};

const jitter = (rng: Rng, c: RGB, amount: number): RGB =>
  c.map((v) => Math.max(0, Math.min(255, Math.round(v + rng.range(-amount, amount))))) as RGB;

/** Draws a mask's colours (the training path recolours pre-rendered tiles with these). */
export function sampleMaskColours(rng: Rng, kind: MaskKind): { colour: RGB; patternColour: RGB } {
  const colour = jitter(rng, rng.pick(PALETTES[kind]), 14);
  return { colour, patternColour: jitter(rng, rng.pick(PALETTES.cloth), 20) };
}

/** Draws one mask's parameters. */
export function sampleMaskParams(rng: Rng, kind: MaskKind = rng.pick(MASK_KINDS)): MaskParams {
  const colour = jitter(rng, rng.pick(PALETTES[kind]), 14);
  const pattern: Pattern =
    kind === "cloth" ? rng.pick(["plain", "stripes", "dots", "checks"] as const) : "plain";
  return {
    kind,
    colour,
    pattern,
    patternColour: jitter(rng, rng.pick(PALETTES.cloth), 20),
    straps: rng.chance(0.85),
    valve: kind === "n95" && rng.chance(0.4),
    rotation: rng.range(-6, 6),
    top: rng.range(62, 67),
    halfWidth: rng.range(35, 41),
    bottom: rng.range(116, 124),
  };
}

const rgb = (c: RGB): string => `rgb(${c[0]},${c[1]},${c[2]})`;
const f = (x: number): string => x.toFixed(2);

/** The mask's outline as an SVG path (template coordinates). */
function outline(p: MaskParams): string {
  const cx = 56;
  const T = p.top;
  const hw = p.halfWidth;
  const B = p.bottom;
  if (p.kind === "surgical")
    return (
      `M${f(cx - 34)},${f(T + 6)} C${f(cx - 20)},${f(T - 2)} ${f(cx + 20)},${f(T - 2)} ${f(cx + 34)},${f(T + 6)} ` +
      `L${f(cx + hw)},${f(100)} C${f(cx + hw - 6)},${f(B - 4)} ${f(cx + 16)},${f(B)} ${f(cx)},${f(B)} ` +
      `C${f(cx - 16)},${f(B)} ${f(cx - hw + 6)},${f(B - 4)} ${f(cx - hw)},${f(100)} Z`
    );
  if (p.kind === "cloth")
    return (
      `M${f(cx - 36)},${f(T + 8)} Q${f(cx)},${f(T - 8)} ${f(cx + 36)},${f(T + 8)} ` +
      `C${f(cx + hw + 6)},${f(T + 30)} ${f(cx + hw + 4)},100 ${f(cx + 30)},${f(B - 8)} ` +
      `Q${f(cx)},${f(B + 2)} ${f(cx - 30)},${f(B - 8)} C${f(cx - hw - 4)},100 ${f(cx - hw - 6)},${f(T + 30)} ` +
      `${f(cx - 36)},${f(T + 8)} Z`
    );
  return (
    `M${f(cx - 30)},${f(T + 10)} Q${f(cx)},${f(T - 6)} ${f(cx + 30)},${f(T + 10)} ` +
    `C${f(cx + hw + 4)},${f(T + 26)} ${f(cx + hw + 2)},106 ${f(cx)},${f(B - 2)} ` +
    `C${f(cx - hw - 2)},106 ${f(cx - hw - 4)},${f(T + 26)} ${f(cx - 30)},${f(T + 10)} Z`
  );
}

function patternDef(p: MaskParams, fill: string): string {
  const c = fill;
  switch (p.pattern) {
    case "stripes":
      return `<pattern id="pt" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(35)"><rect width="2.4" height="6" fill="${c}"/></pattern>`;
    case "dots":
      return `<pattern id="pt" width="7" height="7" patternUnits="userSpaceOnUse"><circle cx="3.5" cy="3.5" r="1.4" fill="${c}"/></pattern>`;
    case "checks":
      return `<pattern id="pt" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="4" height="4" fill="${c}"/><rect x="4" y="4" width="4" height="4" fill="${c}"/></pattern>`;
    default:
      return "";
  }
}

/** Fold lines, seams, nose clip and valve: darkening/lightening strokes over the body. */
function details(p: MaskParams): string {
  const cx = 56;
  const T = p.top;
  const dark = (d: string, w: number, o: number): string =>
    `<path d="${d}" fill="none" stroke="black" stroke-opacity="${o}" stroke-width="${w}"/>`;
  const light = (d: string, w: number, o: number): string =>
    `<path d="${d}" fill="none" stroke="white" stroke-opacity="${o}" stroke-width="${w}"/>`;
  const out: string[] = [];
  if (p.kind === "surgical") {
    for (const dy of [14, 25, 36]) {
      const y = T + dy;
      const d = `M${f(cx - p.halfWidth + 2)},${f(y + 3)} Q${f(cx)},${f(y - 3)} ${f(cx + p.halfWidth - 2)},${f(y + 3)}`;
      out.push(
        dark(d, 1.6, 0.22),
        light(
          d.replace(/,([\d.]+)/g, (_, v: string) => `,${f(Number(v) + 1.6)}`),
          1,
          0.18,
        ),
      );
    }
    out.push(
      `<rect x="${f(cx - 12)}" y="${f(T - 0.5)}" width="24" height="2.2" rx="1" fill="black" fill-opacity="0.12"/>`,
    );
  } else if (p.kind === "cloth") {
    out.push(dark(`M${cx},${f(T - 1)} Q${cx + 1.5},${f(T + 25)} ${cx},${f(p.bottom)}`, 1.2, 0.3));
  } else {
    out.push(dark(`M${cx},${f(T - 1)} L${cx},${f(p.bottom)}`, 1, 0.25));
    out.push(dark(`M${f(cx - 36)},${f(T + 24)} Q${cx},${f(T + 18)} ${f(cx + 36)},${f(T + 24)}`, 1.2, 0.2));
    out.push(
      `<rect x="${f(cx - 9)}" y="${f(T + 1.5)}" width="18" height="2.6" rx="1.3" fill="rgb(150,150,150)"/>`,
    );
    if (p.valve)
      out.push(
        `<circle cx="${cx + 16}" cy="${f(T + 32)}" r="7" fill="rgb(210,210,210)" stroke="black" stroke-opacity="0.35"/>`,
        `<circle cx="${cx + 16}" cy="${f(T + 32)}" r="3.5" fill="none" stroke="black" stroke-opacity="0.3"/>`,
      );
  }
  return out.join("");
}

export interface SvgOptions {
  /** Canvas size in pixels (default 112x112). */
  width?: number;
  height?: number;
  /** Template -> image map (default identity: an aligned 112x112 face). */
  transform?: Affine;
  /**
   * Render the body white and patterns in magenta (255,0,255) so that a renderer can recolour
   * the result: luminance carries the shading, the green deficit marks the pattern.
   */
  recolourable?: boolean;
}

/** The mask as a standalone SVG document. */
export function maskSvg(p: MaskParams, o: SvgOptions = {}): string {
  const w = o.width ?? 112;
  const h = o.height ?? 112;
  const m = o.transform ?? IDENTITY;
  const body = o.recolourable ? "rgb(255,255,255)" : rgb(p.colour);
  const pat = o.recolourable ? "rgb(255,0,255)" : rgb(p.patternColour);
  const strap = o.recolourable ? "rgb(255,255,255)" : rgb(p.kind === "surgical" ? [240, 240, 240] : p.colour);
  const d = outline(p);
  const cx = 56;
  const straps = p.straps
    ? [
        `M${f(cx - 33)},${f(p.top + 7)} Q14,${f(p.top + 1)} 3,${f(p.top - 2)}`,
        `M${f(cx + 33)},${f(p.top + 7)} Q98,${f(p.top + 1)} 109,${f(p.top - 2)}`,
        `M${f(cx - p.halfWidth + 1)},100 Q12,96 2,90`,
        `M${f(cx + p.halfWidth - 1)},100 Q100,96 110,90`,
      ]
        .map(
          (s) =>
            `<path d="${s}" fill="none" stroke="${strap}" stroke-width="1.7" stroke-linecap="round"/>` +
            `<path d="${s}" fill="none" stroke="black" stroke-opacity="0.18" stroke-width="0.6"/>`,
        )
        .join("")
    : "";
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">` +
    `<defs>${patternDef(p, pat)}` +
    `<linearGradient id="side" x1="0" x2="1" y1="0" y2="0">` +
    `<stop offset="0" stop-color="black" stop-opacity="0.34"/><stop offset="0.3" stop-color="black" stop-opacity="0.04"/>` +
    `<stop offset="0.7" stop-color="black" stop-opacity="0.04"/><stop offset="1" stop-color="black" stop-opacity="0.34"/></linearGradient>` +
    `<linearGradient id="low" x1="0" x2="0" y1="0" y2="1">` +
    `<stop offset="0.45" stop-color="black" stop-opacity="0"/><stop offset="1" stop-color="black" stop-opacity="0.22"/></linearGradient>` +
    `<clipPath id="body"><path d="${d}"/></clipPath></defs>` +
    `<g transform="matrix(${m.map((v) => v.toFixed(5)).join(" ")}) rotate(${f(p.rotation)} 56 90)">` +
    straps +
    `<path d="${d}" fill="${body}"/>` +
    `<g clip-path="url(#body)">` +
    (p.pattern !== "plain" ? `<rect x="0" y="0" width="112" height="140" fill="url(#pt)"/>` : "") +
    details(p) +
    `<rect x="${f(cx - p.halfWidth - 8)}" y="${f(p.top - 10)}" width="${f(2 * p.halfWidth + 16)}" height="80" fill="url(#side)"/>` +
    `<rect x="0" y="${f(p.top - 10)}" width="112" height="${f(p.bottom - p.top + 12)}" fill="url(#low)"/>` +
    `</g><path d="${d}" fill="none" stroke="black" stroke-opacity="0.25" stroke-width="0.9"/>` +
    `</g></svg>`
  );
}
