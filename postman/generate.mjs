#!/usr/bin/env node
// Writes postman/intake.postman_collection.json and
// postman/intake.postman_environment.json from openapi/openapi.json and the
// flow in postman/flow.json. Plain Node 20, no dependencies; the output
// depends on those two files only (no dates, no random ids).
//
//   node postman/generate.mjs           rewrite both files
//   node postman/generate.mjs --check   exit 1 if the committed files differ
//   node postman/generate.mjs --spec other.json   read another spec
//
// Each request of the flow names its operation by method and path
// ("POST /v1/admin/groups"), never by operationId. The generator checks the
// flow against the spec and fails (exit 2) on anything that does not match:
// an operation the spec lacks, a status it does not document for the
// operation, a query parameter, path parameter, form field or media type it
// does not have, an override of a field the example lacks, and any operation
// of the spec that no request of the flow covers (unless the flow's
// "uncovered" lists it with a reason).
//
// Request bodies are the spec's examples (the media type's `example`, else
// its schema's) with the flow's overrides ("set": dotted path -> value),
// unless the flow gives the whole body. Every request gets tests: its status,
// its Content-Type as documented for that status, a JSON answer's required
// fields and its schema (the spec's, with the $refs it needs, checked by
// Postman's jsonSchema assertion), plus the flow's own checks.
//
// The flow's format is described in postman/README.md ("Regenerating").

import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const argv = process.argv.slice(2);
const check = argv.includes('--check');
const specArg = argv.indexOf('--spec');
const specPath = specArg >= 0 ? path.resolve(argv[specArg + 1]) : path.join(root, 'openapi/openapi.json');
const flowPath = path.join(here, 'flow.json');
const collectionPath = path.join(here, 'intake.postman_collection.json');
const environmentPath = path.join(here, 'intake.postman_environment.json');

const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const flow = JSON.parse(readFileSync(flowPath, 'utf8'));

const problems = [];
const fail = (where, message) => problems.push(`${where}: ${message}`);

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const operations = new Map();
for (const [p, item] of Object.entries(spec.paths ?? {})) {
  for (const m of METHODS) {
    if (!item[m]) continue;
    operations.set(`${m.toUpperCase()} ${p}`, {
      method: m.toUpperCase(),
      path: p,
      op: item[m],
      parameters: [...(item.parameters ?? []), ...(item[m].parameters ?? [])].map(deref),
    });
  }
}

function deref(node) {
  let seen = 0;
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    if (++seen > 32) throw new Error(`$ref loop at ${node.$ref}`);
    const parts = node.$ref.replace(/^#\//, '').split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    let target = spec;
    for (const part of parts) target = target?.[part];
    if (target === undefined) throw new Error(`unresolved $ref ${node.$ref}`);
    node = target;
  }
  return node;
}

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

function exampleOf(media) {
  if (!media) return undefined;
  if (media.example !== undefined) return clone(media.example);
  if (media.examples && typeof media.examples === 'object') {
    const first = Object.values(media.examples)[0];
    if (first) return clone(deref(first).value);
  }
  const schema = deref(media.schema);
  if (schema?.example !== undefined) return clone(schema.example);
  if (Array.isArray(schema?.examples) && schema.examples.length) return clone(schema.examples[0]);
  return undefined;
}

// "cases.0.staff_id" -> ["cases", 0, "staff_id"]
const splitPath = (p) => p.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s));

function setPath(obj, dotted, value, where) {
  // A leading "+" adds a field the example does not have; without it the
  // field must exist, so an override never drifts away from the example.
  const adding = dotted.startsWith('+');
  const keys = splitPath(adding ? dotted.slice(1) : dotted);
  let node = obj;
  for (let i = 0; i < keys.length - 1; i++) {
    if (node === null || typeof node !== 'object' || !(keys[i] in node)) {
      fail(where, `override "${dotted}": the example has no "${keys.slice(0, i + 1).join('.')}"`);
      return;
    }
    node = node[keys[i]];
  }
  const last = keys[keys.length - 1];
  if (node === null || typeof node !== 'object') {
    fail(where, `override "${dotted}": its parent is not an object or array in the example`);
    return;
  }
  if (!adding && !(last in node)) {
    fail(where, `override "${dotted}": the example has no such field (write "+${dotted}" to add one)`);
    return;
  }
  node[last] = clone(value);
}

