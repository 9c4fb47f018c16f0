// The fenced code blocks of a Markdown file, and the shell commands of a ```sh block: what
// test/docs/commands.test.ts runs. Only what the docs use is handled: ``` fences (indented inside a
// list item or not) with an info string, `\` line continuations and `#` comments outside quotes.

export interface FencedBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The info string's first word: "sh", "text", "ts"… ("" for an untagged fence). */
  lang: string;
  /** The lines between the fences, with the fence's indentation removed. */
  lines: string[];
}

export function fencedBlocks(file: string, markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,})\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      if (l.trimStart().startsWith(fence!) && l.trim() === l.trim().replace(/[^`]/g, "")) break;
      body.push(l.startsWith(indent!) ? l.slice(indent!.length) : l.trimStart());
    }
    if (j === lines.length) throw new Error(`${file}:${i + 1}: the code fence is never closed`);
    blocks.push({ file, line: i + 1, lang: lang!, lines: body });
    i = j;
  }
  return blocks;
}

export interface ShellCommand {
  /** 1-based line in the Markdown file where the command starts. */
  line: number;
  /** The command's physical lines, as written (continuations included). */
  raw: string[];
  /** The command without its trailing comment, continuations joined by a space: the table key. */
  text: string;
}

/** Index of the `#` that starts a comment in a shell line (outside quotes, after a blank), or -1. */
function commentStart(line: string): number {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "\\") i++;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return i;
  }
  return -1;
}

/**
 * The commands of a shell block, one per logical line (physical lines joined at a trailing `\`);
 * comment-only and blank lines are not commands (they stay in the script).
 */
export function shellCommands(block: FencedBlock): ShellCommand[] {
  const out: ShellCommand[] = [];
  for (let i = 0; i < block.lines.length; i++) {
    const start = i;
    const raw = [block.lines[i]!];
    while (/\\$/.test(block.lines[i]!) && i + 1 < block.lines.length) raw.push(block.lines[++i]!);
    const text = raw
      .map((l) => l.replace(/\\$/, ""))
      .map((l) => {
        const c = commentStart(l);
        return (c < 0 ? l : l.slice(0, c)).trim();
      })
      .filter((l) => l !== "")
      .join(" ");
    if (text !== "") out.push({ line: block.line + 1 + start, raw, text });
  }
  return out;
}

/**
 * The block as a script, each command whose text `replace` maps to a string replaced by it (the
 * rest, comments and blank lines as written).
 */
export function blockScript(block: FencedBlock, replace: (text: string) => string | undefined): string {
  const commands = new Map(shellCommands(block).map((c) => [c.line - block.line - 1, c]));
  const out: string[] = [];
  for (let i = 0; i < block.lines.length; i++) {
    const c = commands.get(i);
    if (!c) {
      out.push(block.lines[i]!);
      continue;
    }
    const r = replace(c.text);
    out.push(...(r === undefined ? c.raw : [r]));
    i += c.raw.length - 1;
  }
  return out.join("\n") + "\n";
}
