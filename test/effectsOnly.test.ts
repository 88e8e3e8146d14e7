/**
 * One place switches agents: only the session effects (src/call/effects.ts) act on the session.
 * Every other part asks the machine, which names an effect, which runs there. A source check:
 * a call to `updateAgent` anywhere in src/, or to a session's `say`, `generateReply` or `close`
 * anywhere else in src/call/, fails it with the file and the line.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');
const EFFECTS = 'src/call/effects.ts';

/** What acts on the session, and where no file but effects.ts may do it. */
const SESSION_ACTIONS: { name: string; pattern: RegExp; within: string }[] = [
  { name: 'updateAgent', pattern: /\.updateAgent\s*\(/, within: 'src/' },
  { name: 'say', pattern: /\.say\s*\(/, within: 'src/call/' },
  { name: 'generateReply', pattern: /\.generateReply\s*\(/, within: 'src/call/' },
  { name: 'close', pattern: /session\s*\.close\s*\(/i, within: 'src/call/' },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [relative(ROOT, path)] : [];
  });
}

/** The code without its comments (a doc comment may name `session.updateAgent(...)`). */
function code(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** `file:line` of every match of `pattern` in the code of `file`. */
function callsIn(file: string, pattern: RegExp): string[] {
  return code(file)
    .split('\n')
    .flatMap((line, index) => (pattern.test(line) ? [`${file}:${index + 1}`] : []));
}

describe('one place acts on the session', () => {
  const files = sourceFiles(SRC);

  it('finds the source and the effects module', () => {
    expect(files).toContain(EFFECTS);
    expect(files.filter((file) => file.startsWith('src/call/')).length).toBeGreaterThan(10);
  });

  for (const { name, pattern, within } of SESSION_ACTIONS) {
    it(`calls ${name} on the session only in ${EFFECTS}`, () => {
      // The check can see the call where it belongs: the pattern is not vacuous.
      expect(callsIn(EFFECTS, pattern).length).toBeGreaterThan(0);
      const elsewhere = files
        .filter((file) => file.startsWith(within) && file !== EFFECTS)
        .flatMap((file) => callsIn(file, pattern));
      expect(elsewhere).toEqual([]);
    });
  }
});
