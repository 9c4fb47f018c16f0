// `mfr data info PATH [--json] [--decode]`: what a dataset holds and which samples are broken.
import type { Command } from "commander";
import { inspectDataset } from "../../data/index.ts";

export function registerData(program: Command): void {
  const data = program.command("data").description("inspect datasets");
  data
    .command("info")
    .description("records, identities, images per identity, image sizes and formats, corrupt samples")
    .argument("<path>", "folder with train.rec, a .rec file, an image folder or a .lst list")
    .option("--json", 'print one JSON object {"records","identities","labels":{"min","max"},"corrupt":[...]}')
    .option("--decode", "also decode every image (slower; finds damage inside JPEG data)")
    .action(async (p: string, opts: { json?: boolean; decode?: boolean }) => {
      const info = await inspectDataset(p, {
        decode: !!opts.decode,
        onProgress:
          opts.json || !process.stderr.isTTY ? undefined : (d, t) => process.stderr.write(`\r${d}/${t}`),
      });
      if (!opts.json && process.stderr.isTTY) process.stderr.write("\r\x1b[K");
      if (opts.json) {
        const out = {
          records: info.records,
          identities: info.identities,
          labels: info.labels,
          corrupt: info.corrupt.map((c) => c.id),
        };
        console.log(JSON.stringify(out));
        return;
      }
      const rows: [string, string][] = [
        ["dataset", `${info.source} (${info.kind})`],
        ["records", String(info.records)],
        [
          "identities",
          `${info.identities}` +
            (info.declaredIdentities !== undefined && info.declaredIdentities !== info.identities
              ? ` (declared ${info.declaredIdentities})`
              : ""),
        ],
        ["labels", `${info.labels.min}..${info.labels.max}`],
        [
          "images/identity",
          `min ${info.imagesPerIdentity.min}, median ${info.imagesPerIdentity.median}, max ${info.imagesPerIdentity.max}`,
        ],
        [
          "image sizes",
          Object.entries(info.sizes)
            .map(([k, n]) => `${k} x${n}`)
            .join(", ") || "-",
        ],
        [
          "formats",
          Object.entries(info.formats)
            .map(([k, n]) => `${k} x${n}`)
            .join(", ") || "-",
        ],
        ["corrupt", String(info.corrupt.length)],
      ];
      for (const [k, v] of rows) console.log(`${k.padEnd(16)} ${v}`);
      for (const c of info.corrupt.slice(0, 20)) console.log(`  ${c.where}: ${c.reason}`);
      if (info.corrupt.length > 20)
        console.log(`  ... and ${info.corrupt.length - 20} more (--json lists all)`);
    });
}
