// `npm install` on a fresh clone must leave the tree clean: the lock's record of this package
// (`packages[""]`) says what package.json says, or npm rewrites it.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../examples/chat/server.js';

type Manifest = Record<string, unknown>;
const root = projectRoot();
const read = (file: string): Manifest => JSON.parse(readFileSync(join(root, file), 'utf8')) as Manifest;

void t.test('package-lock.json records this package as package.json describes it', async (t) => {
  const pkg = read('package.json');
  const lock = read('package-lock.json');
  const self = (lock.packages as Record<string, Manifest>)[''] ?? {};
  t.equal(lock.name, pkg.name);
  t.equal(lock.version, pkg.version);
  // The fields npm copies from package.json into the lock's root entry.
  for (const field of ['name', 'version', 'license', 'bin', 'engines', 'dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
    const want: unknown = field === 'bin' && typeof pkg.bin === 'string' ? { [String(pkg.name)]: pkg.bin } : pkg[field];
    t.same(self[field], want, `${field} (if this fails, run npm install --package-lock-only and commit the lock)`);
  }
});
