// The docs' curl examples run and succeed: every ```sh or ```bash block of
// README.md and docs/*.md whose commands are curl calls is run, as
// written, against tollgate on the example config (its port and state file
// moved into the test's, an admin key added as $ADMIN_KEY), with curl made
// to fail on an HTTP error. Each answers JSON, but /metrics its own text.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { freePort, startGateway } from './lib.mjs';

const TOP = path.resolve('../..');
const ADMIN_KEY = 'tg-docs-admin-key';

function curlBlocks() {
  const files = ['README.md', ...fs.readdirSync(path.join(TOP, 'docs'))
    .filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const blocks = [];
  for (const file of files) {
    const text = fs.readFileSync(path.join(TOP, file), 'utf8');
    for (const m of text.matchAll(/```(?:sh|bash)\n([^]*?)```/g)) {
      if (/^curl /.test(m[1].trim())) blocks.push({ file, code: m[1] });
    }
  }
  return blocks;
}

test('every_curl_example_in_the_docs_succeeds', async (t) => {
  const blocks = curlBlocks();
  assert.ok(blocks.length >= 5, `only ${blocks.length} curl examples found`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-docs-'));
  const port = await freePort();
  const example = fs.readFileSync(path.join(TOP, 'config/tollgate.yaml'), 'utf8')
    .replace(/^listen: .*$/m, `listen: ["127.0.0.1:${port}"]`)
    .replace(/^state_file: .*$/m, `state_file: ${dir}/tollgate.state`)
    .replace(/^admin_keys: .*$/m, `admin_keys: ["${ADMIN_KEY}"]`);
  const gw = await startGateway(t, { dir, port, configText: example });
  for (const { file, code } of blocks) {
    const script = `curl() { command curl -sS --fail-with-body "$@"; }\n${
      code.replaceAll('127.0.0.1:8000', `127.0.0.1:${gw.port}`)}`;
    const r = spawnSync('bash', ['-e', '-c', script], {
      encoding: 'utf8', env: { ...process.env, ADMIN_KEY }, timeout: 10000,
    });
    assert.equal(r.status, 0, `${file}:\n${code}\n${r.stdout}${r.stderr}`);
    if (code.includes('/metrics')) {
      assert.match(r.stdout, /^tollgate_\w+(\{[^}]*\})? \d/m, `${file}: not metrics`);
    } else {
      assert.doesNotThrow(() => JSON.parse(r.stdout), `${file}: not JSON: ${r.stdout}`);
    }
  }
});
