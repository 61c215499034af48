// SPDX-License-Identifier: AGPL-3.0-only
// Baseline for bench/token: npm oidc-provider (bench/introspect's install), in memory, with
// the grants bench/token loads, each item minted up front through the provider's own models
// and each exchangeable once: COUNT refresh tokens, authorization codes and (approved)
// device codes, each with a grant of its own. The form bodies that exchange them go to
// OUTDIR/refresh.txt, code.txt and device.txt, one a line. Refresh tokens rotate on every
// use (as MAS's do); codes and device codes are for 'openid offline_access' (an access, a
// refresh and an ID token, as MAS issues for its 'openid' grants).
// Usage: node oidc_provider.mjs PORT COUNT OUTDIR
import fs from 'node:fs';
import path from 'node:path';
import Provider from '../introspect/node_modules/oidc-provider/lib/index.js';

const [port, count, outdir] = process.argv.slice(2);
const redirectUri = 'https://bench.example/cb';

// The bundled memory adapter is an LRU capped at 1000 entries; the bench needs every item live.
const stores = new Map();
class MapAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload) { stores.set(this.key(id), payload); }
  async find(id) { return stores.get(this.key(id)); }
  async findByUserCode(userCode) { return stores.get(`${this.name}:user:${userCode}`); }
  async findByUid() { return undefined; }
  async consume(id) { const p = stores.get(this.key(id)); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { stores.delete(this.key(id)); }
  async revokeByGrantId() {}
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: MapAdapter,
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-bench-secret',
    grant_types: ['client_credentials', 'refresh_token', 'authorization_code',
      'urn:ietf:params:oauth:grant-type:device_code'],
    redirect_uris: [redirectUri],
    response_types: ['code'],
  }],
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    introspection: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    devInteractions: { enabled: false },
  },
  rotateRefreshToken: () => true,
  ttl: { AccessToken: 300, ClientCredentials: 300, RefreshToken: 24 * 3600, AuthorizationCode: 600, DeviceCode: 3600, Grant: 24 * 3600 },
});

const client = await provider.Client.find('bench');
const n = Number(count);

async function newGrant(accountId, scope) {
  const grant = new provider.Grant({ accountId, clientId: 'bench' });
  grant.addOIDCScope(scope);
  return grant.save();
}

async function write(name, make) {
  const out = fs.createWriteStream(path.join(outdir, name));
  for (let i = 0; i < n; i += 1) out.write(`${await make(i)}\n`);
  await new Promise((resolve) => out.end(resolve));
}

fs.mkdirSync(outdir, { recursive: true });
const authTime = Math.floor(Date.now() / 1000);
await write('refresh.txt', async (i) => {
  const accountId = `r${i}`;
  const grantId = await newGrant(accountId, 'offline_access');
  const token = new provider.RefreshToken({
    client, accountId, grantId, scope: 'offline_access', gty: 'authorization_code', rotations: 0,
  });
  return `grant_type=refresh_token&refresh_token=${await token.save()}`;
});
await write('code.txt', async (i) => {
  const accountId = `c${i}`;
  const grantId = await newGrant(accountId, 'openid offline_access');
  const code = new provider.AuthorizationCode({
    client, accountId, grantId, scope: 'openid offline_access', redirectUri, authTime, nonce: `n${i}`,
  });
  return `grant_type=authorization_code&code=${await code.save()}&redirect_uri=${encodeURIComponent(redirectUri)}`;
});
await write('device.txt', async (i) => {
  const accountId = `d${i}`;
  const grantId = await newGrant(accountId, 'openid offline_access');
  const code = new provider.DeviceCode({
    client, accountId, grantId, scope: 'openid offline_access', userCode: `U${i}`, authTime, params: { client_id: 'bench', scope: 'openid offline_access' },
  });
  return `grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=${await code.save()}`;
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${port}`);
});