function unsetPath(obj, dotted, where) {
  const keys = splitPath(dotted);
  let node = obj;
  for (let i = 0; i < keys.length - 1; i++) node = node?.[keys[i]];
  const last = keys[keys.length - 1];
  if (node === null || typeof node !== 'object' || !(last in node)) {
    fail(where, `unset "${dotted}": the example has no such field`);
    return;
  }
  if (Array.isArray(node)) node.splice(last, 1);
  else delete node[last];
}

// ---- JSON Schema for the answers: the operation's schema with the component
// schemas it reaches, as draft-07 `definitions` (what Postman's ajv reads).
const STRIP = new Set(['description', 'example', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'externalDocs', 'xml', 'discriminator', 'contentMediaType', 'contentEncoding']);
function toDraft7(node, refs) {
  if (Array.isArray(node)) return node.map((n) => toDraft7(n, refs));
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (STRIP.has(k)) continue;
    if (k === '$ref' && typeof v === 'string') {
      const m = /^#\/components\/schemas\/(.+)$/.exec(v);
      if (!m) throw new Error(`unsupported $ref ${v}`);
      refs.add(m[1]);
      out.$ref = `#/definitions/${m[1]}`;
      continue;
    }
    if (k === 'properties' || k === 'patternProperties' || k === '$defs' || k === 'definitions') {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, toDraft7(s, refs)]));
      continue;
    }
    out[k] = toDraft7(v, refs);
  }
  return out;
}
function answerSchema(schema) {
  const refs = new Set();
  const main = toDraft7(schema, refs);
  const definitions = {};
  const queue = [...refs];
  while (queue.length) {
    const name = queue.shift();
    if (definitions[name]) continue;
    const before = new Set(refs);
    definitions[name] = toDraft7(spec.components.schemas[name], refs);
    for (const r of refs) if (!before.has(r)) queue.push(r);
  }
  if (Object.keys(definitions).length) {
    main.definitions = Object.fromEntries(Object.keys(definitions).sort().map((k) => [k, definitions[k]]));
  }
  return main;
}

// ---- the collection
const js = (v) => JSON.stringify(v);
const HELPERS = [
  "const at = (o, p) => String(p).split('.').filter(Boolean).reduce((n, k) => (n == null ? undefined : n[k]), o);",
  "const v = (x) => (typeof x === 'string' ? pm.variables.replaceIn(x) : Array.isArray(x) ? x.map(v) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, v(y)])) : x);",
  "let body; try { body = pm.response.json(); } catch (e) { body = undefined; }",
];

const names = new Set();
const covered = new Set();

