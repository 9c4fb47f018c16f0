// `npm ci --omit=dev` must give a working mfr: every package the runtime imports (bin/ and src/)
// has to be a dependency, not a devDependency, or a production install fails at the first import.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { isBuiltin } from "node:module";
import path from "node:path";
import { root } from "../helpers/mfr.ts";

function files(dir: string, ext: RegExp): string[] {
  return fs
    .readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => ext.test(f))
    .map((f) => path.join(dir, f));
}

/**
 * Package names of the bare specifiers a module loads at run time. Type-only imports are erased;
 * comment lines are skipped (they quote paths and code).
 */
function runtimePackages(source: string): string[] {
  const code = source
    .split("\n")
    .filter((l) => !/^\s*(\/\/|\/\*|\*)/.test(l))
    .join("\n")
    .replace(/\b(?:import|export)\s+type\s[^;]*?\bfrom\s*["'][^"']+["']/gs, "");
  const found = new Set<string>();
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\(\s*|\bimport\.meta\.resolve\(\s*)["']([^"']+)["']/g;
  for (const [, spec] of code.matchAll(re)) {
    if (/^[./]/.test(spec!) || spec!.includes(":") || isBuiltin(spec!)) continue;
    const parts = spec!.split("/");
    found.add(spec!.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!);
  }
  return [...found];
}

test("runtimePackages finds static, dynamic and require imports, not types or builtins", () => {
  const src = [
    'import { a } from "pkg-a";',
    'import type { T } from "types-only";',
    "import {\n  b,\n  type C,\n} from '@scope/pkg-b/sub';",
    'const c = await import("pkg-c");',
    'const d = require("pkg-d");',
    'import "pkg-e/register";',
    'const u = import.meta.resolve("pkg-f/api");',
    'import fs from "node:fs"; import os from "os"; import x from "./local.ts";',
    '// a comment quoting import("not-a-dep") and a path read from ("not-a-dep/file")',
    ' * read from ("also-not/property")',
  ].join("\n");
  assert.deepEqual(runtimePackages(src).sort(), [
    "@scope/pkg-b",
    "pkg-a",
    "pkg-c",
    "pkg-d",
    "pkg-e",
    "pkg-f",
  ]);
});

test("every package bin/ and src/ import at run time is a dependency", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
  };
  const deps = new Set(Object.keys(pkg.dependencies ?? {}));
  const missing: string[] = [];
  const sources = [...files("bin", /\.js$/), ...files("src", /\.ts$/)];
  assert.ok(sources.length > 50, `only ${sources.length} sources found`);
  for (const f of sources) {
    for (const p of runtimePackages(fs.readFileSync(path.join(root, f), "utf8")))
      if (!deps.has(p)) missing.push(`${f} imports ${p}`);
  }
  assert.deepEqual(missing, [], "not in package.json dependencies");
});
