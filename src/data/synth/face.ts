// Synthetic identities: what stays the same across one person's images (geometry, tones,
// features) and what changes per image (pose, lighting, expression, blur, noise, background).
// Identity lives in many weak cues (spacing, shapes, tones drawn from shared palettes, so no
// single colour gives a person away); per-image changes are large enough that a network has to
// learn the cues rather than memorise pixels.
import { Rng, hash32 } from "../rng.ts";

export type RGB = [number, number, number];

export interface Identity {
  faceW: number; // half width at cheek level
  faceTop: number; // y of the top of the skull
  chinY: number;
  jaw: number; // jaw squareness exponent (1.6 round .. 3 square)
  skin: RGB;
  hair: RGB;
  hairline: number; // y of the hairline at the centre
  hairVolume: number; // how far hair stands out of the skull (px)
  hairSides: number; // how far down the sides hair reaches (y)
  bald: boolean;
  eyeDX: number; // extra half spacing of the eyes
  eyeDY: number;
  eyeRX: number;
  eyeRY: number;
  eyeTilt: number;
  iris: RGB;
  browThick: number;
  browGap: number;
  browArch: number;
  browLen: number;
  noseY: number; // nose tip y
  noseW: number; // nostril half spread
  mouthY: number;
  mouthW: number; // half width
  lipThick: number;
  lips: RGB;
  earSize: number;
  glasses: null | { round: boolean; colour: RGB; thick: number };
  beard: null | { kind: "full" | "goatee" | "moustache" | "stubble"; density: number };
  moles: [number, number, number][]; // x, y, radius in template space
  blush: number;
}

export interface Variation {
  rotation: number; // radians
  scale: number;
  tx: number;
  ty: number;
  yaw: number; // -1..1, shifts inner features sideways
  pitch: number;
  light: [number, number, number];
  ambient: number;
  tint: RGB; // light colour
  smile: number;
  mouthOpen: number;
  eyeOpen: number;
  browRaise: number;
  blur: number; // gaussian sigma in px
  noise: number; // gaussian noise sigma in 0..255 units
  bgA: RGB;
  bgB: RGB;
  bgAngle: number;
  quality: number; // JPEG quality
}

const SKIN: RGB[] = [
  [241, 204, 180],
  [224, 179, 146],
  [198, 148, 112],
  [170, 116, 82],
  [128, 84, 58],
  [92, 60, 42],
  [233, 190, 160],
  [210, 160, 120],
];
const HAIR: RGB[] = [
  [22, 18, 16],
  [48, 32, 22],
  [86, 58, 36],
  [140, 100, 60],
  [196, 160, 100],
  [150, 70, 36],
  [150, 146, 140],
  [210, 206, 200],
];
const IRIS: RGB[] = [
  [70, 44, 26],
  [40, 28, 20],
  [70, 100, 140],
  [80, 110, 80],
  [110, 110, 110],
];

const jit = (rng: Rng, c: RGB, a: number): RGB =>
  c.map((v) => Math.max(0, Math.min(255, v + rng.range(-a, a)))) as RGB;

/** The identity with number `id` of the synthetic population drawn from `seed`. */
export function sampleIdentity(seed: number, id: number): Identity {
  const rng = new Rng(hash32(seed, id, 0x1d));
  const skin = jit(rng, rng.pick(SKIN), 12);
  const hair = jit(rng, rng.pick(HAIR), 10);
  const bald = rng.chance(0.08);
  const moleCount = rng.int(4);
  const beardRoll = rng.next();
  return {
    faceW: rng.range(36, 44),
    faceTop: rng.range(-6, 6),
    chinY: rng.range(106, 117),
    jaw: rng.range(1.6, 3.2),
    skin,
    hair,
    hairline: rng.range(12, 26),
    hairVolume: bald ? 0 : rng.range(1, 9),
    hairSides: rng.range(40, 75),
    bald,
    eyeDX: rng.range(-2.5, 2.5),
    eyeDY: rng.range(-2, 2),
    eyeRX: rng.range(5, 7.2),
    eyeRY: rng.range(2.4, 3.8),
    eyeTilt: rng.range(-0.12, 0.12),
    iris: jit(rng, rng.pick(IRIS), 10),
    browThick: rng.range(1.4, 3.6),
    browGap: rng.range(6, 10),
    browArch: rng.range(0.5, 3.5),
    browLen: rng.range(8, 12),
    noseY: rng.range(68, 75),
    noseW: rng.range(4, 7),
    mouthY: rng.range(89, 96),
    mouthW: rng.range(10.5, 16),
    lipThick: rng.range(1.8, 4.2),
    lips: jit(rng, [skin[0] * 0.82, skin[1] * 0.55, skin[2] * 0.55], 12),
    earSize: rng.range(6, 10),
    glasses: rng.chance(0.2)
      ? {
          round: rng.chance(0.5),
          colour: jit(
            rng,
            rng.pick<RGB>([
              [20, 20, 20],
              [120, 80, 40],
              [160, 160, 170],
            ]),
            10,
          ),
          thick: rng.range(0.8, 1.8),
        }
      : null,
    beard:
      beardRoll < 0.1
        ? { kind: "full", density: rng.range(0.6, 1) }
        : beardRoll < 0.17
          ? { kind: "goatee", density: rng.range(0.6, 1) }
          : beardRoll < 0.25
            ? { kind: "moustache", density: rng.range(0.6, 1) }
            : beardRoll < 0.35
              ? { kind: "stubble", density: rng.range(0.3, 0.6) }
              : null,
    moles: Array.from({ length: moleCount }, () => [
      rng.range(30, 82),
      rng.range(58, 104),
      rng.range(0.8, 1.6),
    ]),
    blush: rng.range(0, 0.25),
  };
}

/** The per-image variation for image `k` of identity `id`. */
export function sampleVariation(seed: number, id: number, k: number): Variation {
  const rng = new Rng(hash32(seed, id, k, 0x7a));
  const a = rng.range(0, 2 * Math.PI);
  const lz = rng.range(0.5, 1);
  const lr = Math.sqrt(1 - lz * lz);
  const bg = (): RGB => [rng.range(20, 235), rng.range(20, 235), rng.range(20, 235)];
  return {
    rotation: rng.normal() * 0.07,
    scale: rng.range(0.93, 1.07),
    tx: rng.normal() * 1.8,
    ty: rng.normal() * 1.8,
    yaw: Math.max(-1, Math.min(1, rng.normal() * 0.35)),
    pitch: Math.max(-1, Math.min(1, rng.normal() * 0.3)),
    light: [lr * Math.cos(a), lr * Math.sin(a) - 0.2, lz],
    ambient: rng.range(0.3, 0.6),
    tint: [rng.range(0.88, 1.08), rng.range(0.9, 1.05), rng.range(0.86, 1.1)],
    smile: rng.range(-0.3, 1),
    mouthOpen: rng.chance(0.3) ? rng.range(0.2, 1) : 0,
    eyeOpen: rng.chance(0.05) ? rng.range(0.05, 0.3) : rng.range(0.65, 1.1),
    browRaise: rng.range(-1, 1),
    blur: rng.chance(0.5) ? rng.range(0.3, 1.3) : 0,
    noise: rng.range(0, 7),
    bgA: bg(),
    bgB: bg(),
    bgAngle: rng.range(0, Math.PI),
    quality: Math.round(rng.range(78, 95)),
  };
}
