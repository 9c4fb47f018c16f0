// A small analytic rasteriser for synthetic faces: every pixel is mapped back into ArcFace
// template space (undoing the image's pose) and the face's parts are evaluated there as soft-edged
// shapes, lit by a directional light on an ellipsoidal head. Plain JS over 112x112 pixels (~1 ms
// per face) is far faster than rendering an SVG per image, and needs no canvas library.
import { Rng, hash32 } from "../rng.ts";
import type { Identity, RGB, Variation } from "./face.ts";

const BLUSH: RGB = [220, 110, 110];
const MOLE: RGB = [70, 45, 35];
const WHITE: RGB = [255, 255, 255];
const MOUTH: RGB = [60, 18, 24];
const SCLERA: RGB = [232, 228, 222];
const PUPIL: RGB = [12, 10, 10];
const LENS: RGB = [200, 215, 230];

/** sqrt(a^2 + b^2); Math.hypot is several times slower in V8's hot loops. */
const len = (a: number, b: number): number => Math.sqrt(a * a + b * b);
/** hash32 of three numbers without the rest-parameter array (called per beard pixel). */
function hash3(a: number, b: number, c: number): number {
  return mix32(mix32(mix32(0x9e3779b9, a), b), c) >>> 0;
}
function mix32(h: number, x: number): number {
  h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);
/** Coverage of a shape at signed distance d (px, negative inside), ~1 px anti-aliasing. */
const cover = (d: number): number => clamp01(0.5 - d);

