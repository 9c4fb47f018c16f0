// Module hooks (node:module register) that load every .ts file as an ES module. Node decides a
// file's format from the nearest package.json ("type"), and with none, as for a config in /tmp or a
// user's script in a folder of their own, a .ts file would be CommonJS: tsx then compiles its
// import/export syntax to require(), which fails on top-level await and, for a file that the ESM
// loader is already importing, with "Cannot require() ES Module ... in a cycle". mfr's TypeScript
// is ESM throughout, so a config or script written the same way must load the same way wherever it
// lives; a CommonJS TypeScript file says so with the .cts extension. Packages keep their own rules.
/** @type {import("node:module").ResolveHook} */
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (
    r.format === "commonjs" &&
    r.url.startsWith("file:") &&
    /\.ts$/.test(r.url) &&
    !/\/node_modules\//.test(r.url)
  )
    return { ...r, format: "module" };
  return r;
}
