// Validates prometheus-operator custom resources (ServiceMonitor, PrometheusRule,
// AlertmanagerConfig, ...) against the schemas of @kubernetes-models/prometheus-operator, which
// are generated from prometheus-operator's published CRDs (see package.json for the version).
//
//   node validate.mjs < documents.json      # a JSON array of resources
//
// Prints a JSON array, one entry per document: {kind, name, errors: [...], unknown: [...]}.
// `errors` are the schema's (types, patterns, enums, required fields). `unknown` are fields the
// schema does not define: the generated validators accept them, but the API server rejects them
// (strict field validation) or silently drops them, so a misspelt field would do nothing. They are
// found by watching which fields the validator reads: a field it never looks at is not in the
// schema. Fields under x-kubernetes-preserve-unknown-fields (an AlertmanagerConfig's child routes)
// are never read either; the caller validates those separately.
//
// Used by tests/deploy/test_kubernetes.py; installed by `npm ci` here (scripts/setup.sh --test).

const GROUP = "monitoring.coreos.com";

async function modelFor(apiVersion, kind) {
  const [group, version] = String(apiVersion).split("/");
  if (group !== GROUP || !/^[A-Za-z0-9]+$/.test(String(kind))) return null;
  try {
    const module = await import(`@kubernetes-models/prometheus-operator/${GROUP}/${version}/${kind}`);
    return module[kind] ?? null;
  } catch {
    return null;
  }
}

// A deep copy of `value` whose objects record each property the validator reads.
function tracked(value, path, objects) {
  if (value === null || typeof value !== "object") return value;
  const read = new Set();
  const copy = Array.isArray(value)
    ? value.map((item, i) => tracked(item, `${path}[${i}]`, objects))
    : Object.fromEntries(
        Object.entries(value).map(([key, item]) => [key, tracked(item, `${path}.${key}`, objects)]),
      );
  if (!Array.isArray(value)) objects.push({ path, keys: Object.keys(value), read });
  return new Proxy(copy, {
    get(target, key, receiver) {
      read.add(key);
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      read.add(key);
      return Reflect.has(target, key);
    },
  });
}

async function check(doc) {
  const kind = doc?.kind;
  const name = doc?.metadata?.name;
  const Model = await modelFor(doc?.apiVersion, kind);
  if (Model === null) {
    return { kind, name, errors: [`no schema for ${doc?.apiVersion} ${kind}`], unknown: [] };
  }
  const objects = [];
  const errors = [];
  try {
    // The model's own validate(), called on the tracked document instead of a model instance
    // (which would copy every field first, reading them all).
    Model.prototype.validate.call(tracked(doc, "", objects));
  } catch (error) {
    errors.push(String(error.message));
  }
  const unknown = [];
  for (const { path, keys, read } of objects) {
    for (const key of keys) if (!read.has(key)) unknown.push(`${path}.${key}`);
  }
  return { kind, name, errors, unknown };
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const doc of JSON.parse(input)) results.push(await check(doc));
process.stdout.write(JSON.stringify(results, null, 1) + "\n");