/** Renders one face as HWC RGB bytes of `size` x `size` (template scaled to the size). */
export function renderFace(id: Identity, v: Variation, size = 112, noiseSeed = 0): Uint8Array {
  const k = size / 112;
  const img = new Float32Array(size * size * 3);
  const cx = 56;
  const cy = 60;
  const cos = Math.cos(-v.rotation);
  const sin = Math.sin(-v.rotation);
  const [lx, ly, lz] = v.light;
  const hairSeed = hash32(id.hairline * 1000, id.faceW * 1000);
  const tiltCos = Math.cos(id.eyeTilt);
  const tiltSin = Math.sin(id.eyeTilt);
  // Wavy hair strands: sin over the face's rows, tabulated (trig per pixel was a visible cost).
  const wave = Float32Array.from({ length: 160 }, (_, i) => Math.sin((i - 20) * 0.18) * 1.2);
  const waveAt = (w: number): number => wave[Math.max(0, Math.min(159, (w + 20.5) | 0))]!;
  const hairWave = Float32Array.from(
    { length: 640 },
    (_, i) => 1.5 * Math.sin((i / 4 - 20) * 0.35 + (hairSeed % 11)),
  );
  const hairWaveAt = (u: number): number => hairWave[Math.max(0, Math.min(639, ((u + 20) * 4 + 0.5) | 0))]!;
  const bgDx = Math.cos(v.bgAngle);
  const bgDy = Math.sin(v.bgAngle);
  // Feature anchors after yaw/pitch (inner features slide over the head's outline).
  const eyeX = [cx - 17.6 - id.eyeDX + v.yaw * 4, cx + 17.6 + id.eyeDX + v.yaw * 4];
  const eyeY = 51.6 + id.eyeDY + v.pitch * 2;
  const noseX = cx + v.yaw * 7;
  const noseY = id.noseY + v.pitch * 3;
  const mX = cx + v.yaw * 4.5;
  const mY = id.mouthY + v.pitch * 2.5;
  const eyeRY = id.eyeRY * v.eyeOpen;
  const headH = (vv: number): number => (vv <= cy ? cy - id.faceTop : id.chinY - cy);
  const widthAt = (vv: number): number => {
    if (vv <= cy) {
      const t = (cy - vv) / (cy - id.faceTop);
      return t >= 1 ? 0 : id.faceW * Math.sqrt(1 - t * t);
    }
    const t = (vv - cy) / (id.chinY - cy);
    return t >= 1 ? 0 : id.faceW * Math.pow(1 - Math.pow(t, id.jaw), 1 / id.jaw);
  };
  // The head's half width by height, tabulated every 1/4 px (pow per pixel is costly).
  const LUT_STEP = 4;
  const widths = Float32Array.from({ length: 140 * LUT_STEP }, (_, i) => widthAt(i / LUT_STEP - 10));
  const halfWidth = (vv: number): number => {
    const i = ((vv + 10) * LUT_STEP + 0.5) | 0;
    return i < 0 || i >= widths.length ? 0 : (widths[i] as number);
  };
  const lit = (nx: number, ny: number, nz: number): number =>
    v.ambient + (1 - v.ambient) * Math.max(0, nx * lx + ny * ly + nz * lz);
  const P = new Float64Array(3); // the pixel being composited
  const mix = (c: RGB, a: number, shade = 1): void => {
    if (a <= 0) return;
    P[0] = P[0]! + (c[0] * shade - P[0]!) * a;
    P[1] = P[1]! + (c[1] * shade - P[1]!) * a;
    P[2] = P[2]! + (c[2] * shade - P[2]!) * a;
  };
  const darken = (f: number, a: number): void => {
    if (a <= 0) return;
    const m = 1 - (1 - f) * a;
    P[0] = P[0]! * m;
    P[1] = P[1]! * m;
    P[2] = P[2]! * m;
  };

  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const X = (px + 0.5) / k;
      const Y = (py + 0.5) / k;
      // Background: a two-colour gradient in image space.
      const t = clamp01(((X - 56) * bgDx + (Y - 56) * bgDy) / 112 + 0.5);
      P[0] = v.bgA[0] + (v.bgB[0] - v.bgA[0]) * t;
      P[1] = v.bgA[1] + (v.bgB[1] - v.bgA[1]) * t;
      P[2] = v.bgA[2] + (v.bgB[2] - v.bgA[2]) * t;
      // Undo the pose: image -> template space.
      const dx = (X - cx - v.tx) / v.scale;
      const dy = (Y - cy - v.ty) / v.scale;
      const u = cx + cos * dx - sin * dy;
      const w = cy + sin * dx + cos * dy;
      const au = Math.abs(u - cx);
      // Neck and ears sit behind the head.
      if (w > cy && au < id.faceW * 0.62) mix(id.skin, cover(au - id.faceW * 0.55), 0.55 * v.ambient + 0.25);
      const earDx = au - (id.faceW + id.earSize * 0.2);
      const earDy = w - 68;
      const earR = len(earDx / (id.earSize * 0.45), earDy / id.earSize);
      if (earR < 1.3) mix(id.skin, cover((earR - 1) * id.earSize * 0.45), 0.75);
      // Hair around the skull.
      if (!id.bald && w < id.hairSides) {
        const vol = id.hairVolume;
        const tt = (cy - w) / (cy - id.faceTop + vol);
        const hw = w > cy ? id.faceW + vol * 0.6 : tt >= 1 ? 0 : (id.faceW + vol) * Math.sqrt(1 - tt * tt);
        if (hw > 0) {
          const strand = hash3(Math.floor(u * 1.3 + waveAt(w)), 7, hairSeed) / 4294967296;
          const sh = (0.78 + 0.22 * strand) * (0.7 + 0.3 * lit((u - cx) / hw, -0.5, 0.6));
          mix(id.hair, cover(au - hw) * cover(w - id.hairSides), sh);
        }
      }
      // The head: an ellipsoid-ish surface, lit.
      const hwid = halfWidth(w);
      const headCov = hwid > 0 ? cover(au - hwid) : 0;
      if (headCov > 0) {
        const nx = (u - cx) / (id.faceW + 2);
        const ny = ((w - cy) / headH(w)) * 0.8;
        const nz = Math.sqrt(Math.max(0.04, 1 - nx * nx - ny * ny));
        const shade = lit(nx, ny, nz);
        mix(id.skin, headCov, shade);
        // Cheek blush.
        if (Math.abs(au - 22) < 9 && Math.abs(w - 78) < 6) {
          const bl = len((au - 22) / 9, (w - 78) / 6);
          if (bl < 1) mix(BLUSH, id.blush * (1 - bl) * headCov, shade);
        }
        // Moles.
        for (let m = 0; m < id.moles.length; m++) {
          const mole = id.moles[m]!;
          const mx = mole[0];
          const my = mole[1];
          const mr = mole[2];
          const d = len(u - mx - v.yaw * 3, w - my);
          if (d < mr + 1) mix(MOLE, cover(d - mr) * 0.8, shade);
        }
        // Nose: side shadow away from the light, nostrils, shadow under the tip.
        if (w > eyeY + 3 && w < noseY + 4) {
          const side = lx >= 0 ? -1 : 1;
          const bx = noseX + side * (2.5 + ((w - eyeY) / (noseY - eyeY)) * 2.5);
          darken(0.78, clamp01(1 - Math.abs(u - bx) / 2.2) * Math.abs(lx) * 1.5);
        }
        // (Bounding boxes first: most head pixels are far from the nose.)
        if (Math.abs(w - noseY - 1) < 6 && Math.abs(u - noseX) < id.noseW + 6) {
          for (let sgn = -1; sgn <= 1; sgn += 2) {
            const d = len((u - noseX - sgn * id.noseW * 0.55) / 1.9, (w - noseY - 1) / 1.1);
            if (d < 1.6) darken(0.4, cover((d - 1) * 1.1));
          }
          const d = len((u - noseX) / (id.noseW + 1), (w - noseY - 3) / 1.6);
          if (d < 1.2) darken(0.82, 1 - d / 1.2);
          const hl = len(u - noseX + lx * 1.5, w - noseY + 2.5);
          if (hl < 2.5) mix(WHITE, 0.12 * (1 - hl / 2.5));
        }
        // Beard / moustache: soft-edged regions, textured with per-position noise that moves
        // with the face.
        if (id.beard && w > noseY - 16) {
          const kind = id.beard.kind;
          const du = u - mX;
          const lipTop = mY - id.lipThick;
          // Between nose and upper lip, narrowing upwards.
          const must =
            cover(noseY + 2 - w) *
            cover(w - lipTop + 0.5) *
            cover(Math.abs(du) - (id.mouthW + 1.5 - (lipTop - w) * 0.4));
          let cov = must;
          if (kind === "goatee") {
            const gr = len(du / 8, (w - mY - id.lipThick - 6) / 9);
            cov = Math.max(cov, cover((gr - 1) * 8));
          } else if (kind === "full" || kind === "stubble") {
            // Below a line from the sideburns (high at the sides) to under the nose.
            const top = noseY + 2 - ((au * au) / (id.faceW * id.faceW)) * 14;
            cov = Math.max(cov, cover(top - w) * cover(w - id.chinY + 1));
          }
          if (cov > 0) {
            const n = hash3(Math.round(u * 2), Math.round(w * 2), hairSeed) / 4294967296;
            const grain = kind === "stubble" ? 0.25 + 0.75 * n * n : 0.6 + 0.4 * n;
            mix(id.hair, id.beard.density * grain * cov * headCov, shade * 0.8);
          }
        }
        // Mouth.
        const sm = (u - mX) / id.mouthW;
        if (Math.abs(sm) < 1.05) {
          const s2 = sm * sm;
          const line = mY - v.smile * 2.2 * s2 + v.smile * 1.1;
          const open = v.mouthOpen * 5 * (1 - s2);
          const edge = cover((Math.abs(sm) - 1) * id.mouthW);
          const up = id.lipThick * 0.8 * (1 - s2 * s2);
          const lo = id.lipThick * (1 - s2 * s2);
          if (w > line - up - 1 && w < line + open + lo + 1) {
            mix(id.lips, edge * cover(line - up - w) * cover(w - line), shade);
            mix(id.lips, edge * cover(line + open - w) * cover(w - line - open - lo), shade * 1.08);
            if (open > 0.2) mix(MOUTH, edge * cover(line - w) * cover(w - line - open));
            darken(0.55, edge * clamp01(1 - Math.abs(w - line) / 0.7) * (open > 0.2 ? 0 : 1));
          }
        }
        // Eyes and brows.
        for (let e = 0; e < 2; e++) {
          const sgn = e === 0 ? -1 : 1;
          const ex = eyeX[e] as number;
          const tc = tiltCos;
          const ts = sgn * tiltSin;
          const a = (u - ex) * tc + (w - eyeY) * ts;
          const bb = -(u - ex) * ts + (w - eyeY) * tc;
          if (Math.abs(a) < id.eyeRX * 1.8 && Math.abs(bb) < 9) {
            const socket = len(a / (id.eyeRX * 1.5), (bb + 1.5) / (id.eyeRY * 2.6));
            if (socket < 1) darken(0.84, 1 - socket);
            const er = len(a / id.eyeRX, bb / Math.max(0.3, eyeRY));
            const eyeCov = cover((er - 1) * Math.max(0.6, eyeRY));
            if (eyeCov > 0) {
              mix(SCLERA, eyeCov, shade * 0.95);
              const ir = len(a - v.yaw * 1.5, bb);
              const ri = id.eyeRY * 1.05;
              mix(id.iris, eyeCov * cover(ir - ri), shade);
              mix(PUPIL, eyeCov * cover(ir - ri * 0.45));
              const gl = len(a - v.yaw * 1.5 + 0.8, bb + 0.8);
              mix(WHITE, eyeCov * cover(gl - 0.6) * 0.8);
            }
            // Upper lid and lashes: a dark line along the top of the opening.
            if (bb <= 0.5 && er > 0.75 && er < 1.35)
              darken(0.3, clamp01(1 - Math.abs(er - 1.05) / 0.28) * clamp01(1.2 - Math.abs(a) / id.eyeRX));
          }
          const bxc = ex + sgn * 1.5;
          const byc = eyeY - id.browGap - v.browRaise * 1.5;
          const tb = (u - bxc) / id.browLen;
          if (Math.abs(tb) < 1.1 && w < byc + 5 && w > byc - id.browArch - 5) {
            const yc = byc - id.browArch * (1 - tb * tb) + Math.max(0, sgn * tb) * 1.5;
            const th = id.browThick * (1 - 0.55 * Math.max(0, sgn * tb));
            mix(
              id.hair,
              cover(Math.abs(w - yc) - th / 2) * cover((Math.abs(tb) - 1) * id.browLen) * 0.9,
              0.75,
            );
          }
        }
        // Hair over the forehead and the sides of the face.
        if (!id.bald) {
          const rel = au / id.faceW;
          const line = id.hairline + 6 * rel * rel + hairWaveAt(u);
          const side = rel > 0.84 && w < id.hairSides ? cover((0.84 - rel) * id.faceW) : 0;
          const front = cover(w - line);
          // Strands: streaks along the hair's fall, slightly wavy.
          const strand = hash3(Math.floor(u * 1.3 + waveAt(w)), 7, hairSeed) / 4294967296;
          const n = 0.78 + 0.22 * strand;
          mix(
            id.hair,
            Math.max(front, side) * headCov,
            n * (0.7 + 0.3 * lit((u - cx) / id.faceW, -0.6, 0.6)),
          );
        }
      }
      // Glasses sit in front of everything.
      if (id.glasses) {
        const gl = id.glasses;
        for (let e = 0; e < 2; e++) {
          const ex = eyeX[e] as number;
          const rx = gl.round ? 8.5 : 10.5;
          const ry = gl.round ? 8.5 : 7.2;
          const a = Math.abs(u - ex) / rx;
          const bb = Math.abs(w - eyeY - 1) / ry;
          if (a > 1.4 || bb > 1.4) continue;
          const rr = gl.round ? len(a, bb) : Math.sqrt(Math.sqrt(a * a * a * a + bb * bb * bb * bb));
          if (rr < 1) mix(LENS, 0.1);
          mix(gl.colour, cover(Math.abs(rr - 1) * ry - gl.thick / 2));
        }
        const bridge = Math.abs(w - eyeY + 1) - gl.thick / 2;
        const inner = (eyeX[1] as number) - (eyeX[0] as number) - 2 * (gl.round ? 8.5 : 10.5);
        if (Math.abs(u - (eyeX[0]! + eyeX[1]!) / 2) < inner / 2 + 0.5) mix(gl.colour, cover(bridge));
        const armX = gl.round ? 8.5 : 10.5;
        if (au > 56 - eyeX[0]! + armX - 0.5 && au < id.faceW + 3)
          mix(gl.colour, cover(Math.abs(w - eyeY + 2) - gl.thick / 2));
      }
      const o = 3 * (py * size + px);
      img[o] = P[0]! * v.tint[0];
      img[o + 1] = P[1]! * v.tint[1];
      img[o + 2] = P[2]! * v.tint[2];
    }
  }
  if (v.blur > 0.25) gaussianBlur(img, size, v.blur * k);
  const out = new Uint8Array(size * size * 3);
  // Sensor noise: sum of two uniforms (triangular, sd ~ amp / 2.45) from an inline xorshift32;
  // a PRNG object call per channel was the renderer's largest cost.
  let st = (new Rng(noiseSeed).u32() | 1) >>> 0;
  const amp = v.noise * 2.45;
  for (let i = 0; i < out.length; i++) {
    st ^= st << 13;
    st ^= st >>> 17;
    st ^= st << 5;
    const n = amp > 0 ? (((st & 0xffff) + (st >>> 16)) / 65536 - 1) * amp : 0;
    const x = (img[i] as number) + n;
    out[i] = x < 0 ? 0 : x > 255 ? 255 : x + 0.5;
  }
  return out;
}