function buildRequest(step, folder) {
  const where = `${folder} / ${step.name}`;
  if (names.has(step.name)) fail(where, 'request names must be unique');
  names.add(step.name);

  let method, route, op = null;
  if (step.op) {
    const key = step.op.trim().replace(/\s+/, ' ');
    const found = operations.get(key.replace(/^(\S+)/, (m) => m.toUpperCase()));
    if (!found) {
      fail(where, `the spec has no operation ${key}`);
      return null;
    }
    op = found;
    method = found.method;
    route = found.path;
    covered.add(`${found.method} ${found.path}`);
  } else if (step.extra) {
    // A route the spec does not describe (e.g. /openapi.json itself).
    [method, route] = step.extra.split(/\s+/);
  } else {
    fail(where, 'a request needs "op" (an operation of the spec) or "extra"');
    return null;
  }

  const status = step.status;
  const responses = op?.op.responses ?? {};
  let documented = null;
  if (op) {
    documented = responses[String(status)] ?? null;
    if (!documented) fail(where, `${method} ${route} does not document status ${status} (documented: ${Object.keys(responses).join(', ')})`);
    else documented = deref(documented);
  }

  // Path parameters: {id} -> :id, with their values from the flow.
  const pathVars = [];
  const segments = route.replace(/^\//, '').split('/').map((seg) => {
    const m = /^\{(.+)\}$/.exec(seg);
    if (!m) return seg;
    const value = step.path?.[m[1]];
    if (value === undefined) fail(where, `no value for the path parameter ${m[1]}`);
    pathVars.push({ key: m[1], value: String(value ?? '') });
    return `:${m[1]}`;
  });
  for (const k of Object.keys(step.path ?? {})) {
    if (!pathVars.some((p) => p.key === k)) fail(where, `${route} has no path parameter ${k}`);
  }

  const params = op?.parameters ?? [];
  const query = Object.entries(step.query ?? {}).map(([key, value]) => {
    if (op && !params.some((p) => p.in === 'query' && p.name === key)) fail(where, `${method} ${route} has no query parameter ${key}`);
    return { key, value: String(value) };
  });
  const headers = [];
  for (const [key, value] of Object.entries(step.headers ?? {})) {
    if (op && !params.some((p) => p.in === 'header' && p.name.toLowerCase() === key.toLowerCase())) {
      fail(where, `${method} ${route} documents no header ${key}`);
    }
    headers.push({ key, value: String(value) });
  }

  // Auth: the step's, else what the operation's security asks for.
  let auth = step.auth;
  if (!auth) {
    const sec = op?.op.security ?? spec.security ?? [];
    if (!sec.length) auth = 'none';
    else if (sec.some((req) => Object.values(req).some((scopes) => scopes.includes('admin')))) auth = 'admin';
    else auth = 'token';
  }
  const authObj =
    auth === 'none'
      ? { type: 'noauth' }
      : { type: 'bearer', bearer: [{ key: 'token', value: auth === 'admin' ? '{{adminToken}}' : auth === 'token' ? '{{token}}' : auth, type: 'string' }] };

  // Body.
  let body;
  const content = op?.op.requestBody?.content ?? {};
  if (step.form) {
    if (op && !content['multipart/form-data']) fail(where, `${method} ${route} takes no multipart/form-data`);
    const props = deref(content['multipart/form-data']?.schema)?.properties ?? {};
    body = {
      mode: 'formdata',
      formdata: step.form.map((f) => {
        if (op && !(f.key in props)) fail(where, `the form of ${method} ${route} has no field ${f.key}`);
        if (f.src !== undefined) {
          if (!existsSync(path.join(here, f.src))) fail(where, `the file ${f.src} is missing (paths are relative to postman/)`);
          return { key: f.key, type: 'file', src: f.src };
        }
        return { key: f.key, value: String(f.value), type: 'text' };
      }),
    };
  } else if (step.raw !== undefined || step.body !== undefined || step.set || step.unset || (op && Object.keys(content).length && step.noBody !== true)) {
    const ct = step.contentType ?? (content['application/json'] ? 'application/json' : Object.keys(content)[0]);
    if (op && !content[ct]) fail(where, `${method} ${route} takes no ${ct}`);
    let raw;
    if (step.raw !== undefined) {
      raw = Array.isArray(step.raw) ? step.raw.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join('\n') + '\n' : step.raw;
    } else {
      let value = step.body !== undefined ? clone(step.body) : exampleOf(content[ct]);
      if (value === undefined) {
        fail(where, `the spec has no example for ${method} ${route} (${ct}); give "body"`);
        value = {};
      }
      for (const p of step.unset ?? []) unsetPath(value, p, where);
      for (const [p, val] of Object.entries(step.set ?? {})) setPath(value, p, val, where);
      raw = JSON.stringify(value, null, 2);
    }
    headers.unshift({ key: 'Content-Type', value: ct });
    body = { mode: 'raw', raw, options: { raw: { language: ct.includes('json') && !ct.includes('ndjson') ? 'json' : 'text' } } };
  }

  // Tests.
  const exec = [...HELPERS];
  exec.push(`pm.test(${js(`${method} ${route} answers ${status}`)}, () => pm.response.to.have.status(${status}));`);
  let jsonAnswer = false;
  if (documented?.content) {
    const types = Object.keys(documented.content);
    const bases = [...new Set(types.map((t) => t.split(';')[0].trim().toLowerCase()))];
    exec.push(
      `pm.test(${js(`Content-Type is ${bases.join(' or ')}`)}, () => pm.expect(${js(bases)}).to.include(String(pm.response.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase()));`,
    );
    const jsonType = types.find((t) => /json/.test(t));
    if (jsonType && step.schemaCheck !== false) {
      jsonAnswer = true;
      const schema = deref(documented.content[jsonType].schema);
      if (schema) {
        const required = schema.required ?? [];
        if (required.length) {
          exec.push(`pm.test(${js(`the answer has ${required.join(', ')}`)}, () => pm.expect(body).to.be.an('object').that.includes.all.keys(${required.map(js).join(', ')}));`);
        }
        const draft7 = answerSchema(documented.content[jsonType].schema);
        exec.push(`pm.test('the answer matches the schema of the spec', () => pm.response.to.have.jsonSchema(${js(draft7)}, { unknownFormats: 'ignore' }));`);
      }
    }
  }
  if (status === 204) exec.push(`pm.test('no body', () => pm.expect(pm.response.text()).to.equal(''));`);

  const c = step.check ?? {};
  for (const [p, expected] of Object.entries(c.equals ?? {})) {
    exec.push(`pm.test(${js(`${p} is ${typeof expected === 'string' ? expected : JSON.stringify(expected)}`)}, () => pm.expect(at(body, ${js(p)})).to.eql(v(${js(expected)})));`);
  }
  for (const p of c.present ?? []) {
    exec.push(`pm.test(${js(`${p} is present`)}, () => pm.expect(at(body, ${js(p)})).to.not.be.oneOf([undefined, null, '']));`);
  }
  for (const [p, n] of Object.entries(c.length ?? {})) {
    exec.push(`pm.test(${js(`${p} has ${n} entries`)}, () => pm.expect(at(body, ${js(p)})).to.have.lengthOf(${n}));`);
  }
  for (const [p, n] of Object.entries(c.atLeast ?? {})) {
    exec.push(`pm.test(${js(`${p} has at least ${n} entries`)}, () => pm.expect(at(body, ${js(p)})).to.have.length.of.at.least(${n}));`);
  }
  for (const [p, spec_] of Object.entries(c.contains ?? {})) {
    // An entry of the array at p has every field of spec_.
    exec.push(
      `pm.test(${js(`${p} has an entry with ${JSON.stringify(spec_)}`)}, () => { const want = ${js(spec_)}; pm.expect((at(body, ${js(p)}) || []).some((e) => Object.entries(want).every(([k, x]) => at(e, k) === v(x))), JSON.stringify(at(body, ${js(p)}))).to.be.true; });`,
    );
  }
  for (const [h, expected] of Object.entries(c.headers ?? {})) {
    exec.push(`pm.test(${js(`header ${h} is ${expected}`)}, () => pm.expect(pm.response.headers.get(${js(h)})).to.eql(v(${js(expected)})));`);
  }
  for (const text of c.text ?? []) {
    exec.push(`pm.test(${js(`the answer contains ${text}`)}, () => pm.expect(pm.response.text()).to.include(v(${js(text)})));`);
  }
  for (const line of c.js ?? []) exec.push(line);

  for (const [name, p] of Object.entries(step.capture ?? {})) {
    exec.push(`pm.collectionVariables.set(${js(name)}, at(body, ${js(p)}));`);
  }
  for (const [name, p] of Object.entries(step.captureEnv ?? {})) {
    // The environment's value wins over a collection variable's, so a value
    // the environment also holds (the token) is set in both.
    exec.push(`pm.environment.set(${js(name)}, at(body, ${js(p)}));`);
    exec.push(`pm.collectionVariables.set(${js(name)}, at(body, ${js(p)}));`);
  }
  if (!jsonAnswer && (step.capture || step.captureEnv)) fail(where, 'captures need a JSON answer');

  const events = [{ listen: 'test', script: { type: 'text/javascript', exec } }];
  if (step.prerequest) events.unshift({ listen: 'prerequest', script: { type: 'text/javascript', exec: step.prerequest } });

  const queryString = query.length ? '?' + query.map((q) => `${q.key}=${q.value}`).join('&') : '';
  const description = [
    op ? `\`${method} ${route}\`${op.op.summary ? ` — ${op.op.summary}` : ''}` : `\`${method} ${route}\` (not an operation of the spec)`,
    step.description ?? '',
    `Expects ${status}.`,
  ]
    .filter(Boolean)
    .join('\n\n');

  const request = {
    method,
    header: headers,
    auth: authObj,
    ...(body ? { body } : {}),
    url: {
      raw: `{{baseUrl}}/${segments.join('/')}${queryString}`,
      host: ['{{baseUrl}}'],
      path: segments,
      ...(query.length ? { query } : {}),
      ...(pathVars.length ? { variable: pathVars } : {}),
    },
    description,
  };
  return { name: step.name, event: events, request, response: [] };
}

