// deploy/ cannot run here (no Docker, no Kubernetes); these checks keep it right on paper: three
// nodes on one Redis, no session affinity anywhere, every proxy timeout above the poll's `wait`.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';

const read = (p: string): string => readFileSync(new URL(`../deploy/${p}`, import.meta.url), 'utf8');

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? v as Obj : {});

/** nginx durations: `75s`, `2m`, `75` (seconds) -> ms. */
function nginxMs(v: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}

void t.test('docker-compose: Redis, three nodes on it, a round-robin proxy with its read timeout above wait', async (t) => {
  const compose = obj(parse(read('docker-compose.yml'), { merge: true }));
  const services = obj(compose.services);
  const nodes = Object.entries(services).filter(([, s]) => 'COMET_REDIS_URL' in obj(obj(s).environment));
  t.equal(nodes.length, 3, 'three comet nodes');
  t.ok('redis' in services, 'a redis service');
  const envs = nodes.map(([, s]) => obj(obj(s).environment));
  t.ok(envs.every((e) => e.COMET_REDIS_URL === 'redis://redis:6379'), 'every node on that Redis');
  t.equal(new Set(envs.map((e) => e.COMET_NODE_ID)).size, 3, 'distinct node names');
  const waits = envs.map((e) => Number(e.COMET_WAIT_MS));
  t.ok(waits.every((w) => w > 0), 'wait set explicitly, so the proxy can be checked against it');
  t.match(JSON.stringify(obj(services.redis).command), /--save.*--appendonly.*no/, 'Redis without persistence');

  const nginx = read('nginx.conf');
  const upstream = /upstream\s+comet\s*\{([^}]*)\}/.exec(nginx)?.[1] ?? '';
  t.equal((upstream.match(/^\s*server\s/gm) ?? []).length, 3, 'the upstream lists the three nodes');
  t.notMatch(upstream, /\b(ip_hash|hash|sticky|least_conn)\b/, 'round robin, no affinity');
  t.match(nginx, /proxy_http_version 1\.1;/, 'keep-alive to the nodes: balanced per request, not per client connection');
  const read_ = /proxy_read_timeout\s+(\S+);/.exec(nginx)?.[1] ?? '';
  t.ok(nginxMs(read_) > Math.max(...waits), `proxy_read_timeout ${read_} above wait ${Math.max(...waits)} ms`);
  t.match(nginx, /proxy_buffering off;/, 'no buffering of held polls');
  t.match(JSON.stringify(obj(services.proxy).volumes), /nginx\.conf/, 'the proxy uses that file');
});

void t.test('kubernetes: no session affinity, ingress timeouts above wait, node names from pods', async (t) => {
  const docs = [...parseAllDocuments(read('k8s/comet.yaml')), ...parseAllDocuments(read('k8s/redis.yaml'))].map((d) => obj(d.toJSON()));
  const kind = (k: string, name: string): Obj | undefined => docs.find((d) => d.kind === k && obj(d.metadata).name === name);
  const service = obj(kind('Service', 'comet'));
  t.equal(obj(service.spec).sessionAffinity, 'None', 'the Service has no session affinity');
  const ingress = obj(kind('Ingress', 'comet'));
  const ann = obj(obj(ingress.metadata).annotations);
  t.notOk(Object.keys(ann).some((k) => /affinity|session-cookie|upstream-hash-by/.test(k)), 'the Ingress has no affinity');
  const deploy = obj(kind('Deployment', 'comet'));
  const spec = obj(deploy.spec);
  t.ok(Number(spec.replicas) >= 2, 'several pods');
  const container = obj((obj(obj(spec.template).spec).containers as unknown[])[0]);
  const env = new Map((container.env as Obj[]).map((e) => [e.name, e]));
  const wait = Number(env.get('COMET_WAIT_MS')?.value);
  t.ok(wait > 0, 'wait set explicitly');
  t.ok(Number(ann['nginx.ingress.kubernetes.io/proxy-read-timeout']) * 1000 > wait, 'ingress read timeout above wait');
  t.ok(Number(ann['nginx.ingress.kubernetes.io/proxy-send-timeout']) * 1000 > wait, 'ingress send timeout above wait');
  t.equal(env.get('COMET_REDIS_URL')?.value, 'redis://comet-redis:6379', 'the nodes use the Redis Service');
  t.ok(kind('Service', 'comet-redis'), 'which exists');
  t.same(obj(env.get('COMET_NODE_ID')?.valueFrom).fieldRef, { fieldPath: 'metadata.name' }, 'each node named after its pod');
  t.equal(obj(obj(container.readinessProbe).httpGet).path, '/healthz', 'readiness on /healthz');
  t.ok(Number(obj(obj(spec.template).spec).terminationGracePeriodSeconds) >= 10, 'time for a graceful stop');
});