/** Separable gaussian blur of an HWC float image, in place (edges clamped). */
function gaussianBlur(img: Float32Array, size: number, sigma: number): void {
  const rad = Math.ceil(sigma * 2.5);
  const kk = new Float32Array(2 * rad + 1);
  let sum = 0;
  for (let i = 0; i <= 2 * rad; i++) sum += kk[i] = Math.exp(-((i - rad) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i <= 2 * rad; i++) kk[i]! /= sum;
  const tmp = new Float32Array(img.length);
  const line = new Float32Array((size + 2 * rad) * 3);
  for (let pass = 0; pass < 2; pass++) {
    const src = pass === 0 ? img : tmp;
    const dst = pass === 0 ? tmp : img;
    // pass 0 blurs along x (stride 3), pass 1 along y (stride 3 * size).
    const step = pass === 0 ? 3 : 3 * size;
    const across = pass === 0 ? 3 * size : 3;
    for (let l = 0; l < size; l++) {
      const base = l * across;
      for (let i = -rad; i < size + rad; i++) {
        const j = i < 0 ? 0 : i >= size ? size - 1 : i;
        const o = base + j * step;
        const q = (i + rad) * 3;
        line[q] = src[o]!;
        line[q + 1] = src[o + 1]!;
        line[q + 2] = src[o + 2]!;
      }
      for (let i = 0; i < size; i++) {
        let a0 = 0,
          a1 = 0,
          a2 = 0;
        for (let t = 0, q = i * 3; t <= 2 * rad; t++, q += 3) {
          const kv = kk[t]!;
          a0 += line[q]! * kv;
          a1 += line[q + 1]! * kv;
          a2 += line[q + 2]! * kv;
        }
        const o = base + i * step;
        dst[o] = a0;
        dst[o + 1] = a1;
        dst[o + 2] = a2;
      }
    }
  }
}
