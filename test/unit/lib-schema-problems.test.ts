/**
 * firmware/lib/schema-problems.ts: the one way a JSON text is read against its schema. Every reader of a
 * JSON file or answer (update manifest and records, Moat's answers and job files, the stored built-in
 * bridges) throws through it, so its messages and limits are checked here once.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import t from 'tap';
import { isObxError } from '../../firmware/errors.js';
import { parseJsonChecked, problemSummary, schemaProblems } from '../../firmware/lib/schema-problems.js';

const Doc = Type.Object(
  { name: Type.String({ minLength: 1 }), count: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);
const check = TypeCompiler.Compile(Doc);

t.test('a document that holds comes back as it was', async (t) => {
  t.same(parseJsonChecked('{"name":"a","count":2}', check, 'TOR_VALUE_INVALID'), { name: 'a', count: 2 });
});

t.test('each way to be wrong: the named error, the reason, nothing returned', async (t) => {
  const cases: [string, string, { maxBytes?: number; what?: string }, RegExp][] = [
    ['not JSON', '{"name":', {}, /: not JSON$/],
    ['empty', '', {}, /: not JSON$/],
    [
      'too long, refused before parsing',
      `{"name":"${'x'.repeat(100)}"}`,
      { maxBytes: 64 },
      /: longer than 64 bytes$/,
    ],
    [
      'a multi-byte text counted in bytes',
      `{"name":"${'é'.repeat(40)}","count":1}`,
      { maxBytes: 64 },
      /longer/,
    ],
    ['a field of the wrong type', '{"name":"a","count":"2"}', {}, /: \/count /],
    ['a missing field', '{"count":1}', {}, /: \/name /],
    ['an unknown field', '{"name":"a","count":1,"x":1}', {}, /: \/x /],
    ['an array', '[1]', {}, /: \/ /],
    ['named by what', 'nope', { what: 'moat job' }, /: moat job: not JSON$/],
  ];
  for (const [what, text, opts, message] of cases) {
    try {
      parseJsonChecked(text, check, 'UPDATE_MANIFEST_INVALID', opts);
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.ok(isObxError(err, 'UPDATE_MANIFEST_INVALID'), `${what}: the caller's error`);
      t.match((err as Error).message, message, what);
    }
  }
});

t.test('schema problems carry every path in the details, the summary the first three', async (t) => {
  const doc = { name: '', count: -1, a: 1, b: 2 };
  const problems = schemaProblems(check, doc);
  t.ok(Object.keys(problems).length >= 3);
  try {
    parseJsonChecked(JSON.stringify(doc), check, 'TOR_VALUE_INVALID');
    t.fail('accepted');
  } catch (err) {
    t.same((err as { details?: unknown }).details, problems);
    t.ok((err as Error).message.endsWith(problemSummary(problems)));
  }
});
