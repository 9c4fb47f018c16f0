// What every Node process mfr starts needs before its program runs: the CLI itself (bin/mfr.js),
// its ranks, and user scripts launched with `mfr launch -- node script.ts` (as --import). It
// registers tsx's loader for TypeScript (ES modules and CommonJS, so a package of a user's
// written either way loads) with .ts files outside any package loaded as ES modules
// (ts-esm-hooks.js), and stops this process when the process that started it dies
// (src/distributed/parent.ts).
import { register } from "node:module";
import { register as registerEsm } from "tsx/esm/api";
import { register as registerCjs } from "tsx/cjs/api";

registerEsm();
registerCjs();
register("./ts-esm-hooks.js", import.meta.url);
const { stopWithParent } = await import("../src/distributed/parent.ts");
stopWithParent();
