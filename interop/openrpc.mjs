// Checks sessiond's OpenRPC document with the OpenRPC project's own tools
// (@open-rpc/schema-utils-js): fetched live with rpc.discover from a
// running server, it must validate against the OpenRPC meta-schema, parse
// and dereference, and every example's params and result must fit the
// method's schemas.
//
//	node interop/openrpc.mjs RPC_URL
//
// Exit status 0 and a summary as JSON on stdout when all holds; 1 and the
// reasons on stderr when not; 2 for a usage error.
import {
  MethodCallValidator,
  parseOpenRPCDocument,
  validateOpenRPCDocument,
} from '@open-rpc/schema-utils-js';

const [url] = process.argv.slice(2);
if (!url) {
  console.error('usage: node openrpc.mjs RPC_URL');
  process.exit(2);
}

const problems = [];
try {
  const resp = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'rpc.discover', id: 1 }),
  });
  const reply = await resp.json();
  if (reply.error || !reply.result) {
    throw new Error(`rpc.discover answered ${JSON.stringify(reply)}`);
  }
  const raw = reply.result;

  const valid = validateOpenRPCDocument(raw);
  if (valid !== true) {
    problems.push(valid.message);
  }
  // Validates again, and resolves every $ref (all internal: nothing is fetched).
  const doc = await parseOpenRPCDocument(JSON.stringify(raw), { validate: true, dereference: true });

  const params = new MethodCallValidator(doc);
  // The same validator over a copy whose only param is each method's
  // result, to check the examples' results against the result schemas.
  const results = new MethodCallValidator({
    ...doc,
    methods: doc.methods.map((m) => ({
      ...m,
      paramStructure: 'by-name',
      params: [{ name: 'result', required: true, schema: m.result.schema }],
    })),
  });

  let examples = 0;
  for (const m of doc.methods) {
    for (const ex of m.examples ?? []) {
      examples++;
      const byName = Object.fromEntries(ex.params.map((p) => [p.name, p.value]));
      const byPosition = ex.params.map((p) => p.value);
      for (const [how, p] of [['by name', byName], ['by position', byPosition]]) {
        const errs = params.validate(m.name, p);
        if (!Array.isArray(errs) || errs.length > 0) {
          problems.push(`${m.name}, example "${ex.name}": params ${how} do not fit the schema: ${JSON.stringify(errs)}`);
        }
      }
      if (ex.result && m.name !== 'rpc.discover') {
        const errs = results.validate(m.name, { result: ex.result.value });
        if (!Array.isArray(errs) || errs.length > 0) {
          problems.push(`${m.name}, example "${ex.name}": result does not fit the schema: ${JSON.stringify(errs)}`);
        }
      }
    }
  }
  // Controls: the validators are awake, and refuse what the server refuses.
  const refused = [
    ['session.open_session', { expires_in: 0 }],
    ['session.open_session', { expires_in: 'soon' }],
    ['session.open_session', { subject: '' }],
    ['session.verify_session_token', {}],
    ['session.close_all_sessions', { subject: 7 }],
  ];
  for (const [name, p] of refused) {
    const errs = params.validate(name, p);
    if (Array.isArray(errs) && errs.length === 0) {
      problems.push(`${name}(${JSON.stringify(p)}): the schema accepts params the server refuses`);
    }
  }
  if (problems.length === 0) {
    console.log(JSON.stringify({ openrpc: doc.openrpc, methods: doc.methods.map((m) => m.name), examples }));
    process.exit(0);
  }
} catch (err) {
  problems.push(`${err.name}: ${err.message}`);
}
console.error(problems.join('\n'));
process.exit(1);
