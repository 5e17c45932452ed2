// The Check path is one-way: the wire decoder depends only on the header rules and the facts type,
// the header rules on nothing, decisions (check/) never on the wire format (proto/), and the
// response bytes are built in proto/ from the decision alone. Imports are read with TypeScript's
// own parser, so a type-only import is told apart from one that loads a module at run time.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Import {
  /** Repository-relative path of the imported module (.ts), or the bare package specifier. */
  readonly target: string;
  /** Erased at compile time: `import type`, or named imports that are all `type`. */
  readonly typeOnly: boolean;
}

/** The imports (and re-exports) of a repository file, or of `text` as if it were that file. */
function importsOf(file: string, text = readFileSync(join(ROOT, file), 'utf8')): Import[] {
  const path = join(ROOT, file);
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.ES2022);
  const out: Import[] = [];
  const add = (specifier: ts.Node | undefined, typeOnly: boolean) => {
    if (specifier === undefined || !ts.isStringLiteral(specifier)) return;
    const s = specifier.text;
    const target = s.startsWith('.')
      ? relative(ROOT, resolve(dirname(path), s)).replace(/\.js$/, '.ts')
      : s;
    out.push({ target, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const allTypes =
        clause !== undefined &&
        clause.name === undefined &&
        named !== undefined &&
        ts.isNamedImports(named) &&
        named.elements.length > 0 &&
        named.elements.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, clause?.isTypeOnly === true || allTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function sourcesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f))
    .sort();
}

const isProject = (i: Import) => i.target.startsWith('src/');
const valueImports = (file: string) =>
  importsOf(file)
    .filter((i) => isProject(i) && !i.typeOnly)
    .map((i) => i.target);

describe('the Check path depends one way', () => {
  it('reads imports the way the compiler does (a check of the reader itself)', () => {
    const text = [
      "import type { A } from './a.js';",
      "import { type B, type C } from './b.js';",
      "import { type D, e } from './d.js';",
      "import f from '../proto/f.js';",
      "import * as g from './g.js';",
      "import './h.js';",
      "export { i } from './i.js';",
      "export type { J } from './j.js';",
      "const k = () => import('./k.js');",
      "let l: import('./l.js').L;",
      "import protobuf from 'protobufjs';",
    ].join('\n');
    expect(importsOf('src/check/example.ts', text)).toEqual([
      { target: 'src/check/a.ts', typeOnly: true },
      { target: 'src/check/b.ts', typeOnly: true },
      { target: 'src/check/d.ts', typeOnly: false },
      { target: 'src/proto/f.ts', typeOnly: false },
      { target: 'src/check/g.ts', typeOnly: false },
      { target: 'src/check/h.ts', typeOnly: false },
      { target: 'src/check/i.ts', typeOnly: false },
      { target: 'src/check/j.ts', typeOnly: true },
      { target: 'src/check/k.ts', typeOnly: false },
      { target: 'src/check/l.ts', typeOnly: true },
      { target: 'protobufjs', typeOnly: false },
    ]);
  });

  it('keeps the header rules a leaf: no project module is loaded by them', () => {
    expect(valueImports('src/check/header-rules.ts')).toEqual([]);
  });

  it('lets the wire decoder use only the header rules and the facts type', () => {
    const project = importsOf('src/proto/decode-check-request.ts')
      .filter(isProject)
      .map((i) => i.target);
    expect(project.length).toBeGreaterThan(0);
    for (const target of project)
      expect(['src/check/header-rules.ts', 'src/check/facts.ts']).toContain(target);
  });

  it('builds the response in proto/, never from check/response', () => {
    const files = sourcesUnder('src/proto');
    expect(files).toContain('src/proto/check-response.ts');
    for (const file of files)
      expect(
        importsOf(file).map((i) => i.target),
        file,
      ).not.toContain('src/check/response.ts');
  });

  it('never makes a decision depend on the wire format', () => {
    const files = sourcesUnder('src/check');
    expect(files).toContain('src/check/pipeline.ts');
    for (const file of files) {
      const intoProto = importsOf(file).filter((i) => i.target.startsWith('src/proto/'));
      expect(intoProto, file).toEqual([]);
    }
  });
});