const items = [];
for (const folder of flow.folders) {
  items.push({
    name: folder.name,
    ...(folder.description ? { description: folder.description } : {}),
    item: folder.requests.map((step) => buildRequest(step, folder.name)).filter(Boolean),
  });
}

// Every {{variable}} the flow uses is the environment's, a collection
// variable the flow declares, or one of Postman's dynamic ones ({{$guid}}).
const declared = new Set([...(flow.variables ?? []), ...Object.keys(flow.environment ?? {})]);
for (const folder of flow.folders) {
  for (const step of folder.requests) {
    for (const name of [...Object.keys(step.capture ?? {}), ...Object.keys(step.captureEnv ?? {})]) {
      if (!declared.has(name)) fail(`${folder.name} / ${step.name}`, `captures ${name}, which "variables" does not declare`);
    }
    for (const [, name] of JSON.stringify(step).matchAll(/\{\{([^{}]+)\}\}/g)) {
      if (!name.startsWith('$') && !declared.has(name)) fail(`${folder.name} / ${step.name}`, `uses {{${name}}}, which is neither declared in "variables" nor in "environment"`);
    }
  }
}

const uncovered = flow.uncovered ?? {};
for (const key of operations.keys()) {
  if (!covered.has(key) && !uncovered[key]) fail('coverage', `no request covers ${key} (add one to postman/flow.json, or list it in "uncovered" with a reason)`);
}
for (const key of Object.keys(uncovered)) {
  if (!operations.has(key)) fail('coverage', `"uncovered" names ${key}, which the spec does not have`);
  else if (covered.has(key)) fail('coverage', `"uncovered" names ${key}, which a request covers`);
}

