// A YAML syntax error as a user can fix it: the line at fault with its
// neighbours and a caret. The parser notices an unclosed [ { or quote only
// where the next line starts; the mistake is where it was opened, so that is
// the line shown.
import type { YAMLError } from 'yaml';

export function describeYamlError(file: string, text: string, e: YAMLError): string {
  const lines = text.split('\n');
  const reason = e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
  let at = e.linePos?.[0] ?? { line: 1, col: 1 };
  const opener = unclosedOpener(text, e);
  if (opener) at = opener;
  const what = opener ? `the ${opener.char} opened here is not closed (${reason})` : reason;
  const from = Math.max(1, at.line - 1);
  const to = Math.min(lines.length, at.line + 1);
  const width = String(to).length;
  const excerpt: string[] = [];
  for (let n = from; n <= to; n++) {
    const mark = n === at.line ? '>' : ' ';
    excerpt.push(`  ${mark} ${String(n).padStart(width)} | ${lines[n - 1]}`);
    if (n === at.line) excerpt.push(`    ${' '.repeat(width)} | ${' '.repeat(Math.max(0, at.col - 1))}^`);
  }
  return `${file}: line ${at.line}, column ${at.col}: ${what}\n${excerpt.join('\n')}`;
}

/** For "must ... end with a ]" and "Missing closing quote": where the unclosed bracket or quote was opened. */
function unclosedOpener(text: string, e: YAMLError): { line: number; col: number; char: string } | null {
  const bracket = /end with an? ([\]}])/.exec(e.message)?.[1];
  const quote = /Missing closing (["'])quote/.exec(e.message)?.[1];
  if (!bracket && !quote) return null;
  const end = e.pos?.[0] ?? text.length;
  const open = bracket === ']' ? '[' : '{';
  // the last opener before the error that nothing closed (quotes inside are skipped)
  const stack: number[] = [];
  let inQuote: string | null = null;
  let quoteAt = -1;
  for (let i = 0; i < end && i < text.length; i++) {
    const c = text[i];
    if (inQuote) {
      if (c === inQuote) inQuote = null;
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      while (i < end && text[i] !== '\n') i++;
      continue;
    }
    if (c === '"' || c === "'") {
      inQuote = c;
      quoteAt = i;
    } else if (bracket && c === open) stack.push(i);
    else if (bracket && c === bracket) stack.pop();
  }
  const i = quote ? (inQuote ? quoteAt : -1) : (stack.at(-1) ?? -1);
  if (i < 0) return null;
  const before = text.slice(0, i);
  const line = before.split('\n').length;
  return { line, col: i - before.lastIndexOf('\n'), char: quote ?? open };
}
