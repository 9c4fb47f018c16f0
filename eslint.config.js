import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    ignores: ["node_modules/", "native/build/", "runs/", "bench/out/", "native/*.cjs"],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type information for the promise rules: the loader, the launcher and the evaluation are
    // async, and a promise nobody awaits loses its error (or hangs a run) without a trace.
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test's test() and describe() return promises the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "describe", "it", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
  {
    // tsc type-checks these JavaScript files (checkJs), which knows Node's globals; ESLint's
    // no-undef would need them listed again.
    files: ["**/*.js", "**/*.mjs"],
    rules: { "no-undef": "off" },
  },
);