if (problems.length) {
  console.error(`postman/generate.mjs: the flow does not match ${path.relative(process.cwd(), specPath) || specPath}:`);
  for (const p of problems) console.error(`  - ${p}`);
  process.exit(2);
}

const variables = [...new Set(flow.variables ?? [])].map((key) => ({ key, value: '' }));
const collection = {
  info: {
    _postman_id: flow.postmanId,
    name: flow.name ?? spec.info?.title ?? 'intake',
    description: [
      flow.description ?? '',
      `Generated by \`node postman/generate.mjs\` from \`openapi/openapi.json\` (${spec.info?.title ?? ''} ${spec.info?.version ?? ''}) and \`postman/flow.json\`; do not edit by hand.`,
      `Covers ${covered.size} of the spec's ${operations.size} operations.`,
    ]
      .filter(Boolean)
      .join('\n\n'),
    schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json',
  },
  item: items,
  variable: variables,
};
const environment = {
  id: flow.environmentId,
  name: `${flow.name ?? 'intake'} (local)`,
  values: Object.entries(flow.environment).map(([key, value]) => ({
    key,
    value,
    type: key.toLowerCase().includes('token') ? 'secret' : 'default',
    enabled: true,
  })),
  _postman_variable_scope: 'environment',
};

const out = [
  [collectionPath, JSON.stringify(collection, null, 2) + '\n'],
  [environmentPath, JSON.stringify(environment, null, 2) + '\n'],
];
if (check) {
  const stale = out.filter(([file, text]) => !existsSync(file) || readFileSync(file, 'utf8') !== text);
  if (stale.length) {
    for (const [file] of stale) console.error(`FAIL: ${path.relative(root, file)} is not what postman/generate.mjs produces from the spec and postman/flow.json`);
    console.error('Run: node postman/generate.mjs (and commit the result)');
    process.exit(1);
  }
  console.log(`postman: the collection is up to date (${covered.size}/${operations.size} operations covered)`);
} else {
  for (const [file, text] of out) writeFileSync(file, text);
  console.log(`postman: wrote ${path.relative(root, collectionPath)} and ${path.relative(root, environmentPath)} (${names.size} requests, ${covered.size}/${operations.size} operations covered)`);
}
